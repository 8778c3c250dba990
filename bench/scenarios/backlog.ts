// Scenarios 3 and 4: draining a large backlog for one device that was offline, and starting the server with that
// backlog on disk, after a graceful stop (SIGTERM: the server writes its final checkpoint) and after SIGKILL (no
// final checkpoint: start-up replays the log). Each part runs on its own data directory.
import { readdirSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { registerAccounts, type Account } from '../lib/accounts.ts';
import { BenchError, startTickwire, tempDirFor, type ServerProcess } from '../lib/children.ts';
import { Histogram, type LatencySummary } from '../lib/histogram.ts';
import type { DrainResult, FillResult } from '../lib/jobs.ts';
import { scrape, total } from '../lib/metrics.ts';
import { CpuMeter } from '../lib/proc.ts';
import { split } from '../lib/workers.ts';
import { limiterOf, type Context, type CpuShares } from './context.ts';

/** Outstanding sends per filling connection; well under the reference maxPendingRequests (256). */
const FILL_IN_FLIGHT = 64;
/** receiveMax of the draining device, and the server's --window for this scenario. */
const DRAIN_WINDOW = 1000;
/** The spec's allowed maximum of maxDeliverBatch (section 6.5). */
const DRAIN_DELIVER_BATCH = 256;
const DRAIN_TIMEOUT_MS = 180_000;

export interface FillFigures {
  messages: number;
  seconds: number;
  perSecond: number;
  sendToOk: LatencySummary;
  errors: Record<string, number>;
  serverQueuedItems?: number;
}

export interface DrainFigures extends DrainResult {
  seconds: number;
  itemsPerSecond: number;
  cpu: CpuShares;
  limitedBy: string;
}

export interface StartupFigures {
  /** Start of an empty data directory, for reference. */
  emptyReadyLineMs: number;
  emptyHealthyMs: number;
  dataDirBytes: number;
  afterSigkill: { readyLineMs: number; healthyMs: number; queuedItems?: number };
  /** How long SIGTERM took to stop the server (sessions closed, final checkpoint written). */
  sigtermStopMs: number;
  afterSigterm: { readyLineMs: number; healthyMs: number; queuedItems?: number };
  /** The backlog drained after both restarts: proves it survived them. */
  drainAfterRestarts: DrainFigures;
}

function directoryBytes(dir: string): number {
  let sum = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    sum += entry.isDirectory() ? directoryBytes(path) : statSync(path).size;
  }
  return sum;
}

function serverFlags(backlog: number): Record<string, number> {
  return {
    'registrations-per-minute': 10_000_000,
    window: DRAIN_WINDOW,
    'max-deliver-batch': DRAIN_DELIVER_BATCH,
    // QUEUE_FULL refuses a send once the queue holds maxQueueItems (MSG-9); the backlog must fit.
    'max-queue-items': Math.max(100_000, backlog + 1),
  };
}

async function prepare(ctx: Context, server: ServerProcess, label: string): Promise<{ recipient: Account; senders: Account[] }> {
  const reg = await registerAccounts(server.url, ctx.rng.fork(`${label}-accounts`), label, ctx.options.backlogSenders + 1);
  return { recipient: reg.accounts[0]!, senders: reg.accounts.slice(1) };
}

