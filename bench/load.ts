// `npm run bench:load`: the figures of issue 7 from the load tool itself (`tickwire load`, the command operators
// run), against the reference server and against the bare ws relay of `--target baseline` (load/baseline-server.ts:
// plain ws, no accounts, no store, no protocol) in the same run on this machine, each measurement on a fresh server:
//   connections  N sessions ramped at a fixed rate and held: accepted, held, connect p50/p99, server RSS per session
//   pairs        a ladder of fixed total rates, a few seconds each: achieved rate, send→delivery p50/p99/p99.9,
//                losses; the highest rung whose p99 send→delivery stays under 50 ms
// and the ratios reference / baseline, which isolate the server's protocol work (authentication, validation, the
// durable store and its fsyncs, windows, receipts). Rungs alternate between the two targets, so that other jobs on
// a shared machine weigh on both alike. Each run is `node bin/tickwire.js load … --url --pid --output` (bench/ does
// not import load/; it reads the JSON report); the CPU of the server, of the load tool and of everything else is
// sampled from /proc over the run's load phase, to say what limited each figure.
// Prints a table and writes bench/results/load.json. Exit codes: 0 done, 1 a run failed or lost messages, 2 usage.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Children, PROJECT_ROOT, startBareRelay, startTickwire, tempDirFor, type ServerProcess } from './lib/children.ts';
import { CpuSampler } from './lib/cpu-sampler.ts';
import { kb, ms, num, ratio, table, times } from './lib/report.ts';
import { limiterOf, type CpuShares } from './scenarios/context.ts';
import { positive } from './lib/options.ts';

const TICKWIRE_BIN = join(PROJECT_ROOT, 'bin/tickwire.js');
/** The issue's latency target for the pairs ladder. */
const P99_TARGET_MS = 50;
/** What the load tool needs of the reference server: registrations effectively unlimited (load/server-process.ts). */
const REFERENCE_FLAGS = { 'registrations-per-minute': 1_000_000 };
const TARGETS = ['tickwire', 'baseline'] as const;
type Target = (typeof TARGETS)[number];

const HELP = `Usage: npm run bench:load -- [options]

Runs \`tickwire load\` against a fresh reference server and a fresh bare ws relay (tickwire load --target
baseline) on 127.0.0.1, in the same run: the connections scenario, then the pairs scenario at each rate of a
ladder. Writes bench/results/load.json (or --out) and prints a table.

  --quick             about two minutes: 200 sessions, 10 pairs, ladder 200,400 msg/s, 2 s rungs
  --sessions N        sessions of the connections run (default 10,000; quick 200)
  --connect-rate N    sessions opened per second, open loop (default 500; quick 200)
  --hold S            seconds the sessions are held after the ramp (default 10; quick 1)
  --pairs N           sender/recipient pairs of each pairs rung (default 50; quick 10)
  --ladder LIST       total message rates, comma-separated (default 500,1000,2000,4000; quick 200,400)
  --rung S            seconds of sending per rung (default 10; quick 2)
  --warmup S          before each rung, seconds of the same load on the same server whose figures are dropped:
                      each rung starts a fresh server, whose first second (JIT, first allocations) would otherwise
                      be the p99 of a short rung (default 3; quick 0, none)
  --workers N         load tool worker processes (default: the tool's choice)
  --reports DIR       also keep each run's full JSON report (histograms, samples, timeline) in DIR
  --out FILE          where to write the results (default bench/results/load.json)
`;

export interface LoadBenchOptions {
  quick: boolean;
  sessions: number;
  connectRate: number;
  holdSeconds: number;
  pairs: number;
  ladder: number[];
  rungSeconds: number;
  warmupSeconds: number;
  workers?: number;
  reports?: string;
  out: string;
}

