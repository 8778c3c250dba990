// Scenarios 2 and 5: memory per idle authenticated session, and the rate at which sessions are set up, each against
// the bare ws server in the same run. The server's resident memory is read from /proc/<pid>/status (VmRSS) before
// and after the sessions open; the V8 heap comes from the server's /metrics when it exposes it.
import { cpus } from 'node:os';
import { registerAccounts, type Account } from '../lib/accounts.ts';
import { collectGarbage, startBaseline, startTickwire, tempDirFor, type ServerProcess } from '../lib/children.ts';
import { Histogram, type LatencySummary } from '../lib/histogram.ts';
import type { OpenSessionsResult, Target } from '../lib/jobs.ts';
import { scrape, total } from '../lib/metrics.ts';
import { CpuMeter, sampleRss } from '../lib/proc.ts';
import { split } from '../lib/workers.ts';
import { limiterOf, sleep, type Context, type CpuShares } from './context.ts';

/** Pause before a memory reading, so that the last handshakes' garbage has a chance to be collected. */
const SETTLE_MS = 2000;

export interface SessionFigures {
  sessions: number;
  failed: number;
  firstFailure?: string;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  rssPerSessionBytes: number;
  heapBeforeBytes?: number;
  heapAfterBytes?: number;
  heapPerSessionBytes?: number;
  /** Sessions the server itself reports (tickwire_ws_sessions), as a cross-check. */
  serverReportedSessions?: number;
  setupPerSecond: number;
  setupLatency: LatencySummary;
  cpu: CpuShares;
  limitedBy: string;
}

async function measure(ctx: Context, target: Target, server: ServerProcess, accounts: Account[], count: number): Promise<SessionFigures> {
  const { workers, options } = ctx;
  const heapOf = async () => (target === 'tickwire' ? total(await scrape(server.url), 'tickwire_process_heap_used_bytes') : undefined);
  await sleep(SETTLE_MS);
  await collectGarbage(server.pid);
  const rssBefore = await sampleRss(server.pid);
  const heapBefore = await heapOf();
  const accountParts = split(accounts, workers.length);
  const countParts = split(Array.from({ length: count }, (_, i) => i), workers.length).map((p) => p.length);
  const meter = new CpuMeter({ server: server.pid, ...Object.fromEntries(workers.map((w) => [w.name, w.pid])) });
  const results: OpenSessionsResult[] = await Promise.all(
    workers.map((w, i) =>
      w.run({
        kind: 'open-sessions',
        target,
        url: server.url,
        accounts: target === 'tickwire' ? accountParts[i]! : [],
        count: countParts[i]!,
        concurrency: Math.max(1, Math.round(options.setupConcurrency / workers.length)),
      }),
    ),
  );
  const cpu = meter.read();
  const opened = results.reduce((n, r) => n + r.opened, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const elapsedMs = Math.max(...results.map((r) => r.elapsedMs));
  await sleep(SETTLE_MS);
  await collectGarbage(server.pid);
  const rssAfter = await sampleRss(server.pid);
  const metricsAfter = target === 'tickwire' ? await scrape(server.url) : undefined;
  const heapAfter = metricsAfter ? total(metricsAfter, 'tickwire_process_heap_used_bytes') : undefined;
  await Promise.all(workers.map((w) => w.run({ kind: 'close-all' })));
  const firstFailure = results.find((r) => r.firstFailure)?.firstFailure;
  const figures: SessionFigures = {
    sessions: opened,
    failed,
    ...(firstFailure ? { firstFailure } : {}),
    rssBeforeBytes: rssBefore.medianBytes,
    rssAfterBytes: rssAfter.medianBytes,
    rssPerSessionBytes: opened > 0 ? (rssAfter.medianBytes - rssBefore.medianBytes) / opened : NaN,
    setupPerSecond: opened / (elapsedMs / 1000),
    setupLatency: Histogram.from(results.map((r) => r.setup)).summary(),
    cpu,
    limitedBy: limiterOf(cpu, cpus().length),
  };
  if (heapBefore !== undefined && heapAfter !== undefined) {
    figures.heapBeforeBytes = heapBefore;
    figures.heapAfterBytes = heapAfter;
    figures.heapPerSessionBytes = opened > 0 ? (heapAfter - heapBefore) / opened : NaN;
  }
  const reported = metricsAfter ? total(metricsAfter, 'tickwire_ws_sessions') : undefined;
  if (reported !== undefined) figures.serverReportedSessions = reported;
  return figures;
}

export async function sessionsScenario(ctx: Context): Promise<{ tickwire: SessionFigures; baseline: SessionFigures; registrationsPerSecond: number; registered: number }> {
  const { options, children } = ctx;
  const dataDir = tempDirFor(children, 'sessions');
  const flags = { 'registrations-per-minute': 10_000_000 };
  let server = await startTickwire(children, { name: 'tickwire-sessions-register', dataDir, flags, logFile: `${ctx.logDir}/sessions.log` });
  let accounts: Account[];
  let registrationsPerSecond: number;
  try {
    ctx.progress(`sessions: registering ${options.connections} accounts over HTTP`);
    const reg = await registerAccounts(server.url, ctx.rng.fork('sessions-accounts'), 'se', options.connections, 64);
    accounts = reg.accounts;
    registrationsPerSecond = reg.perSecond;
    ctx.progress(`sessions: ${Math.round(reg.perSecond)} registrations/s; restarting the server so that "before" is a fresh process`);
  } finally {
    await children.stop(server.pid);
  }
  let tickwire: SessionFigures;
  server = await startTickwire(children, { name: 'tickwire-sessions', dataDir, flags, logFile: `${ctx.logDir}/sessions.log`, gcOnSignal: true });
  try {
    ctx.progress(`sessions: opening ${options.connections} authenticated sessions, ${options.setupConcurrency} at a time`);
    tickwire = await measure(ctx, 'tickwire', server, accounts, options.connections);
    ctx.progress(`sessions: tickwire ${Math.round(tickwire.rssPerSessionBytes)} B RSS/session, ${Math.round(tickwire.setupPerSecond)} sessions/s`);
  } finally {
    await children.stop(server.pid);
    children.removeTempDir(dataDir);
  }
  const baselineServer = await startBaseline(children, 'baseline-sessions', true);
  let baseline: SessionFigures;
  try {
    baseline = await measure(ctx, 'baseline', baselineServer, [], options.connections);
    ctx.progress(`sessions: baseline ${Math.round(baseline.rssPerSessionBytes)} B RSS/connection, ${Math.round(baseline.setupPerSecond)} connections/s`);
  } finally {
    await children.stop(baselineServer.pid);
  }
  return { tickwire, baseline, registrationsPerSecond, registered: accounts.length };
}
