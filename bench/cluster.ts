// `npm run bench:cluster`: the figures of issue 8 (scale-out on Redis), from the load tool itself (`tickwire load`)
// against `tickwire serve` started as an operator would, with a redis-server of the benchmark's own (loopback, a
// free port, a temporary directory, `appendonly yes`, `appendfsync always`: the setting that keeps the spec's
// promise), in one run on this machine:
//   sessions  one host with N workers (`serve --workers N --redis`): C sessions ramped at a fixed rate by a load tool
//             spreading its own connections over W processes and ~1,000 per loopback source address, held: accepted,
//             held, connect p50/p99, errors, the server workers' RSS (summed from /proc) per session and Redis's
//   pairs     durable end-to-end messages per second at a ladder of rates against (a) the embedded single process
//             (log store), (b) 1 worker on Redis, (c) 2 workers on Redis, interleaved rung by rung so that other
//             jobs on a shared machine weigh on all three alike: achieved rate, send→delivery p50/p99, accounting,
//             the highest rung under 50 ms p99 and the highest clean throughput, with ratios against (a)
// Every measurement runs on a fresh server (and a fresh Redis). The CPU of the server processes, of the load tool,
// of Redis and of everything else is sampled from /proc over each load phase, to say what limited each figure.
// Prints a table and writes bench/results/cluster.json. Exit codes: 0 done, 1 a run failed or lost messages, 2 usage.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Children, PROJECT_ROOT, startTickwire, tempDirFor, type ServerProcess } from './lib/children.ts';
import { ClusterSampler, type ClusterCpu } from './lib/cluster-sampler.ts';
import { redisInfo, startRedis, type RedisProcess } from './lib/redis.ts';
import { kb, ms, num, ratio, table, times } from './lib/report.ts';
import { positive } from './lib/options.ts';

const TICKWIRE_BIN = join(PROJECT_ROOT, 'bin/tickwire.js');
/** The issue's latency target for the pairs ladder. */
const P99_TARGET_MS = 50;
/** A rung whose p99 send→delivery exceeds this (or whose drain timed out) ends its target's ladder. */
const SATURATED_P99_MS = 2000;
/** What the load tool needs of the reference server: registrations effectively unlimited (load/README.md). */
const REGISTRATIONS_PER_MINUTE = 1_000_000;
/** The load tool's own default split: one worker process per this many sessions (load/cli.ts). */
const SESSIONS_PER_LOAD_WORKER = 15_000;
const TARGETS = ['embedded', 'redis-1', 'redis-2'] as const;
type Target = (typeof TARGETS)[number];
const TARGET_TITLES: Record<Target, string> = { embedded: 'embedded (log)', 'redis-1': '1 worker, Redis', 'redis-2': '2 workers, Redis' };

const HELP = `Usage: npm run bench:cluster -- [options]

Starts its own redis-server (127.0.0.1, a free port, a temporary directory, appendonly yes, appendfsync always)
and measures, in one run: the sessions one host holds with N workers (tickwire serve --workers N --redis), and
durable end-to-end messages per second (tickwire load pairs) at each rate of a ladder against the embedded single
process, 1 worker on Redis and 2 workers on Redis, interleaved rung by rung. Writes bench/results/cluster.json (or
--out) and prints a table.

Sessions:
  --server-workers N  server worker processes (default 6; quick 2)
  --sessions N        sessions ramped and held (default 100,000; quick 600)
  --connect-rate N    sessions opened per second, open loop (default 250, what this 2-core machine sustains
                      with 6 workers on Redis next to other jobs; quick 300)
  --hold S            seconds the sessions are held after the ramp (default 15; quick 3)
  --load-workers N    load tool processes (default one per ${num(SESSIONS_PER_LOAD_WORKER)} sessions; quick 2)
  --local-address L   the load tool's source addresses (default: its own choice, ~1,000 sessions per address)
  --setup-timeout S   how long registering the accounts may take (default max(120, sessions / 50))
Messages:
  --pairs N           sender/recipient pairs of each pairs rung (default 50; quick 10)
  --ladder LIST       total message rates, comma-separated (default 250,500,1000,2000,4000; quick 200)
  --rung S            seconds of sending per rung (default 10; quick 2)
  --warmup S          before each rung, seconds of the same load on the same deployment whose figures are dropped
                      (a fresh deployment's first second, JIT and first allocations, would be a short rung's p99;
                      default 3; quick 0, none)
  --pairs-load-workers N  load tool processes of each pairs rung (default: the tool's choice)
Run:
  --quick             small numbers, for a test
  --only PART         sessions or pairs
  --reports DIR       also keep each run's full JSON report in DIR
  --out FILE          where to write the results (default bench/results/cluster.json)
`;

export interface ClusterBenchOptions {
  quick: boolean;
  serverWorkers: number;
  sessions: number;
  connectRate: number;
  holdSeconds: number;
  loadWorkers: number;
  localAddress?: string;
  setupTimeoutSeconds: number;
  pairs: number;
  ladder: number[];
  rungSeconds: number;
  warmupSeconds: number;
  pairsLoadWorkers?: number;
  only?: 'sessions' | 'pairs';
  reports?: string;
  out: string;
}