function parseOptions(argv: string[]): LoadBenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      sessions: { type: 'string' },
      'connect-rate': { type: 'string' },
      hold: { type: 'string' },
      pairs: { type: 'string' },
      ladder: { type: 'string' },
      rung: { type: 'string' },
      warmup: { type: 'string' },
      workers: { type: 'string' },
      reports: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const ladder = (values.ladder ?? (quick ? '200,400' : '500,1000,2000,4000')).split(',').map((r) => positive(r.trim(), 'ladder', 0));
  return {
    quick,
    sessions: positive(values.sessions, 'sessions', quick ? 200 : 10_000),
    connectRate: positive(values['connect-rate'], 'connect-rate', quick ? 200 : 500),
    holdSeconds: positive(values.hold, 'hold', quick ? 1 : 10),
    pairs: positive(values.pairs, 'pairs', quick ? 10 : 50),
    ladder: [...new Set(ladder)].sort((a, b) => a - b),
    rungSeconds: positive(values.rung, 'rung', quick ? 2 : 10),
    warmupSeconds: values.warmup === '0' ? 0 : positive(values.warmup, 'warmup', quick ? 0 : 3),
    ...(values.workers !== undefined ? { workers: positive(values.workers, 'workers', 1) } : {}),
    ...(values.reports !== undefined ? { reports: resolve(values.reports) } : {}),
    out: resolve(values.out ?? join(PROJECT_ROOT, 'bench/results/load.json')),
  };
}

/** The parts of the load tool's JSON report (load/README.md, version 1) this benchmark reads. */
interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}
interface LoadReport {
  tool: string;
  version: number;
  scenario: string;
  elapsedMs: number;
  phases: Record<string, number>;
  sessions: { registered: number; attempted: number; accepted: number; held?: number; peakOpen: number; connectLatency: Percentiles };
  messages: { sent: number; accepted: number; refused: number; unanswered: number; delivered: number; receipts: number; lost: number; duplicated: number; reordered: number; receiptsMissing: number; unexpected: number; achievedRate: number; sendToAck: Percentiles; sendToDelivery: Percentiles };
  errors: Record<string, number>;
  server: { samples: Array<{ t: number; rssBytes: number; cpuPercent?: number }>; baselineRssBytes?: number; peakRssBytes?: number; memoryPerSessionBytes?: number } | null;
  verdict: { pass: boolean; failures: string[] };
}

interface RunResult {
  /** The load tool's command line (URL and pid of this run's server). */
  command: string;
  exitCode: number | null;
  report: LoadReport;
  /** Cores used over the load phase (`workers` is the load tool: its coordinator and worker processes). */
  cpu: CpuShares | undefined;
  limitedBy: string;
}

interface Common {
  command: string;
  exitCode: number | null;
  pass: boolean;
  failures: string[];
  errors: Record<string, number>;
  cpu: CpuShares | undefined;
  limitedBy: string;
}

export interface ConnectionFigures extends Common {
  sessions: number;
  accepted: number;
  held: number | undefined;
  connect: Percentiles;
  rss: { startBytes?: number; preparedBytes?: number; peakBytes?: number };
  /** (peak RSS − RSS when setup ended) / held sessions: the sessions alone, without the accounts registered for them. */
  memoryPerSessionBytes: number | undefined;
  /** The load tool's own figure, (peak − start) / held: includes the accounts registered during setup. */
  memoryPerSessionFromStartBytes: number | undefined;
}

export interface RungFigures extends Common {
  requestedRate: number;
  achievedRate: number;
  sent: number;
  accepted: number;
  delivered: number;
  receipts: number;
  lost: number;
  duplicated: number;
  reordered: number;
  receiptsMissing: number;
  unanswered: number;
  sendToAck: Percentiles;
  sendToDelivery: Percentiles;
  /** The run passed and its p99 send→delivery is under the target. */
  underTarget: boolean;
}