async function fillBacklog(ctx: Context, server: ServerProcess, recipient: Account, senders: Account[], label: string): Promise<FillFigures> {
  const { workers, options } = ctx;
  const body = ctx.rng.fork('payload').bytes(options.payloadBytes).toString('base64');
  const senderParts = split(senders, workers.length);
  const totals = split(Array.from({ length: options.backlog }, (_, i) => i), workers.length).map((p) => p.length);
  const t0 = performance.now();
  const results: FillResult[] = await Promise.all(
    workers.map((w, i) =>
      w.run({
        kind: 'fill',
        url: server.url,
        senders: senderParts[i]!,
        recipient: { userId: recipient.userId, deviceId: recipient.deviceId },
        total: totals[i]!,
        inFlight: FILL_IN_FLIGHT,
        bodyBase64: body,
        seed: ctx.rng.fork(`${label}-fill-${i}`).seed,
      }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const messages = results.reduce((n, r) => n + r.accepted, 0);
  const errors: Record<string, number> = {};
  for (const r of results) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  const queued = total(await scrape(server.url), 'tickwire_store_queued_items');
  return {
    messages,
    seconds,
    perSecond: messages / seconds,
    sendToOk: Histogram.from(results.map((r) => r.sendToOk)).summary(),
    errors,
    ...(queued === undefined ? {} : { serverQueuedItems: queued }),
  };
}

async function drainBacklog(ctx: Context, server: ServerProcess, recipient: Account): Promise<DrainFigures> {
  const worker = ctx.workers[0]!;
  const meter = new CpuMeter({ server: server.pid, [worker.name]: worker.pid });
  const result = await worker.run({ kind: 'drain', url: server.url, recipient, receiveMax: DRAIN_WINDOW, expected: ctx.options.backlog, timeoutMs: DRAIN_TIMEOUT_MS });
  const cpu = meter.read();
  if (!result.complete) {
    throw new BenchError('SCENARIO', `drain incomplete: ${result.items} of ${ctx.options.backlog} items within ${DRAIN_TIMEOUT_MS} ms (queue_empty lastSeq ${result.queueEmptyLastSeq})`);
  }
  const seconds = result.allDeliveredMs / 1000;
  return { ...result, seconds, itemsPerSecond: result.items / seconds, cpu, limitedBy: limiterOf(cpu, cpus().length) };
}

/** Scenario 3 on a warm server: fill, then connect the device and time the drain. */
export async function drainScenario(ctx: Context): Promise<{ fill: FillFigures; drain: DrainFigures; flags: Record<string, number> }> {
  const { children, options } = ctx;
  const dataDir = tempDirFor(children, 'backlog');
  const flags = serverFlags(options.backlog);
  const server = await startTickwire(children, { name: 'tickwire-backlog', dataDir, flags, logFile: `${ctx.logDir}/backlog.log` });
  try {
    const { recipient, senders } = await prepare(ctx, server, 'bl');
    ctx.progress(`backlog: enqueueing ${options.backlog} messages for one offline device from ${senders.length} senders`);
    const fill = await fillBacklog(ctx, server, recipient, senders, 'bl');
    ctx.progress(`backlog: filled at ${Math.round(fill.perSecond)} sends/s; draining with receiveMax ${DRAIN_WINDOW}`);
    const drain = await drainBacklog(ctx, server, recipient);
    ctx.progress(`backlog: drained ${drain.items} items in ${drain.seconds.toFixed(3)} s (${drain.limitedBy})`);
    return { fill, drain, flags };
  } finally {
    await children.stop(server.pid);
    children.removeTempDir(dataDir);
  }
}

/** Scenario 4: the same backlog on disk; SIGKILL then restart, SIGTERM then restart, then drain to verify it. */
export async function startupScenario(ctx: Context): Promise<StartupFigures> {
  const { children, options } = ctx;
  const dataDir = tempDirFor(children, 'startup');
  const flags = serverFlags(options.backlog);
  const logFile = `${ctx.logDir}/startup.log`;
  let server = await startTickwire(children, { name: 'tickwire-startup-0', dataDir, flags, logFile });
  const empty = { readyLineMs: server.readyLineMs, healthyMs: server.healthyMs };
  let recipient: Account;
  try {
    const prepared = await prepare(ctx, server, 'st');
    recipient = prepared.recipient;
    ctx.progress(`start-up: enqueueing ${options.backlog} messages, then SIGKILL`);
    await fillBacklog(ctx, server, recipient, prepared.senders, 'st');
  } finally {
    await children.stop(server.pid, 'SIGKILL');
  }
  const dataDirBytes = directoryBytes(dataDir);
  server = await startTickwire(children, { name: 'tickwire-startup-1', dataDir, flags, logFile });
  const afterSigkill = { readyLineMs: server.readyLineMs, healthyMs: server.healthyMs, queuedItems: total(await scrape(server.url), 'tickwire_store_queued_items') };
  ctx.progress(`start-up: after SIGKILL ready in ${Math.round(afterSigkill.readyLineMs)} ms; SIGTERM and start again`);
  const stopStarted = performance.now();
  const exit = await children.stop(server.pid, 'SIGTERM');
  const sigtermStopMs = performance.now() - stopStarted;
  if (exit && exit.signal === 'SIGKILL') throw new BenchError('SCENARIO', 'the server did not stop on SIGTERM within the grace period');
  server = await startTickwire(children, { name: 'tickwire-startup-2', dataDir, flags, logFile });
  try {
    const afterSigterm = { readyLineMs: server.readyLineMs, healthyMs: server.healthyMs, queuedItems: total(await scrape(server.url), 'tickwire_store_queued_items') };
    ctx.progress(`start-up: after SIGTERM ready in ${Math.round(afterSigterm.readyLineMs)} ms; draining the surviving backlog`);
    const drainAfterRestarts = await drainBacklog(ctx, server, recipient);
    return {
      emptyReadyLineMs: empty.readyLineMs,
      emptyHealthyMs: empty.healthyMs,
      dataDirBytes,
      afterSigkill,
      sigtermStopMs,
      afterSigterm,
      drainAfterRestarts,
    };
  } finally {
    await children.stop(server.pid);
    children.removeTempDir(dataDir);
  }
}