function parseOptions(argv: string[]): ClusterBenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      'server-workers': { type: 'string' },
      sessions: { type: 'string' },
      'connect-rate': { type: 'string' },
      hold: { type: 'string' },
      'load-workers': { type: 'string' },
      'local-address': { type: 'string' },
      'setup-timeout': { type: 'string' },
      pairs: { type: 'string' },
      ladder: { type: 'string' },
      rung: { type: 'string' },
      warmup: { type: 'string' },
      'pairs-load-workers': { type: 'string' },
      only: { type: 'string' },
      reports: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const sessions = positive(values.sessions, 'sessions', quick ? 600 : 100_000);
  const ladder = (values.ladder ?? (quick ? '200' : '250,500,1000,2000,4000')).split(',').map((r) => positive(r.trim(), 'ladder', 0));
  if (values.only !== undefined && values.only !== 'sessions' && values.only !== 'pairs') throw new RangeError(`--only must be sessions or pairs (got '${values.only}')`);
  return {
    quick,
    serverWorkers: positive(values['server-workers'], 'server-workers', quick ? 2 : 6),
    sessions,
    connectRate: positive(values['connect-rate'], 'connect-rate', quick ? 300 : 250),
    holdSeconds: positive(values.hold, 'hold', quick ? 3 : 15),
    loadWorkers: positive(values['load-workers'], 'load-workers', quick ? 2 : Math.max(1, Math.ceil(sessions / SESSIONS_PER_LOAD_WORKER))),
    ...(values['local-address'] !== undefined ? { localAddress: values['local-address'] } : {}),
    setupTimeoutSeconds: positive(values['setup-timeout'], 'setup-timeout', Math.max(120, Math.ceil(sessions / 50))),
    pairs: positive(values.pairs, 'pairs', quick ? 10 : 50),
    ladder: [...new Set(ladder)].sort((a, b) => a - b),
    rungSeconds: positive(values.rung, 'rung', quick ? 2 : 10),
    warmupSeconds: values.warmup === '0' ? 0 : positive(values.warmup, 'warmup', quick ? 0 : 3),
    ...(values['pairs-load-workers'] !== undefined ? { pairsLoadWorkers: positive(values['pairs-load-workers'], 'pairs-load-workers', 1) } : {}),
    ...(values.only !== undefined ? { only: values.only } : {}),
    ...(values.reports !== undefined ? { reports: resolve(values.reports) } : {}),
    out: resolve(values.out ?? join(PROJECT_ROOT, 'bench/results/cluster.json')),
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
  elapsedMs: number;
  phases: Record<string, number>;
  localAddresses: string[][];
  sessions: { registered: number; attempted: number; accepted: number; held?: number; peakOpen: number; connectLatency: Percentiles };
  messages: { sent: number; accepted: number; refused: number; unanswered: number; delivered: number; receipts: number; lost: number; duplicated: number; reordered: number; receiptsMissing: number; unexpected: number; achievedRate: number; sendToAck: Percentiles; sendToDelivery: Percentiles };
  figures: Record<string, number>;
  errors: Record<string, number>;
  timeline?: Array<{ t: number; open: number; delivered: number }>;
  verdict: { pass: boolean; failures: string[]; aborted?: string };
}

/** A server under test: `tickwire serve` (one process or a primary and its workers) and its Redis, if any. */
interface Deployment {
  server: ServerProcess;
  redis?: RedisProcess;
  /** The serve command line, as an operator would type it. */
  serverCommand: string;
}

interface Run {
  /** The load tool's command line. */
  command: string;
  exitCode: number | null;
  report: LoadReport;
  sampler: ClusterSampler;
  /** performance.now() of a phase barrier of the report (ms since the tool started). */
  at(phase: string): number | undefined;
}

/** Runs `node bin/tickwire.js load <args> --url --quiet --output` against `deployment`, sampling every process. */
async function runLoad(children: Children, deployment: Deployment, args: string[], dir: string, label: string, deadlineMs: number): Promise<Run> {
  const output = join(dir, `${label}.json`);
  const full = [...args, '--url', deployment.server.url, '--quiet', '--output', output];
  const child = spawn(process.execPath, [TICKWIRE_BIN, 'load', ...full], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  void children.track(`tickwire-load-${label}`, child);
  const sampler = new ClusterSampler({ server: deployment.server.pid, tool: child.pid!, ...(deployment.redis ? { redis: deployment.redis.pid } : {}) });
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
  const command = `tickwire load ${[...args, '--url', deployment.server.url].join(' ')}`;
  let report: LoadReport;
  try {
    report = JSON.parse(readFileSync(output, 'utf8')) as LoadReport;
  } catch {
    throw new Error(`${command} wrote no report (exit ${exitCode})\n${stdout}\n${stderr}\nserver: ${deployment.server.stderrTail()}`);
  }
  const startedAt = (endedAt ?? performance.now()) - report.elapsedMs;
  return { command, exitCode, report, sampler, at: (phase) => (report.phases[phase] === undefined ? undefined : startedAt + report.phases[phase]!) };
}

/** What bounded a figure, from the CPU shares over its load phase and the machine's core count. */
function limiterOf(cpu: ClusterCpu | undefined, cores: number): string {
  if (!cpu) return 'unknown (load phase too short to sample)';
  const parts: string[] = [];
  if (cpu.serverBusiest >= 0.9) parts.push(`server CPU (busiest of ${cpu.serverProcesses} process(es) ${cpu.serverBusiest.toFixed(2)} core, single-threaded)`);
  if (cpu.redis >= 0.9) parts.push(`Redis CPU (${cpu.redis.toFixed(2)} core)`);
  if (cpu.toolBusiest >= 0.9) parts.push(`load tool CPU (busiest process ${cpu.toolBusiest.toFixed(2)} core)`);
  const used = `server ${cpu.server.toFixed(2)} + tool ${cpu.tool.toFixed(2)} + Redis ${cpu.redis.toFixed(2)} + others ${cpu.others.toFixed(2)} (of which irq ${cpu.irq.toFixed(2)}, steal ${cpu.steal.toFixed(2)})`;
  if (parts.length === 0 && cpu.machine >= cores * 0.85) parts.push(`machine CPU (${cpu.machine.toFixed(2)} of ${cores} cores: ${used})`);
  if (parts.length === 0) parts.push(`not CPU (${used} of ${cores} cores): latency/IO-bound (fsyncs, round trips)`);
  else if (!parts[0]!.startsWith('machine')) parts.push(`${used} of ${cores} cores`);
  if (cpu.others >= 0.25 && !parts[0]!.startsWith('machine')) parts.push(`other processes took ${cpu.others.toFixed(2)} core`);
  return parts.join('; ');
}

/** `Max open files` of this process (the children inherit it), from /proc/self/limits. */
function fileLimit(): { soft: number | string; hard: number | string } | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const [soft, hard] = line!.slice('Max open files'.length).trim().split(/\s+/);
    const value = (v: string | undefined) => (v === undefined || v === 'unlimited' ? (v ?? 'unknown') : Number(v));
    return { soft: value(soft), hard: value(hard) };
  } catch {
    return undefined;
  }
}

function sysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return undefined;
  }
}

async function info(redis: RedisProcess | undefined): Promise<Record<string, string> | undefined> {
  if (!redis) return undefined;
  try {
    return await redisInfo(redis.port);
  } catch {
    return undefined;
  }
}

export interface SessionFigures {
  command: string;
  serverCommand: string;
  redisCommand: string;
  exitCode: number | null;
  pass: boolean;
  failures: string[];
  errors: Record<string, number>;
  serverWorkers: number;
  /** Milliseconds from spawning `serve` to its first GET /healthz answered 200. */
  serverReadyMs: number;
  loadWorkers: number;
  sourceAddresses: { count: number; first?: string; last?: string; sessionsPerAddress?: number };
  sessions: number;
  registered: number;
  attempted: number;
  accepted: number;
  held: number | undefined;
  peakOpen: number;
  /** Registering the accounts (setup, not timed as load): seconds, accounts per second, the CPU meanwhile. */
  registration: { seconds?: number; perSecond?: number; cpu?: ClusterCpu; limitedBy?: string };
  connect: Percentiles;
  memory: {
    /** Sum of the RSS of every server worker (the processes holding sessions), from /proc. */
    serverWorkersRssBytes: { prepared?: number; held?: number; peak?: number };
    serverWorkerRssAtHeldByPid: Record<string, number>;
    primaryRssBytes?: number;
    redisRssBytes: { prepared?: number; held?: number; peak?: number };
    /** (the server workers' peak RSS over the ramp and hold − their RSS at the end of setup) / held sessions. */
    serverPerSessionBytes?: number;
    /** The same from their RSS at the end of the hold instead of the peak (lower when a GC returned memory). */
    serverPerSessionAtHeldBytes?: number;
    /** The same for redis-server's RSS (what the held sessions cost Redis: routes, leases). */
    redisPerSessionBytes?: number;
    totalPerSessionBytes?: number;
    redisInfoAfter?: { usedMemoryBytes?: number; keys?: string; aofBytes?: number; commandsProcessed?: number };
    rule: string;
  };
  /** The most files each server worker (and Redis) had open during the ramp and hold, by PID. */
  openFiles: { serverWorkers: Record<string, number>; redis: Record<string, number>; limitPerProcess?: number | string };
  cpu: ClusterCpu | undefined;
  limitedBy: string;
  /** Why fewer sessions than asked were held, from the errors, the open files and the CPU. */
  notes: string[];
}

export interface RungFigures {
  command: string;
  serverCommand: string;
  /** Milliseconds from spawning `serve` to its first GET /healthz answered 200. */
  serverReadyMs: number;
  /** Milliseconds the load tool took to register and connect its pairs (not measured as load). */
  setupMs: number | undefined;
  exitCode: number | null;
  pass: boolean;
  failures: string[];
  errors: Record<string, number>;
  requestedRate: number;
  /** Sends per second the tool managed over --duration (the offered load, not what was delivered). */
  achievedRate: number;
  /**
   * Messages delivered per second: delivered / (from the start of sending to the end of the last second of the
   * run's timeline with a delivery, at least --duration). A server that falls behind delivers below the offered rate.
   */
  deliveredRate: number;
  sent: number;
  accepted: number;
  refused: number;
  delivered: number;
  receipts: number;
  lost: number;
  duplicated: number;
  reordered: number;
  receiptsMissing: number;
  unanswered: number;
  /** Delivered although their send was answered TEMPORARILY_UNAVAILABLE, which MSG-18 allows ("may or may not have been accepted"); the load tool counts them as unexpected. */
  refusedButDelivered: number;
  drainTimedOut: boolean;
  /** Every message accepted, delivered once in order and receipted within the drain: none refused, lost, duplicated, reordered, unanswered or without its receipt. */
  clean: boolean;
  sendToAck: Percentiles;
  sendToDelivery: Percentiles;
  /** The run passed and its p99 send→delivery is under the target. */
  underTarget: boolean;
  cpu: ClusterCpu | undefined;
  limitedBy: string;
}

type Rung = { rate: number; ratios?: Partial<Record<Target, { achievedRate?: number; deliveredRate?: number; p50?: number; p99?: number }>>; skipped?: Partial<Record<Target, string>> } & Partial<Record<Target, RungFigures>>;

type Results = Record<string, unknown> & {
  sessions?: SessionFigures;
  pairs: {
    targets: Record<Target, string>;
    rungs: Rung[];
    best?: Record<Target, { highestRateUnderTarget: number | null; highestCleanAchievedRate: number | null; rungsUnderTarget: number[] }> & {
      ratios: Partial<Record<Target, { highestRateUnderTarget?: number; highestCleanAchievedRate?: number }>>;
      ladderTop: number;
      rule: string;
    };
  };
  failures: Record<string, string>;
};