/** Runs `node bin/tickwire.js load <args> --url --pid --quiet --output` against `server`. */
async function runLoad(server: ServerProcess, args: string[], dir: string, label: string, phases: [string, string], deadlineMs: number): Promise<RunResult> {
  const output = join(dir, `${label}.json`);
  const full = [...args, '--url', server.url, '--pid', String(server.pid), '--quiet', '--output', output];
  const child = spawn(process.execPath, [TICKWIRE_BIN, 'load', ...full], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const sampler = new CpuSampler(server.pid, child.pid!);
  sampler.start();
  let stdout = '';
  let stderr = '';
  // The summary goes to stdout only once the run is over: its arrival marks the coordinator's end.
  let endedAt: number | undefined;
  child.stdout.on('data', (c: Buffer) => {
    endedAt ??= performance.now();
    stdout += c;
  });
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c).slice(-8000)));
  const killer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  const exitCode = await new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  clearTimeout(killer);
  sampler.stop();
  const command = `tickwire load ${[...args, '--url', server.url, '--pid', String(server.pid)].join(' ')}`;
  let report: LoadReport;
  try {
    report = JSON.parse(readFileSync(output, 'utf8')) as LoadReport;
  } catch {
    throw new Error(`${command} wrote no report (exit ${exitCode})\n${stdout}\n${stderr}`);
  }
  const end = endedAt ?? performance.now();
  const from = report.phases[phases[0]];
  const to = report.phases[phases[1]];
  const cpu = from !== undefined && to !== undefined ? sampler.shares(end - report.elapsedMs + from, end - report.elapsedMs + to) : undefined;
  return { command, exitCode, report, cpu, limitedBy: cpu ? limiterOf(cpu, cpus().length) : 'unknown (load phase too short to sample)' };
}

function common(run: RunResult): Common {
  return { command: run.command, exitCode: run.exitCode, pass: run.report.verdict.pass, failures: run.report.verdict.failures, errors: run.report.errors, cpu: run.cpu, limitedBy: run.limitedBy };
}

function connectionFigures(run: RunResult, sessions: number): ConnectionFigures {
  const r = run.report;
  const samples = r.server?.samples ?? [];
  const prepared = r.phases['prepared'];
  // The last sample before the ramp began: the server after every account was registered, before any session.
  const atPrepared = prepared === undefined ? undefined : samples.filter((s) => s.t <= prepared).at(-1)?.rssBytes;
  const peak = r.server?.peakRssBytes;
  const held = r.sessions.held;
  const base = atPrepared ?? r.server?.baselineRssBytes;
  return {
    ...common(run),
    sessions,
    accepted: r.sessions.accepted,
    held,
    connect: r.sessions.connectLatency,
    rss: { ...(r.server?.baselineRssBytes !== undefined ? { startBytes: r.server.baselineRssBytes } : {}), ...(atPrepared !== undefined ? { preparedBytes: atPrepared } : {}), ...(peak !== undefined ? { peakBytes: peak } : {}) },
    memoryPerSessionBytes: peak !== undefined && base !== undefined && held ? Math.round((peak - base) / held) : undefined,
    memoryPerSessionFromStartBytes: r.server?.memoryPerSessionBytes,
  };
}

function rungFigures(run: RunResult, rate: number): RungFigures {
  const m = run.report.messages;
  return {
    ...common(run),
    requestedRate: rate,
    achievedRate: m.achievedRate,
    sent: m.sent,
    accepted: m.accepted,
    delivered: m.delivered,
    receipts: m.receipts,
    lost: m.lost,
    duplicated: m.duplicated,
    reordered: m.reordered,
    receiptsMissing: m.receiptsMissing,
    unanswered: m.unanswered,
    sendToAck: m.sendToAck,
    sendToDelivery: m.sendToDelivery,
    underTarget: run.report.verdict.pass && m.sendToDelivery.count > 0 && m.sendToDelivery.p99 < P99_TARGET_MS,
  };
}

