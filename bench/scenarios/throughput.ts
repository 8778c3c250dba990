// Scenario 1: end-to-end durable messages per second with many sender/recipient pairs, against Tickwire and then,
// with the same client loop, against the bare ws echo server.
import { cpus } from 'node:os';
import { registerAccounts } from '../lib/accounts.ts';
import { startBaseline, startTickwire, tempDirFor, type ServerProcess } from '../lib/children.ts';
import { Histogram, type LatencySummary } from '../lib/histogram.ts';
import type { Pair, Target, ThroughputResult } from '../lib/jobs.ts';
import { delta, histogramMean, scrape } from '../lib/metrics.ts';
import { split } from '../lib/workers.ts';
import { limiterOf, type Context, type CpuShares } from './context.ts';

export interface ThroughputFigures {
  connections: number;
  windowSeconds: number;
  /** Deliveries (baseline: echoes) per second inside the window. */
  messagesPerSecond: number;
  sendOkPerSecond: number;
  receiptsPerSecond: number;
  endToEnd: LatencySummary;
  sendToOk: LatencySummary;
  errors: Record<string, number>;
  redelivered: number;
  unfinished: number;
  cpu: CpuShares;
  limitedBy: string;
  /** Store figures from the server's /metrics over the run (Tickwire only). */
  server?: { fsyncs?: number; meanFsyncMs?: number; meanRecordsPerFsync?: number };
}

async function runAgainst(ctx: Context, target: Target, server: ServerProcess, pairs: Pair[]): Promise<ThroughputFigures> {
  const { options, workers } = ctx;
  const body = ctx.rng.fork('payload').bytes(options.payloadBytes).toString('base64');
  const parts = split(pairs, workers.length);
  const setups = await Promise.all(
    workers.map((w, i) =>
      w.run({ kind: 'throughput-setup', target, url: server.url, pairs: parts[i]!, inFlight: options.inFlight, bodyBase64: body, seed: ctx.rng.fork(`tp-${target}-${i}`).seed }),
    ),
  );
  const before = target === 'tickwire' ? await scrape(server.url) : undefined;
  const results: ThroughputResult[] = await Promise.all(
    workers.map((w) =>
      w.run({ kind: 'throughput-run', warmupMs: options.warmupMs, durationMs: options.durationMs, maxMessages: Math.ceil(options.messages / workers.length), serverPid: server.pid }),
    ),
  );
  // CPU inside the measurement window only: the server as seen by the first worker, each worker on its own.
  const round = (v: number) => Math.round(v * 100) / 100;
  const cpu: CpuShares = { server: round(results[0]!.cpu.server), ...Object.fromEntries(results.map((r, i) => [workers[i]!.name, round(r.cpu.client)])) };
  const ours = Object.values(cpu).reduce((a, b) => a + b, 0);
  cpu['others'] = Math.max(0, round(results[0]!.cpu.machine - ours));
  const after = target === 'tickwire' ? await scrape(server.url) : undefined;
  await Promise.all(workers.map((w) => w.run({ kind: 'close-all' })));
  const windowMs = Math.max(...results.map((r) => r.windowMs));
  const sum = (f: (r: ThroughputResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const errors: Record<string, number> = {};
  for (const r of results) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  const figures: ThroughputFigures = {
    connections: setups.reduce((n, s) => n + s.connections, 0),
    windowSeconds: windowMs / 1000,
    messagesPerSecond: sum((r) => r.delivered) / (windowMs / 1000),
    sendOkPerSecond: sum((r) => r.sendOk) / (windowMs / 1000),
    receiptsPerSecond: sum((r) => r.receipts) / (windowMs / 1000),
    endToEnd: Histogram.from(results.map((r) => r.endToEnd)).summary(),
    sendToOk: Histogram.from(results.map((r) => r.sendToOk)).summary(),
    errors,
    redelivered: sum((r) => r.redelivered),
    unfinished: sum((r) => r.unfinished),
    cpu,
    limitedBy: limiterOf(cpu, cpus().length),
  };
  if (before && after) {
    const fsyncs = delta(before, after, 'tickwire_store_fsync_duration_seconds_count');
    const meanFsync = histogramMean(before, after, 'tickwire_store_fsync_duration_seconds');
    const meanRecords = histogramMean(before, after, 'tickwire_store_fsync_batch_records');
    figures.server = {
      ...(fsyncs === undefined ? {} : { fsyncs }),
      ...(meanFsync === undefined ? {} : { meanFsyncMs: Math.round(meanFsync * 1e6) / 1000 }),
      ...(meanRecords === undefined ? {} : { meanRecordsPerFsync: Math.round(meanRecords * 10) / 10 }),
    };
  }
  return figures;
}

export async function throughputScenario(ctx: Context): Promise<{ tickwire: ThroughputFigures; baseline: ThroughputFigures; registrationsPerSecond: number }> {
  const { options, children } = ctx;
  ctx.progress(`throughput: starting the server, registering ${options.pairs * 2} accounts`);
  const dataDir = tempDirFor(children, 'throughput');
  const server = await startTickwire(children, {
    name: 'tickwire-throughput',
    dataDir,
    flags: { 'registrations-per-minute': 10_000_000 },
    logFile: `${ctx.logDir}/throughput.log`,
  });
  let tickwire: ThroughputFigures;
  let registrationsPerSecond: number;
  try {
    const reg = await registerAccounts(server.url, ctx.rng.fork('tp-accounts'), 'tp', options.pairs * 2);
    registrationsPerSecond = reg.perSecond;
    const pairs: Pair[] = Array.from({ length: options.pairs }, (_, i) => ({ sender: reg.accounts[2 * i]!, recipient: reg.accounts[2 * i + 1]! }));
    ctx.progress(`throughput: ${options.pairs} pairs × ${options.inFlight} in flight, ${options.warmupMs} ms warm-up + up to ${options.durationMs} ms`);
    tickwire = await runAgainst(ctx, 'tickwire', server, pairs);
    ctx.progress(`throughput: tickwire ${Math.round(tickwire.messagesPerSecond)} msg/s (${tickwire.limitedBy})`);
  } finally {
    await children.stop(server.pid);
    children.removeTempDir(dataDir);
  }
  const baselineServer = await startBaseline(children, 'baseline-throughput');
  let baseline: ThroughputFigures;
  try {
    // The echo server authenticates nobody: the "pairs" only give the loop its shape (one connection each).
    const pairs: Pair[] = Array.from({ length: options.pairs }, (_, i) => ({
      sender: { userId: `echo${i}`, deviceId: 1, secret: '' },
      recipient: { userId: `echo${i}`, deviceId: 1, secret: '' },
    }));
    baseline = await runAgainst(ctx, 'baseline', baselineServer, pairs);
    ctx.progress(`throughput: baseline ws echo ${Math.round(baseline.messagesPerSecond)} msg/s (${baseline.limitedBy})`);
  } finally {
    await children.stop(baselineServer.pid);
  }
  return { tickwire, baseline, registrationsPerSecond };
}