async function main(argv: string[]): Promise<number> {
  let options: ClusterBenchOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    console.error(`bench:cluster: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (options === 'help') {
    console.log(HELP);
    return 0;
  }
  const o = options;
  const cores = cpus().length;
  const started = performance.now();
  const children = new Children();
  // Stopped from outside (a test's timeout, ^C): stop Redis and the servers by PID and remove the temporary
  // directories before going, rather than leave them behind.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      console.error(`bench:cluster: ${signal}, stopping its processes`);
      void children.stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
  const progress = (message: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);
  const limits = fileLimit();
  const results: Results = {
    benchmark: 'cluster',
    date: new Date().toISOString(),
    command: `npm run bench:cluster${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    node: process.version,
    platform: `${process.platform} ${process.arch} ${release()}`,
    cpus: { count: cores, model: cpus()[0]?.model ?? 'unknown' },
    totalMemoryBytes: totalmem(),
    freeMemoryBytesAtStart: freemem(),
    // Each process may hold this many files: a server worker holds fewer sessions than this, hence --workers.
    openFilesLimit: limits,
    kernel: { ipLocalPortRange: sysctl('/proc/sys/net/ipv4/ip_local_port_range'), somaxconn: sysctl('/proc/sys/net/core/somaxconn'), tcpMaxSynBacklog: sysctl('/proc/sys/net/ipv4/tcp_max_syn_backlog'), fileMax: sysctl('/proc/sys/fs/file-max') },
    // The machine may be shared: a high load average means other jobs competed for the cores during the run.
    loadAverageAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    mode: o.quick ? 'quick' : 'full',
    options: o,
    target: { p99SendToDeliveryMs: P99_TARGET_MS },
    pairs: { targets: { embedded: '', 'redis-1': '', 'redis-2': '' }, rungs: [] },
    failures: {},
  };
  const dir = tempDirFor(children, 'cluster-reports');
  const keep = (label: string) => {
    if (o.reports === undefined) return;
    mkdirSync(o.reports, { recursive: true });
    copyFileSync(join(dir, `${label}.json`), join(o.reports, `${label}.json`));
  };

  /** A fresh deployment: the embedded single process, or `serve --workers N --redis` with a fresh Redis. */
  const deploy = async (label: string, workers: number | undefined): Promise<Deployment> => {
    const dataDir = tempDirFor(children, `cluster-${label}`);
    const flags: Record<string, number | string> = { 'registrations-per-minute': REGISTRATIONS_PER_MINUTE };
    let redis: RedisProcess | undefined;
    if (workers !== undefined) {
      redis = await startRedis(children, `redis-${label}`, tempDirFor(children, `cluster-redis-${label}`));
      flags['workers'] = workers;
      flags['redis'] = redis.url;
    }
    const server = await startTickwire(children, { name: `tickwire-${label}`, dataDir, flags });
    const serverCommand = `tickwire serve --port 0 --host 127.0.0.1 --data-dir ${dataDir} --log-level warn ${Object.entries(flags).map(([k, v]) => `--${k} ${v}`).join(' ')}`;
    return { server, ...(redis ? { redis } : {}), serverCommand };
  };
  const undeploy = async (deployment: Deployment | undefined) => {
    if (!deployment) return;
    await children.stop(deployment.server.pid);
    if (deployment.redis) {
      await children.stop(deployment.redis.pid);
      children.removeTempDir(deployment.redis.dir);
    }
    children.removeTempDir(deployment.server.dataDir);
  };

  progress(`${o.quick ? 'quick' : 'full'} run on ${cores} CPUs (load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}), open files ${limits?.soft}/${limits?.hard} per process`);
  try {
    if (o.only !== 'pairs') results.sessions = await measureSessions();
    if (o.only !== 'sessions') await measurePairs();
  } finally {
    await children.stopAll();
  }

  async function measureSessions(): Promise<SessionFigures | undefined> {
    const label = `sessions-${o.serverWorkers}w`;
    const rampMs = Math.ceil((o.sessions / o.connectRate) * 1000);
    progress(`sessions: ${num(o.sessions)} at ${num(o.connectRate)}/s against ${o.serverWorkers} workers on Redis, load tool ${o.loadWorkers} process(es), held ${o.holdSeconds} s`);
    let deployment: Deployment | undefined;
    try {
      deployment = await deploy(label, o.serverWorkers);
      const args = ['connections', '--count', String(o.sessions), '--rate', String(o.connectRate), '--duration', `${rampMs + o.holdSeconds * 1000}ms`, '--workers', String(o.loadWorkers), '--setup-timeout', `${o.setupTimeoutSeconds}s`, ...(o.localAddress !== undefined ? ['--local-address', o.localAddress] : [])];
      const run = await runLoad(children, deployment, args, dir, label, o.setupTimeoutSeconds * 2000 + rampMs + o.holdSeconds * 1000 + 180_000);
      keep(label);
      const redisAfter = await info(deployment.redis);
      const figures = sessionFigures(run, deployment, redisAfter);
      progress(`sessions: accepted ${num(figures.accepted)}, held ${num(figures.held)} of ${num(o.sessions)}, connect p99 ${ms(figures.connect.p99)} ms, ${kb(figures.memory.serverPerSessionBytes)}/session in the server, ${kb(figures.memory.redisPerSessionBytes)} in Redis; ${figures.limitedBy}`);
      return figures;
    } catch (error) {
      results.failures[label] = (error as Error).stack ?? String(error);
      progress(`${label} FAILED: ${(error as Error).message.split('\n')[0]}`);
      return undefined;
    } finally {
      await undeploy(deployment);
    }
  }

  function sessionFigures(run: Run, deployment: Deployment, redisAfter: Record<string, string> | undefined): SessionFigures {
    const r = run.report;
    const s = run.sampler;
    const prepared = run.at('prepared');
    const heldAt = run.at('held');
    const cpu = prepared !== undefined && heldAt !== undefined ? s.cpu(prepared, heldAt) : undefined;
    const workersPrepared = prepared !== undefined ? s.rssAt('server', prepared) : undefined;
    const workersHeld = heldAt !== undefined ? s.rssAt('server', heldAt) : undefined;
    const workersPeak = prepared !== undefined && heldAt !== undefined ? s.peakRss('server', prepared, heldAt) : undefined;
    const redisPrepared = prepared !== undefined ? s.rssAt('redis', prepared) : undefined;
    const redisHeld = heldAt !== undefined ? s.rssAt('redis', heldAt) : undefined;
    const redisPeak = prepared !== undefined && heldAt !== undefined ? s.peakRss('redis', prepared, heldAt) : undefined;
    const held = r.sessions.held;
    const perSession = (after: number | undefined, before: number | undefined) => (after !== undefined && before !== undefined && held ? Math.round((after - before) / held) : undefined);
    const serverPerSession = perSession(workersPeak?.workersBytes, workersPrepared?.workersBytes);
    const redisPerSession = perSession(redisPeak?.workersBytes, redisPrepared?.workersBytes);
    const serverPerSessionAtHeld = perSession(workersHeld?.workersBytes, workersPrepared?.workersBytes);
    const addresses = r.localAddresses.flat();
    const openServer = prepared !== undefined && heldAt !== undefined ? s.peakFds('server', prepared, heldAt) : {};
    const openRedis = prepared !== undefined && heldAt !== undefined ? s.peakFds('redis', prepared, heldAt) : {};
    const notes: string[] = [];
    const limit = typeof limits?.soft === 'number' ? limits.soft : undefined;
    if (held !== undefined && held < o.sessions) {
      notes.push(`${num(o.sessions - held)} of ${num(o.sessions)} sessions not held at the end`);
      const registrationErrors = Object.entries(r.errors).filter(([k]) => k.startsWith('register:'));
      if (r.sessions.registered < o.sessions) notes.push(`only ${num(r.sessions.registered)} accounts registered within --setup-timeout ${o.setupTimeoutSeconds} s (${registrationErrors.map(([k, v]) => `${k} ${v}`).join(', ') || 'no error'})`);
      if (r.sessions.attempted < r.sessions.registered) notes.push(`${num(r.sessions.registered - r.sessions.attempted)} sessions not attempted within the ramp`);
      const connectErrors = Object.entries(r.errors).filter(([k]) => !k.startsWith('register:'));
      if (connectErrors.length > 0) notes.push(`errors: ${connectErrors.map(([k, v]) => `${k} ${num(v)}`).join(', ')}`);
      // accepted counts handshakes completed at any time; held, the sessions open when the hold ended.
      if (r.sessions.accepted > held) notes.push(`${num(r.sessions.accepted - held)} sessions accepted but not open when the hold ended (connected after it, or closed)`);
    }
    if (limit !== undefined) {
      const near = Object.entries(openServer).filter(([, n]) => n >= limit * 0.95);
      if (near.length > 0) notes.push(`server worker(s) ${near.map(([pid, n]) => `${pid}: ${num(n)} files`).join(', ')} at the per-process limit of ${num(limit)}`);
    }
    if (r.sessions.connectLatency.p99 > 10_000) notes.push(`connect p99 ${ms(r.sessions.connectLatency.p99)} ms: handshakes queue (the ramp rate exceeds what the server processes complete)`);
    const regSeconds = r.phases['prepared'] !== undefined ? r.phases['prepared'] / 1000 : undefined;
    const regCpu = prepared !== undefined ? s.cpu(prepared - r.phases['prepared']!, prepared) : undefined;
    return {
      command: run.command,
      serverCommand: deployment.serverCommand,
      redisCommand: deployment.redis?.command ?? '',
      exitCode: run.exitCode,
      pass: r.verdict.pass,
      failures: r.verdict.failures,
      errors: r.errors,
      serverWorkers: o.serverWorkers,
      serverReadyMs: Math.round(deployment.server.healthyMs),
      loadWorkers: r.localAddresses.length || o.loadWorkers,
      sourceAddresses: { count: addresses.length, ...(addresses.length > 0 ? { first: addresses[0]!, last: addresses.at(-1)!, sessionsPerAddress: Math.ceil(o.sessions / addresses.length) } : {}) },
      sessions: o.sessions,
      registered: r.sessions.registered,
      attempted: r.sessions.attempted,
      accepted: r.sessions.accepted,
      held,
      peakOpen: r.sessions.peakOpen,
      registration: regSeconds !== undefined ? { seconds: Math.round(regSeconds * 10) / 10, perSecond: Math.round(r.sessions.registered / regSeconds), ...(regCpu ? { cpu: regCpu } : {}), limitedBy: limiterOf(regCpu, cores) } : {},
      connect: r.sessions.connectLatency,
      memory: {
        serverWorkersRssBytes: { ...(workersPrepared ? { prepared: workersPrepared.workersBytes } : {}), ...(workersHeld ? { held: workersHeld.workersBytes } : {}), ...(workersPeak ? { peak: workersPeak.workersBytes } : {}) },
        serverWorkerRssAtHeldByPid: workersHeld?.byPid ?? {},
        ...(workersHeld ? { primaryRssBytes: workersHeld.rootBytes } : {}),
        redisRssBytes: { ...(redisPrepared ? { prepared: redisPrepared.workersBytes } : {}), ...(redisHeld ? { held: redisHeld.workersBytes } : {}), ...(redisPeak ? { peak: redisPeak.workersBytes } : {}) },
        ...(serverPerSession !== undefined ? { serverPerSessionBytes: serverPerSession } : {}),
        ...(serverPerSessionAtHeld !== undefined ? { serverPerSessionAtHeldBytes: serverPerSessionAtHeld } : {}),
        ...(redisPerSession !== undefined ? { redisPerSessionBytes: redisPerSession } : {}),
        ...(serverPerSession !== undefined && redisPerSession !== undefined ? { totalPerSessionBytes: serverPerSession + redisPerSession } : {}),
        ...(redisAfter
          ? {
              redisInfoAfter: {
                ...(redisAfter['used_memory'] !== undefined ? { usedMemoryBytes: Number(redisAfter['used_memory']) } : {}),
                ...(redisAfter['db0'] !== undefined ? { keys: redisAfter['db0'] } : {}),
                ...(redisAfter['aof_current_size'] !== undefined ? { aofBytes: Number(redisAfter['aof_current_size']) } : {}),
                ...(redisAfter['total_commands_processed'] !== undefined ? { commandsProcessed: Number(redisAfter['total_commands_processed']) } : {}),
              },
            }
          : {}),
        rule: 'RSS from /proc/<pid>/stat every 250 ms, summed over the server workers (the primary apart): (peak over the ramp and hold − last sample before the ramp, i.e. after every account was registered) / sessions held at the end; the same for redis-server; no forced GC',
      },
      openFiles: { serverWorkers: openServer, redis: openRedis, ...(limits ? { limitPerProcess: limits.soft } : {}) },
      cpu,
      // Every session asked for was held: the figure is the target, the CPU verdict says how close the ramp ran.
      limitedBy: held === o.sessions ? `not limited: the target (${num(o.sessions)}) was held; the ramp at ${num(o.connectRate)}/s used ${limiterOf(cpu, cores)}` : limiterOf(cpu, cores),
      notes,
    };
  }

  function rungFigures(run: Run, deployment: Deployment, rate: number): RungFigures {
    const m = run.report.messages;
    const from = run.at('connected');
    const to = run.at('loaded');
    const cpu = from !== undefined && to !== undefined ? run.sampler.cpu(from, to) : undefined;
    return {
      command: run.command,
      serverCommand: deployment.serverCommand,
      serverReadyMs: Math.round(deployment.server.healthyMs),
      setupMs: run.report.phases['connected'],
      exitCode: run.exitCode,
      pass: run.report.verdict.pass,
      failures: run.report.verdict.failures,
      errors: run.report.errors,
      requestedRate: rate,
      achievedRate: m.achievedRate,
      deliveredRate: deliveredRate(run.report, o.rungSeconds),
      sent: m.sent,
      accepted: m.accepted,
      refused: m.refused,
      delivered: m.delivered,
      receipts: m.receipts,
      lost: m.lost,
      duplicated: m.duplicated,
      reordered: m.reordered,
      receiptsMissing: m.receiptsMissing,
      unanswered: m.unanswered,
      refusedButDelivered: m.unexpected,
      drainTimedOut: (run.report.figures['drainTimedOut'] ?? 0) > 0,
      clean: m.sent > 0 && m.refused + m.lost + m.duplicated + m.reordered + m.receiptsMissing + m.unanswered === 0 && !run.report.figures['drainTimedOut'],
      sendToAck: m.sendToAck,
      sendToDelivery: m.sendToDelivery,
      underTarget: run.report.verdict.pass && m.sendToDelivery.count > 0 && m.sendToDelivery.p99 < P99_TARGET_MS,
      cpu,
      limitedBy: limiterOf(cpu, cores),
    };
  }

  async function measurePairs(): Promise<void> {
    const workersOf: Record<Target, number | undefined> = { embedded: undefined, 'redis-1': 1, 'redis-2': 2 };
    /** A target that fell seconds behind at a rung is saturated: higher rungs would only queue more, so they are skipped. */
    const saturated = new Map<Target, string>();
    for (const rate of o.ladder) {
      const rung: Rung = { rate };
      results.pairs.rungs.push(rung);
      for (const target of TARGETS) {
        const label = `pairs-${rate}-${target}`;
        const reason = saturated.get(target);
        if (reason !== undefined) {
          (rung.skipped ??= {})[target] = reason;
          continue;
        }
        let deployment: Deployment | undefined;
        try {
          deployment = await deploy(label, workersOf[target]);
          results.pairs.targets[target] = deployment.serverCommand.replace(/ --data-dir \S+/, '').replace(/redis:\/\/127\.0\.0\.1:\d+/, 'redis://127.0.0.1:PORT');
          const workers = o.pairsLoadWorkers !== undefined ? ['--workers', String(o.pairsLoadWorkers)] : [];
          if (o.warmupSeconds > 0) {
            // Figures dropped; a warm-up that fails its accounting still fails the rung.
            const warm = await runLoad(children, deployment, ['pairs', '--count', String(o.pairs), '--rate', String(rate), '--duration', `${o.warmupSeconds}s`, ...workers], dir, `${label}-warmup`, 600_000);
            if (!warm.report.verdict.pass) throw new Error(`warm-up failed: ${warm.report.verdict.failures.join('; ')}`);
          }
          const args = ['pairs', '--count', String(o.pairs), '--rate', String(rate), '--duration', `${o.rungSeconds}s`, ...workers];
          const run = await runLoad(children, deployment, args, dir, label, 600_000);
          keep(label);
          const figures = rungFigures(run, deployment, rate);
          rung[target] = figures;
          progress(`pairs ${rate}/s ${target}: ${num(figures.achievedRate)}/s, send→dlv p50 ${ms(figures.sendToDelivery.p50)} p99 ${ms(figures.sendToDelivery.p99)} ms, lost ${figures.lost} dup ${figures.duplicated} reord ${figures.reordered}${figures.pass ? '' : ` FAIL: ${figures.failures.join('; ')}`}; ${figures.limitedBy}`);
          if (figures.sendToDelivery.p99 > SATURATED_P99_MS || figures.drainTimedOut || figures.achievedRate < rate * 0.5) saturated.set(target, `saturated at ${num(rate)}/s: p99 send→delivery ${ms(figures.sendToDelivery.p99)} ms, ${num(figures.deliveredRate)}/s delivered${figures.drainTimedOut ? ', drain timed out' : ''}`);
        } catch (error) {
          results.failures[label] = (error as Error).stack ?? String(error);
          progress(`${label} FAILED: ${(error as Error).message.split('\n')[0]}`);
        } finally {
          await undeploy(deployment);
        }
      }
      const base = rung.embedded;
      rung.ratios = {};
      for (const target of ['redis-1', 'redis-2'] as const) {
        const f = rung[target];
        if (!f || !base) continue;
        rung.ratios[target] = { achievedRate: ratio(f.achievedRate, base.achievedRate), deliveredRate: ratio(f.deliveredRate, base.deliveredRate), p50: ratio(f.sendToDelivery.p50, base.sendToDelivery.p50), p99: ratio(f.sendToDelivery.p99, base.sendToDelivery.p99) };
      }
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
    const cleanest = (target: Target) => {
      const rates = results.pairs.rungs.map((r) => r[target]).filter((f): f is RungFigures => f !== undefined && f.clean).map((f) => f.deliveredRate);
      return rates.length > 0 ? Math.max(...rates) : null;
    };
    const under = (target: Target) => results.pairs.rungs.filter((r) => r[target]?.underTarget).map((r) => r.rate);
    const best = Object.fromEntries(TARGETS.map((t) => [t, { highestRateUnderTarget: highest(t), highestCleanAchievedRate: cleanest(t), rungsUnderTarget: under(t) }])) as Record<Target, { highestRateUnderTarget: number | null; highestCleanAchievedRate: number | null; rungsUnderTarget: number[] }>;
    const ratios: Partial<Record<Target, { highestRateUnderTarget?: number; highestCleanAchievedRate?: number }>> = {};
    for (const target of ['redis-1', 'redis-2'] as const) {
      const under = ratio(best[target].highestRateUnderTarget ?? undefined, best.embedded.highestRateUnderTarget ?? undefined);
      const clean = ratio(best[target].highestCleanAchievedRate ?? undefined, best.embedded.highestCleanAchievedRate ?? undefined);
      ratios[target] = { ...(under !== undefined ? { highestRateUnderTarget: under } : {}), ...(clean !== undefined ? { highestCleanAchievedRate: clean } : {}) };
    }
    results.pairs.best = {
      ...best,
      ratios,
      ladderTop: o.ladder.at(-1)!,
      rule: `highestRateUnderTarget: the highest rung that, with every rung below it, passed its accounting with p99 send→delivery < ${P99_TARGET_MS} ms (null: not even the first); rungsUnderTarget: every rung that did, in order (other jobs on a shared machine can spoil a low rung); highestCleanAchievedRate: the highest deliveredRate of a clean rung (every message accepted, delivered once in order and receipted within the drain); a rung with p99 > ${SATURATED_P99_MS} ms or a timed-out drain ends its target's ladder; ratios: against the embedded single process`,
    };
  }

  const rungs = results.pairs.rungs;
  const accountingFailed = rungs.some((r) => TARGETS.some((t) => (r[t]?.lost ?? 0) + (r[t]?.duplicated ?? 0) + (r[t]?.reordered ?? 0) > 0));
  const s = results.sessions;
  const b = results.pairs.best;
  results.summary = {
    serverWorkers: o.serverWorkers,
    sessionsTarget: o.sessions,
    sessionsHeld: s?.held,
    connectP50Ms: s?.connect.p50,
    connectP99Ms: s?.connect.p99,
    serverMemoryPerSessionBytes: s?.memory.serverPerSessionBytes,
    redisMemoryPerSessionBytes: s?.memory.redisPerSessionBytes,
    sessionsLimitedBy: s ? [s.limitedBy, ...s.notes].join('; ') : undefined,
    highestRateUnderTarget: b ? { embedded: b.embedded.highestRateUnderTarget, 'redis-1': b['redis-1'].highestRateUnderTarget, 'redis-2': b['redis-2'].highestRateUnderTarget } : undefined,
    highestCleanAchievedRate: b ? { embedded: b.embedded.highestCleanAchievedRate, 'redis-1': b['redis-1'].highestCleanAchievedRate, 'redis-2': b['redis-2'].highestCleanAchievedRate } : undefined,
    ratiosToEmbedded: b?.ratios,
    accountingFailed,
  };
  results.loadAverageAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  results.durationSeconds = Math.round((performance.now() - started) / 100) / 10;
  mkdirSync(dirname(o.out), { recursive: true });
  writeFileSync(`${o.out}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(`${o.out}.tmp`, o.out);
  console.log(`\nTickwire cluster benchmark (serve --workers N --redis vs the embedded single process) — ${results.date}, Node ${process.version}, ${cores} CPUs, ${results.mode} run\n`);
  console.log(render(results, o));
  console.log(`\nLoad average at start ${(results.loadAverageAtStart as number[]).join(' ')}, at end ${(results.loadAverageAtEnd as number[]).join(' ')} (other jobs on the machine skew every figure).`);
  console.log(`Results: ${o.out} (took ${results.durationSeconds} s)`);
  const failures = Object.keys(results.failures);
  if (failures.length > 0) console.log(`Failed: ${failures.join(', ')} (details in the JSON)`);
  if (accountingFailed) console.log('A run lost, duplicated or reordered messages (see the rungs in the JSON).');
  return failures.length > 0 || accountingFailed ? 1 : 0;
}

/** The verdict's first word and the CPU shares, short enough for a table cell. */
function shortCpu(cpu: ClusterCpu | undefined, limitedBy: string | undefined): string {
  if (!cpu || !limitedBy) return '';
  const what = limitedBy.startsWith('machine') ? 'machine' : limitedBy.startsWith('not CPU') ? 'latency' : limitedBy.split(' (')[0]!;
  return `${what}: s ${cpu.server.toFixed(2)} t ${cpu.tool.toFixed(2)} r ${cpu.redis.toFixed(2)} o ${cpu.others.toFixed(2)}`;
}

/** See RungFigures.deliveredRate. */
function deliveredRate(report: LoadReport, rungSeconds: number): number {
  const start = report.phases['connected'];
  const last = (report.timeline ?? []).filter((s) => s.delivered > 0).at(-1)?.t;
  if (start === undefined || last === undefined) return 0;
  const seconds = Math.max(rungSeconds, (last - start) / 1000);
  return Math.round(report.messages.delivered / seconds);
}

const mb = (bytes: number | undefined) => (bytes === undefined ? '–' : `${num(bytes / 1048576, 1)} MB`);
const p2 = (p: Percentiles | undefined) => (p && p.count > 0 ? `${ms(p.p50)} / ${ms(p.p99)}` : '–');

function render(results: Results, o: ClusterBenchOptions): string {
  const out: string[] = [];
  const s = results.sessions;
  if (s) {
    const rows: string[][] = [
      ['accepted / held', `${num(s.accepted)} / ${num(s.held)} of ${num(s.sessions)}`, `${s.serverWorkers} server workers, load tool ${s.loadWorkers} processes over ${s.sourceAddresses.count} source addresses`],
      ['registration (setup)', s.registration.perSecond !== undefined ? `${num(s.registered)} in ${num(s.registration.seconds, 1)} s (${num(s.registration.perSecond)}/s)` : num(s.registered), shortCpu(s.registration.cpu, s.registration.limitedBy)],
      ['connect p50 / p99 ms', `${ms(s.connect.p50)} / ${ms(s.connect.p99)}`, `ramp ${num(o.connectRate)}/s, hold ${o.holdSeconds} s`],
      ['errors', Object.entries(s.errors).map(([k, v]) => `${k} ${num(v)}`).join(', ') || 'none', s.pass ? 'pass' : `FAIL: ${s.failures.join('; ')}`],
      ['RSS per session: server', kb(s.memory.serverPerSessionBytes), `workers' RSS ${mb(s.memory.serverWorkersRssBytes.prepared)} after setup → ${mb(s.memory.serverWorkersRssBytes.held)} at the end of the hold (peak ${mb(s.memory.serverWorkersRssBytes.peak)})`],
      ['RSS per session: Redis', kb(s.memory.redisPerSessionBytes), `redis-server RSS ${mb(s.memory.redisRssBytes.prepared)} → ${mb(s.memory.redisRssBytes.held)}`],
      ['open files per worker (peak)', Object.values(s.openFiles.serverWorkers).map((n) => num(n)).join(', ') || '–', `limit ${s.openFiles.limitPerProcess ?? '?'} per process`],
      ['CPU over ramp and hold', shortCpu(s.cpu, s.limitedBy), s.limitedBy.split(' (')[0]!],
      ...s.notes.map((note, i) => [i === 0 ? 'why fewer were held' : '', note, '']),
    ];
    out.push(`Sessions on one host: serve --workers ${s.serverWorkers} --redis\n`);
    out.push(table(['measure', 'value', 'notes'], rows));
  }
  const rungs = results.pairs.rungs;
  if (rungs.length > 0) {
    const rows: string[][] = [];
    const cell = (f: RungFigures | undefined, skipped: string | undefined) => {
      if (!f) return skipped !== undefined ? 'skipped (saturated)' : '–';
      const problems = Object.entries({ refused: f.refused, lost: f.lost, dup: f.duplicated, reord: f.reordered, unans: f.unanswered, 'no receipt': f.receiptsMissing }).filter(([, v]) => v > 0);
      return `${num(f.deliveredRate)}/s, ${f.clean ? 'clean' : problems.map(([k, v]) => `${k} ${num(v)}`).join(' ') || 'FAIL'}${f.drainTimedOut ? ', drain timed out' : ''}`;
    };
    for (const rung of rungs) {
      rows.push([`${num(rung.rate)}/s`, 'delivered/s, accounting', ...TARGETS.map((t) => cell(rung[t], rung.skipped?.[t])), `${times(rung.ratios?.['redis-1']?.deliveredRate)} / ${times(rung.ratios?.['redis-2']?.deliveredRate)}`]);
      rows.push(['', 'send→dlv p50 / p99 ms', ...TARGETS.map((t) => p2(rung[t]?.sendToDelivery)), `p99 ${times(rung.ratios?.['redis-1']?.p99)} / ${times(rung.ratios?.['redis-2']?.p99)}`]);
      rows.push(['', 'CPU: limited by', ...TARGETS.map((t) => shortCpu(rung[t]?.cpu, rung[t]?.limitedBy)), '']);
    }
    const b = results.pairs.best;
    if (b) {
      const show = (v: number | null, top = false) => (v === null ? 'none' : `${num(v)}/s${top && v === b.ladderTop ? ' (ladder top)' : ''}`);
      rows.push(['best', `rung with p99 < ${P99_TARGET_MS} ms`, ...TARGETS.map((t) => show(b[t].highestRateUnderTarget, true)), `${times(b.ratios['redis-1']?.highestRateUnderTarget)} / ${times(b.ratios['redis-2']?.highestRateUnderTarget)}`]);
      rows.push(['', 'rungs with p99 < 50 ms', ...TARGETS.map((t) => b[t].rungsUnderTarget.map((r) => num(r)).join(', ') || 'none'), '']);
      rows.push(['', 'highest clean delivered/s', ...TARGETS.map((t) => show(b[t].highestCleanAchievedRate)), `${times(b.ratios['redis-1']?.highestCleanAchievedRate)} / ${times(b.ratios['redis-2']?.highestCleanAchievedRate)}`]);
    }
    out.push(`\nDurable end-to-end messages (tickwire load pairs, ${num(o.pairs)} pairs, ${o.rungSeconds} s per rung)\n`);
    out.push(table(['rate', 'measure', ...TARGETS.map((t) => TARGET_TITLES[t]), 'ratio 1w / 2w vs embedded'], rows));
    out.push('CPU in cores over the sending: s server, t load tool, r Redis, o everything else (other jobs, interrupts); full verdicts in the JSON');
  }
  return out.join('\n');
}

process.exitCode = await main(process.argv.slice(2));