async function startServer(children: Children, target: Target, label: string): Promise<ServerProcess> {
  return target === 'tickwire' ? startTickwire(children, { name: `tickwire-${label}`, dataDir: tempDirFor(children, `load-${label}`), flags: REFERENCE_FLAGS }) : startBareRelay(children, `bare-ws-relay-${label}`);
}

type Results = Record<string, unknown> & {
  connections: Partial<Record<Target, ConnectionFigures>> & { ratios?: Record<string, number | undefined> };
  pairs: { rungs: Array<{ rate: number; ratios?: Record<string, number | undefined> } & Partial<Record<Target, RungFigures>>>; highestRateUnderTarget?: Record<Target, number | null> & { ratio: number | null; ladderTop: number; rule: string } };
  failures: Record<string, string>;
};

const p3 = (p: Percentiles | undefined) => (p && p.count > 0 ? `${ms(p.p50)} / ${ms(p.p99)} / ${ms(p.p999)}` : '–');

function render(results: Results, options: LoadBenchOptions): string {
  const rows: string[][] = [];
  const c = results.connections;
  const ct = c.tickwire;
  const cb = c.baseline;
  rows.push(['connections', `accepted / held of ${num(options.sessions)}`, ct ? `${num(ct.accepted)} / ${num(ct.held)}` : '–', cb ? `${num(cb.accepted)} / ${num(cb.held)}` : '–', times(c.ratios?.['held']), ct?.limitedBy ?? '']);
  rows.push(['', 'connect p50 / p99 ms', ct ? `${ms(ct.connect.p50)} / ${ms(ct.connect.p99)}` : '–', cb ? `${ms(cb.connect.p50)} / ${ms(cb.connect.p99)}` : '–', `${times(c.ratios?.['connectP50'])} / ${times(c.ratios?.['connectP99'])}`, cb ? `baseline: ${cb.limitedBy}` : '']);
  rows.push(['', 'server RSS per session', kb(ct?.memoryPerSessionBytes), kb(cb?.memoryPerSessionBytes), times(c.ratios?.['memoryPerSession']), 'peak RSS − RSS after setup, / held; no forced GC']);
  for (const rung of results.pairs.rungs) {
    const t = rung.tickwire;
    const b = rung.baseline;
    const verdict = (f: RungFigures | undefined) => (f ? `${f.pass ? '' : 'FAIL '}${num(f.achievedRate)}/s, lost ${f.lost} dup ${f.duplicated} reord ${f.reordered}` : '–');
    rows.push([`pairs ${num(rung.rate)}/s`, 'achieved, accounting', verdict(t), verdict(b), times(rung.ratios?.['achievedRate']), t?.limitedBy ?? '']);
    rows.push(['', 'send→dlv p50 / p99 / p99.9 ms', p3(t?.sendToDelivery), p3(b?.sendToDelivery), `${times(rung.ratios?.['p50'])} / ${times(rung.ratios?.['p99'])} / ${times(rung.ratios?.['p999'])}`, b ? `baseline: ${b.limitedBy}` : '']);
  }
  const h = results.pairs.highestRateUnderTarget;
  if (h) {
    const show = (v: number | null) => (v === null ? 'none' : `${num(v)}/s${v === h.ladderTop ? ' (ladder top)' : ''}`);
    rows.push(['pairs', `highest rung, p99 send→dlv < ${P99_TARGET_MS} ms`, show(h.tickwire), show(h.baseline), times(h.ratio ?? undefined), 'none: not even the lowest rung']);
  }
  return table(['scenario', 'measure', 'tickwire (reference)', 'bare ws relay', 'ratio ref/base', 'limited by (tickwire, then baseline)'], rows);
}

