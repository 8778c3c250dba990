// What a scenario is, and the context its worker half runs in. A scenario is split into units (a connection, a
// pair, a sender, a queue to drain); the coordinator hands each worker process a contiguous share of the units, a
// share of the rate and its own source addresses, and moves all workers through the scenario's barriers together.
import type { Credentials } from '../reference-client/wire/connection.ts';
import type { HttpApi } from '../reference-client/wire/http.ts';
import type { Accounting } from './accounting.ts';
import type { KeyMaterial, Peer } from './peer.ts';
import type { HttpFigures } from './prekey-ledger.ts';
import type { WorkerStats } from './stats.ts';

export const SCENARIO_NAMES = ['connections', 'pairs', 'fanin', 'offline', 'prekeys'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export function isScenarioName(name: string): name is ScenarioName {
  return (SCENARIO_NAMES as readonly string[]).includes(name);
}

/**
 * What the run loads: `tickwire`, a server speaking the Tickwire protocol; `baseline`, the bare ws relay of
 * load/baseline-server.ts (no registration, no hello, no store), the floor the tickwire figures are compared with.
 */
export type LoadTarget = 'tickwire' | 'baseline';

/** The options every scenario reads (set by load/cli.ts; each has a default there). */
export interface RunOptions {
  target: LoadTarget;
  /** Units: sessions (connections), pairs (pairs, offline) or senders (fanin). */
  count: number;
  /** Total rate: connections per second (connections), messages per second (pairs, fanin, offline fill). */
  rate: number;
  durationMs: number;
  /** offline: messages queued in all, spread over the offline devices. */
  messages: number;
  drainTimeoutMs: number;
  setupTimeoutMs: number;
  bodyBytes: number;
  /** prekeys: the share of requests that upload one-time prekeys, 0..1 (default 0.1). */
  uploadRatio?: number;
  /** prekeys: autocannon's keep-alive connections per worker (default 10). */
  httpConnections?: number;
}

/** One worker's part of a run. */
export interface Assignment {
  scenario: ScenarioName;
  url: string;
  /** A short tag unique to the run: prefix of usernames and messageIds. */
  run: string;
  worker: number;
  workers: number;
  /** This worker's units are first … first + count − 1 of the run's units. */
  first: number;
  count: number;
  /** This worker's share of the total rate (and, offline, of the messages). */
  rate: number;
  messages: number;
  /** Source addresses this worker binds its sockets to, round-robin; empty for the system's choice. */
  localAddresses: string[];
  options: RunOptions;
}

/** The answer to a barrier: when (performance.now() scale of this process) to go on, and what other workers exported. */
export interface Go {
  at: number;
  imports: Record<string, unknown>;
}

export interface WorkerContext {
  assignment: Assignment;
  stats: WorkerStats;
  accounting: Accounting;
  http: HttpApi;
  keys: KeyMaterial;
  /** performance.now() after which setup (registration, connecting) counts as failed. */
  setupDeadline: number;
  /** Figures for the report that are not counters or histograms (held sessions, drain time …); summed across workers unless named max*. */
  figures: Record<string, number>;
  /** Waits until every worker reached the barrier `name`; `exports` are merged into every worker's `imports`. */
  barrier(name: string, exports?: Record<string, unknown>): Promise<Go>;
  /** Registers `count` users with one device each, in parallel; failures are counted and left out. */
  registerUsers(count: number, label: string): Promise<Credentials[]>;
  /** A peer for `credentials`, bound to the next of this worker's source addresses. */
  peer(credentials: Credentials): Peer;
  /** Set when the coordinator aborts the run (Ctrl-C, its hard deadline). */
  readonly aborted: boolean;
  /** Set by a scenario that drives HTTP load (prekeys): the report's `http` section (load/prekey-ledger.ts). */
  httpFigures?: HttpFigures;
}

export interface Scenario {
  name: ScenarioName;
  summary: string;
  /** Sessions a unit holds open (2 for a pair). */
  sessionsPerUnit: number;
  /** Extra sessions the whole run holds besides the units (the fan-in recipient). */
  extraSessions: number;
  /** The worker half: runs this worker's share of the scenario. */
  worker(ctx: WorkerContext): Promise<void>;
}

/** Sleeps until performance.now() reaches `at`. */
export function until(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
}

/** Polls `done` every 50 ms until it holds or `deadline` passes; resolves with whether it held. */
export async function waitUntil(done: () => boolean, deadline: number): Promise<boolean> {
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}
