// The jobs the benchmark's orchestrator (bench/server.ts) hands to its client workers (bench/worker.ts) over IPC,
// and their results. Workers hold their connections between jobs (sessions stay open until `close-all`).
import type { Credentials } from '../../reference-client/wire/connection.ts';
import type { HistogramSnapshot } from './histogram.ts';

export type Target = 'tickwire' | 'baseline';

export interface Pair {
  sender: Credentials;
  recipient: Credentials;
}

/** Connects the pairs (Tickwire) or one connection per pair (baseline) and waits for `throughput-run`. */
export interface ThroughputSetupJob {
  kind: 'throughput-setup';
  target: Target;
  url: string;
  pairs: Pair[];
  /** Sends each sender keeps outstanding (not yet both answered and delivered). */
  inFlight: number;
  /** The envelope body of every message: base64 of seeded random bytes. */
  bodyBase64: string;
  seed: number;
}

export interface ThroughputRunJob {
  kind: 'throughput-run';
  warmupMs: number;
  durationMs: number;
  /** The measurement window ends early once this many deliveries were counted in it (by this worker). */
  maxMessages: number;
  /** The server process, whose CPU time the worker reads over exactly the measurement window. */
  serverPid: number;
}

export interface ThroughputResult {
  /** Length of the measurement window (after warm-up). */
  windowMs: number;
  /** Deliveries that reached a recipient inside the window (baseline: echoes received). */
  delivered: number;
  /** send_ok answers received inside the window (baseline: same as delivered). */
  sendOk: number;
  /** Delivered receipts that reached senders inside the window (Tickwire only). */
  receipts: number;
  /** send → deliver at the recipient, for messages sent inside the window (baseline: send → echo). */
  endToEnd: HistogramSnapshot;
  /** send → send_ok, for messages sent inside the window. */
  sendToOk: HistogramSnapshot;
  /** Error frames by code, over the whole run. */
  errors: Record<string, number>;
  /** Deliveries flagged redelivered, over the whole run. */
  redelivered: number;
  /** Messages still outstanding when the run stopped waiting for them. */
  unfinished: number;
  /** Cores used inside the measurement window by the server and by this worker (1.0 = one full core). */
  cpu: { server: number; client: number; machine: number };
}

export interface OpenSessionsJob {
  kind: 'open-sessions';
  target: Target;
  url: string;
  /** Tickwire: one hello per account. Baseline: `count` bare connections. */
  accounts: Credentials[];
  count: number;
  concurrency: number;
}

export interface OpenSessionsResult {
  opened: number;
  failed: number;
  firstFailure?: string;
  elapsedMs: number;
  /** connect → open (baseline) or connect → welcome (Tickwire), per session. */
  setup: HistogramSnapshot;
}

export interface CloseAllJob {
  kind: 'close-all';
}

export interface FillJob {
  kind: 'fill';
  url: string;
  senders: Credentials[];
  recipient: { userId: string; deviceId: number };
  total: number;
  /** Outstanding sends per sender connection; stays below maxPendingRequests. */
  inFlight: number;
  bodyBase64: string;
  seed: number;
}

export interface FillResult {
  accepted: number;
  elapsedMs: number;
  errors: Record<string, number>;
  sendToOk: HistogramSnapshot;
}

export interface DrainJob {
  kind: 'drain';
  url: string;
  recipient: Credentials;
  receiveMax: number;
  expected: number;
  timeoutMs: number;
}

export interface DrainResult {
  /** Distinct items delivered. */
  items: number;
  redelivered: number;
  deliverFrames: number;
  maxItemsPerFrame: number;
  advertisedWindow: number;
  advertisedMaxDeliverBatch: number;
  /** Times from sending `hello`. */
  welcomeMs: number;
  firstDeliverMs: number;
  allDeliveredMs: number;
  queueEmptyMs: number;
  queueEmptyLastSeq: number;
  complete: boolean;
}

export type Job = ThroughputSetupJob | ThroughputRunJob | OpenSessionsJob | CloseAllJob | FillJob | DrainJob;

export interface JobResultMap {
  'throughput-setup': { connections: number };
  'throughput-run': ThroughputResult;
  'open-sessions': OpenSessionsResult;
  'close-all': { closed: number };
  fill: FillResult;
  drain: DrainResult;
}

export interface JobRequest {
  jobId: number;
  job: Job;
}

export type JobReply = { jobId: number; ok: true; result: unknown } | { jobId: number; ok: false; error: string };
