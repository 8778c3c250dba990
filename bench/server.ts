// `npm run bench:server`: the reference-server benchmark. Starts the server as a black box
// (`node bin/tickwire.js serve`), and a bare `ws` echo server as the baseline, as child processes on loopback, drives
// them from client workers (bench/worker.ts) through the one wire client (reference-client/wire/), and measures in
// the same run:
//   1. end-to-end durable messages/s with many sender/recipient pairs, latencies; baseline: the same loop on echo
//   2. server RSS (and V8 heap) per idle authenticated session; baseline: per idle bare connection
//   3. draining a large backlog for one device that was offline
//   4. start-up time with that backlog on disk, after SIGTERM and after SIGKILL
//   5. authenticated sessions set up per second; baseline: bare WebSocket handshakes per second
// Prints a table and writes bench/results/server.json. Exit codes: 0 done, 1 a scenario failed, 2 bad usage.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Children, PROJECT_ROOT, tempDirFor } from './lib/children.ts';
import { kb, ms, num, ratio, table, times } from './lib/report.ts';
import { Rng } from './lib/rng.ts';
import { startWorkers } from './lib/workers.ts';
import { drainScenario, startupScenario } from './scenarios/backlog.ts';
import type { BenchOptions, Context, ScenarioName } from './scenarios/context.ts';
import { sessionsScenario } from './scenarios/sessions.ts';
import { throughputScenario } from './scenarios/throughput.ts';
import { positive } from './lib/options.ts';

const DEFAULT_SEED = 20_251_127;
const SCENARIOS: readonly ScenarioName[] = ['throughput', 'sessions', 'backlog'];
/** Targets from the performance issue. */
const TARGETS = { rssPerSessionRatioMax: 1.25, setupRateRatioMin: 0.7, drainSecondsMax: 0.5 } as const;

const HELP = `Usage: npm run bench:server -- [options]

Benchmarks the reference server against a bare ws echo server in the same run, on 127.0.0.1.
Writes bench/results/server.json (or --out) and prints a table.

  --quick             about a minute: fewer pairs, shorter window, 2,000 sessions, backlog 10,000
  --pairs N           sender/recipient pairs for the throughput run (default 50; quick 20)
  --in-flight N       outstanding messages per sender (default 32)
  --messages N        the throughput window closes once N deliveries were counted (default 2,000,000)
  --duration S        longest throughput window in seconds, after warm-up (default 20; quick 5)
  --connections N     idle sessions for the memory and set-up measurements (default 10,000; quick 2,000)
  --backlog N         messages enqueued for one offline device (default 100,000; quick 10,000)
  --workers N         client worker processes (default 1)
  --payload-bytes N   envelope body size in bytes (default 160)
  --only LIST         comma-separated subset of ${SCENARIOS.join(',')} (backlog covers drain and start-up)
  --seed N            seed of every id, key and payload (default ${DEFAULT_SEED})
  --out FILE          where to write the JSON (default bench/results/server.json)
`;

function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      pairs: { type: 'string' },
      'in-flight': { type: 'string' },
      messages: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      backlog: { type: 'string' },
      workers: { type: 'string' },
      'payload-bytes': { type: 'string' },
      only: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const only = new Set<ScenarioName>();
  for (const name of (values.only ?? SCENARIOS.join(',')).split(',')) {
    if (!SCENARIOS.includes(name as ScenarioName)) throw new RangeError(`--only takes ${SCENARIOS.join(', ')} (got '${name}')`);
    only.add(name as ScenarioName);
  }
  const seed = values.seed === undefined ? DEFAULT_SEED : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`--seed must be a non-negative integer (got '${values.seed}')`);
  return {
    quick,
    pairs: positive(values.pairs, 'pairs', quick ? 20 : 50),
    inFlight: positive(values['in-flight'], 'in-flight', 32),
    messages: positive(values.messages, 'messages', 2_000_000),
    warmupMs: quick ? 1000 : 2000,
    durationMs: positive(values.duration, 'duration', quick ? 5 : 20) * 1000,
    connections: positive(values.connections, 'connections', quick ? 2000 : 10_000),
    setupConcurrency: 50,
    backlog: positive(values.backlog, 'backlog', quick ? 10_000 : 100_000),
    backlogSenders: 32,
    workers: positive(values.workers, 'workers', 1),
    payloadBytes: positive(values['payload-bytes'], 'payload-bytes', 160),
    seed,
    only,
    out: resolve(values.out ?? join(PROJECT_ROOT, 'bench/results/server.json')),
  };
}