async function main(argv: string[]): Promise<number> {
  let options: LoadBenchOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    console.error(`bench:load: ${(error as Error).message}\n\n${HELP}`);
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
    benchmark: 'load',
    date: new Date().toISOString(),
    command: `npm run bench:load${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: { count: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
    totalMemoryBytes: totalmem(),
    // The machine may be shared: a high load average means other jobs competed for the cores during the run.
    loadAverageAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    mode: options.quick ? 'quick' : 'full',
    options,
    target: { p99SendToDeliveryMs: P99_TARGET_MS },
    connections: {},
    pairs: { rungs: [] },
    failures: {},
  };
  const dir = tempDirFor(children, 'load-reports');
  const workers = options.workers !== undefined ? ['--workers', String(options.workers)] : [];
  const keep = (label: string) => {
    if (options.reports === undefined) return;
    mkdirSync(options.reports, { recursive: true });
    copyFileSync(join(dir, `${label}.json`), join(options.reports, `${label}.json`));
  };
  /** One measurement on a fresh server of `target`; failures are recorded, not thrown. */
  const measure = async (target: Target, label: string, args: string[], phases: [string, string], deadlineMs: number, warmup?: string[]): Promise<RunResult | undefined> => {
    let server: ServerProcess | undefined;
    try {
      server = await startServer(children, target, label);
      // Figures dropped; a warm-up that fails its accounting still fails the measurement.
      if (warmup) {
        const warm = await runLoad(server, ['--target', target, ...warmup, ...workers], dir, `${label}-warmup`, phases, deadlineMs);
        if (!warm.report.verdict.pass) throw new Error(`warm-up failed: ${warm.report.verdict.failures.join('; ')}`);
      }
      const run = await runLoad(server, ['--target', target, ...args, ...workers], dir, label, phases, deadlineMs);
      keep(label);
      return run;
    } catch (error) {
      results.failures[label] = (error as Error).stack ?? String(error);
      progress(`${label} FAILED: ${(error as Error).message.split('\n')[0]}`);
      return undefined;
    } finally {
      if (server) await children.stop(server.pid);
    }
  };
  progress(`${options.quick ? 'quick' : 'full'} run on ${cpus().length} CPUs: ${options.sessions} sessions, ladder ${options.ladder.join(', ')} msg/s over ${options.pairs} pairs`);
  try {
    const rampMs = Math.ceil((options.sessions / options.connectRate) * 1000);
    for (const target of TARGETS) {
      progress(`connections ${target}: ${options.sessions} sessions at ${options.connectRate}/s, held ${options.holdSeconds} s`);
      const args = ['connections', '--count', String(options.sessions), '--rate', String(options.connectRate), '--duration', `${rampMs + options.holdSeconds * 1000}ms`];
      const run = await measure(target, `connections-${target}`, args, ['prepared', 'held'], 600_000 + rampMs * 3);
      if (!run) continue;
      const figures = connectionFigures(run, options.sessions);
      results.connections[target] = figures;
      progress(`connections ${target}: held ${figures.held}/${options.sessions}, connect p99 ${ms(figures.connect.p99)} ms, ${kb(figures.memoryPerSessionBytes)}/session; ${figures.limitedBy}`);
    }
    const ct = results.connections.tickwire;
    const cb = results.connections.baseline;
    results.connections.ratios = {
      held: ratio(ct?.held, cb?.held),
      connectP50: ratio(ct?.connect.p50, cb?.connect.p50),
      connectP99: ratio(ct?.connect.p99, cb?.connect.p99),
      memoryPerSession: ratio(ct?.memoryPerSessionBytes, cb?.memoryPerSessionBytes),
    };
    for (const rate of options.ladder) {
      const rung: Results['pairs']['rungs'][number] = { rate };
      results.pairs.rungs.push(rung);
      for (const target of TARGETS) {
        const args = ['pairs', '--count', String(options.pairs), '--rate', String(rate), '--duration', `${options.rungSeconds}s`];
        const warmup = options.warmupSeconds > 0 ? ['pairs', '--count', String(options.pairs), '--rate', String(rate), '--duration', `${options.warmupSeconds}s`] : undefined;
        const run = await measure(target, `pairs-${rate}-${target}`, args, ['connected', 'loaded'], 600_000, warmup);
        if (!run) continue;
        const figures = rungFigures(run, rate);
        rung[target] = figures;
        progress(`pairs ${rate}/s ${target}: ${figures.achievedRate}/s, send→dlv p99 ${ms(figures.sendToDelivery.p99)} ms, lost ${figures.lost}${figures.pass ? '' : ` FAIL: ${figures.failures.join('; ')}`}; ${figures.limitedBy}`);
      }
      rung.ratios = {
        achievedRate: ratio(rung.tickwire?.achievedRate, rung.baseline?.achievedRate),
        p50: ratio(rung.tickwire?.sendToDelivery.p50, rung.baseline?.sendToDelivery.p50),
        p99: ratio(rung.tickwire?.sendToDelivery.p99, rung.baseline?.sendToDelivery.p99),
        p999: ratio(rung.tickwire?.sendToDelivery.p999, rung.baseline?.sendToDelivery.p999),
      };
    }
    // The highest rung under the target with every lower rung under it too: a ladder stops at its first miss.
    const highest = (target: Target) => {
      let best: number | null = null;
      for (const rung of results.pairs.rungs) {
        if (!rung[target]?.underTarget) break;
        best = rung.rate;
      }
      return best;
    };
    const tickwire = highest('tickwire');
    const baseline = highest('baseline');
    results.pairs.highestRateUnderTarget = { tickwire, baseline, ratio: ratio(tickwire ?? undefined, baseline ?? undefined) ?? null, ladderTop: options.ladder.at(-1)!, rule: `the highest rung that, with every rung below it, passed its accounting with p99 send→delivery < ${P99_TARGET_MS} ms; null: not even the first` };
  } finally {
    await children.stopAll();
  }
  const rungs = results.pairs.rungs;
  const accountingFailed = rungs.some((r) => TARGETS.some((t) => (r[t]?.lost ?? 0) + (r[t]?.duplicated ?? 0) + (r[t]?.reordered ?? 0) > 0));
  results.summary = {
    sessions: options.sessions,
    heldTickwire: results.connections.tickwire?.held,
    heldBaseline: results.connections.baseline?.held,
    memoryPerSessionBytesTickwire: results.connections.tickwire?.memoryPerSessionBytes,
    memoryPerSessionBytesBaseline: results.connections.baseline?.memoryPerSessionBytes,
    memoryPerSessionRatio: results.connections.ratios?.['memoryPerSession'],
    connectP99MsTickwire: results.connections.tickwire?.connect.p99,
    connectP99MsBaseline: results.connections.baseline?.connect.p99,
    highestRateUnderTargetTickwire: results.pairs.highestRateUnderTarget?.tickwire,
    highestRateUnderTargetBaseline: results.pairs.highestRateUnderTarget?.baseline,
    highestRateRatio: results.pairs.highestRateUnderTarget?.ratio,
    accountingFailed,
  };
  results.loadAverageAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  results.durationSeconds = Math.round((performance.now() - started) / 100) / 10;
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(`${options.out}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(`${options.out}.tmp`, options.out);
  console.log(`\nTickwire load benchmark (tickwire load, reference server vs bare ws relay) — ${results.date}, Node ${process.version}, ${cpus().length} CPUs, ${results.mode} run\n`);
  console.log(render(results, options));
  console.log(`\nRatios are reference / baseline. Load average at start ${(results.loadAverageAtStart as number[]).join(' ')}, at end ${(results.loadAverageAtEnd as number[]).join(' ')} (other jobs on the machine skew every figure).`);
  console.log(`Results: ${options.out} (took ${results.durationSeconds} s)`);
  const failures = Object.keys(results.failures);
  if (failures.length > 0) console.log(`Failed: ${failures.join(', ')} (details in the JSON)`);
  if (accountingFailed) console.log('A run lost, duplicated or reordered messages (see the rungs in the JSON).');
  return failures.length > 0 || accountingFailed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