type Results = Record<string, unknown> & {
  throughput?: Awaited<ReturnType<typeof throughputScenario>> & { ratios: Record<string, number | undefined> };
  sessions?: Awaited<ReturnType<typeof sessionsScenario>> & { ratios: Record<string, number | undefined> };
  drain?: Awaited<ReturnType<typeof drainScenario>>;
  startup?: Awaited<ReturnType<typeof startupScenario>>;
  failures: Record<string, string>;
};

function render(results: Results): string {
  const rows: string[][] = [];
  const tp = results.throughput;
  if (tp) {
    const t = tp.tickwire;
    const b = tp.baseline;
    rows.push(['1', 'messages/s end to end (delivered)', num(t.messagesPerSecond), `${num(b.messagesPerSecond)} echoes/s`, times(tp.ratios.messagesPerSecond), '', t.limitedBy]);
    rows.push(['1', 'send_ok/s', num(t.sendOkPerSecond), '', '', '', `baseline: ${b.limitedBy}`]);
    rows.push(['1', 'send→deliver p50 / p99 ms', `${ms(t.endToEnd.p50Ms)} / ${ms(t.endToEnd.p99Ms)}`, `${ms(b.endToEnd.p50Ms)} / ${ms(b.endToEnd.p99Ms)} (echo)`, `${times(tp.ratios.p50)} / ${times(tp.ratios.p99)}`, '', '']);
    rows.push(['1', 'send→send_ok p50 / p99 ms', `${ms(t.sendToOk.p50Ms)} / ${ms(t.sendToOk.p99Ms)}`, '', '', '', t.server ? `fsync ${ms(t.server.meanFsyncMs)} ms × ${num(t.server.fsyncs)}, ${num(t.server.meanRecordsPerFsync, 1)} rec/fsync` : '']);
  }
  const se = results.sessions;
  if (se) {
    const t = se.tickwire;
    const b = se.baseline;
    rows.push(['2', `RSS per idle session (${num(t.sessions)})`, kb(t.rssPerSessionBytes), kb(b.rssPerSessionBytes), times(se.ratios.rssPerSession), `≤ ${TARGETS.rssPerSessionRatioMax}×`, 'measured (VmRSS Δ / sessions)']);
    rows.push(['2', 'V8 heap per idle session', kb(t.heapPerSessionBytes), '', '', '', 'server /metrics']);
    rows.push(['5', 'sessions set up/s (50 concurrent)', num(t.setupPerSecond), `${num(b.setupPerSecond)} handshakes/s`, times(se.ratios.setupRate), `≥ ${TARGETS.setupRateRatioMin}×`, t.limitedBy]);
    rows.push(['5', 'set-up latency p50 / p99 ms', `${ms(t.setupLatency.p50Ms)} / ${ms(t.setupLatency.p99Ms)}`, `${ms(b.setupLatency.p50Ms)} / ${ms(b.setupLatency.p99Ms)}`, '', '', `baseline: ${b.limitedBy}`]);
  }
  const dr = results.drain;
  if (dr) {
    rows.push(['3', `backlog fill (${num(dr.fill.messages)} sends, pipelined)`, `${num(dr.fill.perSecond)} /s`, '', '', '', `send_ok p50 ${ms(dr.fill.sendToOk.p50Ms)} ms`]);
    rows.push(['3', `backlog drain (${num(dr.drain.items)} items) s`, `${dr.drain.seconds.toFixed(3)} s`, '', '', `< ${TARGETS.drainSecondsMax} s`, dr.drain.limitedBy]);
    rows.push(['3', 'drain items/s', num(dr.drain.itemsPerSecond), '', '', '', `window ${dr.drain.advertisedWindow}, batch ≤ ${dr.drain.maxItemsPerFrame}`]);
  }
  const st = results.startup;
  if (st) {
    rows.push(['4', 'start-up, empty data dir (line / healthz)', `${ms(st.emptyReadyLineMs)} / ${ms(st.emptyHealthyMs)} ms`, '', '', '', '']);
    rows.push(['4', `start-up after SIGKILL (${(st.dataDirBytes / 1048576).toFixed(1)} MB log)`, `${ms(st.afterSigkill.readyLineMs)} / ${ms(st.afterSigkill.healthyMs)} ms`, '', '', '', `queued after: ${num(st.afterSigkill.queuedItems)}`]);
    rows.push(['4', 'start-up after SIGTERM', `${ms(st.afterSigterm.readyLineMs)} / ${ms(st.afterSigterm.healthyMs)} ms`, '', '', '', `SIGTERM stop took ${ms(st.sigtermStopMs)} ms`]);
    rows.push(['4', 'drain after the restarts s', `${st.drainAfterRestarts.seconds.toFixed(3)} s`, '', '', '', `${num(st.drainAfterRestarts.items)} items survived`]);
  }
  return table(['#', 'measure', 'tickwire', 'baseline ws', 'ratio', 'target', 'limited by / notes'], rows);
}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    console.error(`bench:server: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (options === 'help') {
    console.log(HELP);
    return 0;
  }
  const started = performance.now();
  const children = new Children();
  const progress = (message: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);
  const results: Results = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: { count: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
    totalMemoryBytes: totalmem(),
    // The machine may be shared: a high load average means other jobs competed for the cores during the run.
    loadAverageAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    mode: options.quick ? 'quick' : 'full',
    seed: options.seed,
    options: { ...options, only: [...options.only] },
    targets: TARGETS,
    failures: {},
  };
  progress(`seed ${options.seed}; ${options.quick ? 'quick' : 'full'} run; ${options.workers} client worker(s); ${cpus().length} CPUs`);
  const failed = (name: string, error: unknown) => {
    results.failures[name] = (error as Error).stack ?? String(error);
    progress(`${name} FAILED: ${(error as Error).message}`);
  };
  try {
    const ctx: Context = {
      children,
      workers: startWorkers(children, options.workers),
      rng: new Rng(options.seed),
      options,
      logDir: tempDirFor(children, 'logs'),
      progress,
    };
    if (options.only.has('throughput')) {
      try {
        const tp = await throughputScenario(ctx);
        results.throughput = {
          ...tp,
          ratios: {
            messagesPerSecond: ratio(tp.tickwire.messagesPerSecond, tp.baseline.messagesPerSecond),
            p50: ratio(tp.tickwire.endToEnd.p50Ms, tp.baseline.endToEnd.p50Ms),
            p99: ratio(tp.tickwire.endToEnd.p99Ms, tp.baseline.endToEnd.p99Ms),
          },
        };
      } catch (error) {
        failed('throughput', error);
      }
    }
    if (options.only.has('sessions')) {
      try {
        const se = await sessionsScenario(ctx);
        results.sessions = {
          ...se,
          ratios: { rssPerSession: ratio(se.tickwire.rssPerSessionBytes, se.baseline.rssPerSessionBytes), setupRate: ratio(se.tickwire.setupPerSecond, se.baseline.setupPerSecond) },
        };
      } catch (error) {
        failed('sessions', error);
      }
    }
    if (options.only.has('backlog')) {
      try {
        results.drain = await drainScenario(ctx);
      } catch (error) {
        failed('drain', error);
      }
      try {
        results.startup = await startupScenario(ctx);
      } catch (error) {
        failed('startup', error);
      }
    }
  } finally {
    await children.stopAll();
  }
  // The headline figures and the targets, for a reader who opens only the top of the JSON.
  results.summary = {
    messagesPerSecond: results.throughput?.tickwire.messagesPerSecond,
    messagesPerSecondRatio: results.throughput?.ratios.messagesPerSecond,
    rssPerSessionBytes: results.sessions?.tickwire.rssPerSessionBytes,
    rssPerSessionRatio: results.sessions?.ratios.rssPerSession,
    rssTargetMet: results.sessions?.ratios.rssPerSession === undefined ? undefined : results.sessions.ratios.rssPerSession <= TARGETS.rssPerSessionRatioMax,
    setupPerSecond: results.sessions?.tickwire.setupPerSecond,
    setupRateRatio: results.sessions?.ratios.setupRate,
    setupTargetMet: results.sessions?.ratios.setupRate === undefined ? undefined : results.sessions.ratios.setupRate >= TARGETS.setupRateRatioMin,
    drainSeconds: results.drain?.drain.seconds,
    drainTargetMet: results.drain === undefined ? undefined : results.drain.drain.seconds < TARGETS.drainSecondsMax,
    startupAfterSigkillMs: results.startup?.afterSigkill.readyLineMs,
    startupAfterSigtermMs: results.startup?.afterSigterm.readyLineMs,
  };
  results.loadAverageAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  results.durationSeconds = Math.round((performance.now() - started) / 100) / 10;
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(`${options.out}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(`${options.out}.tmp`, options.out);
  console.log(`\nTickwire reference server benchmark — ${results.date}, Node ${process.version}, ${cpus().length} CPUs, ${results.mode} run, seed ${options.seed}\n`);
  console.log(render(results));
  console.log(`\nLoad average at start ${(results.loadAverageAtStart as number[]).join(' ')}, at end ${(results.loadAverageAtEnd as number[]).join(' ')} (other jobs on the machine skew every figure).`);
  console.log(`Results: ${options.out} (took ${results.durationSeconds} s)`);
  const failures = Object.keys(results.failures);
  if (failures.length > 0) console.log(`Failed: ${failures.join(', ')} (stack traces in the JSON)`);
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
