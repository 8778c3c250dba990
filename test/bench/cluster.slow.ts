// `npm run bench:cluster -- --quick`, small: its own redis-server, 2 server workers on Redis holding 600 sessions
// from 2 load tool processes, and one short pairs rung against the embedded process, 1 worker and 2 workers on
// Redis. Checks the shape of the results file (written to a temporary path) and the accounting of every message;
// no assertion about speed, and nothing that a slow machine changes (a handshake past its timeout is counted, not
// failed).
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Four deployments (a Redis and a server each) and four load runs, each spawning processes under tsx: ~90 s alone,
// more than the default file timeout when other jobs share the 2 cores. Nothing here measures speed.
t.setTimeout(600_000);

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tickwire-cluster-bench-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Percentiles {
  count: number;
  p50: number;
  p99: number;
}
interface Rung {
  command: string;
  serverCommand: string;
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
  refusedButDelivered: number;
  drainTimedOut: boolean;
  clean: boolean;
  achievedRate: number;
  deliveredRate: number;
  sendToDelivery: Percentiles;
  limitedBy: string;
  cpu: { server: number; tool: number; redis: number; others: number } | undefined;
}
type Target = 'embedded' | 'redis-1' | 'redis-2';
interface Results {
  benchmark: string;
  mode: string;
  command: string;
  cpus: { count: number };
  openFilesLimit: { soft: number | string; hard: number | string };
  loadAverageAtStart: number[];
  options: { serverWorkers: number; sessions: number; ladder: number[] };
  sessions: {
    command: string;
    serverCommand: string;
    redisCommand: string;
    serverWorkers: number;
    loadWorkers: number;
    sourceAddresses: { count: number };
    registered: number;
    attempted: number;
    accepted: number;
    held: number;
    connect: Percentiles;
    errors: Record<string, number>;
    memory: { serverWorkersRssBytes: { prepared: number; held: number }; serverWorkerRssAtHeldByPid: Record<string, number>; redisRssBytes: { prepared: number; held: number }; serverPerSessionBytes: number; redisPerSessionBytes: number };
    openFiles: { serverWorkers: Record<string, number> };
    cpu: { server: number; tool: number; redis: number; others: number; serverProcesses: number };
    limitedBy: string;
    notes: string[];
  };
  pairs: {
    targets: Record<Target, string>;
    rungs: Array<{ rate: number; ratios: Partial<Record<Target, { deliveredRate: number }>> } & Record<Target, Rung>>;
    best: Record<Target, { highestRateUnderTarget: number | null; highestCleanAchievedRate: number | null; rungsUnderTarget: number[] }> & { ratios: Record<string, unknown>; ladderTop: number };
  };
  summary: { accountingFailed: boolean; sessionsHeld: number };
  failures: Record<string, string>;
}

t.test('bench:cluster --quick writes a well-formed results file; every message is accounted for', async (t) => {
  const out = join(dir, 'cluster.json');
  const args = ['--quick', '--server-workers', '2', '--sessions', '600', '--connect-rate', '150', '--hold', '2', '--load-workers', '2', '--pairs', '5', '--ladder', '100', '--rung', '1', '--warmup', '1', '--out', out];
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/cluster.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    // Ended early (a timeout): the benchmark stops its Redis and servers on SIGTERM.
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
  // Exit 1 means a measurement failed to run or a rung lost, duplicated or reordered a message.
  t.equal(result.code, 0, `exit 0\n${result.stdout}\n${result.stderr}`);
  t.ok(existsSync(out));
  const results = JSON.parse(readFileSync(out, 'utf8')) as Results;
  t.equal(results.benchmark, 'cluster');
  t.equal(results.mode, 'quick');
  t.match(results.command, /^npm run bench:cluster -- --quick/);
  t.type(results.cpus.count, 'number');
  t.type(results.openFilesLimit.hard, 'number');
  t.equal(results.loadAverageAtStart.length, 3);
  t.same(results.options.ladder, [100]);
  t.same(results.failures, {});

  const s = results.sessions;
  t.match(s.command, /^tickwire load connections --count 600 --rate 150 .*--workers 2 /);
  t.match(s.serverCommand, /--workers 2 --redis redis:\/\/127\.0\.0\.1:\d+/);
  t.match(s.redisCommand, /--bind 127\.0\.0\.1 .*--appendonly yes --appendfsync always/);
  t.equal(s.serverWorkers, 2);
  t.equal(s.loadWorkers, 2, 'the tool spread its sessions over 2 processes');
  t.ok(s.sourceAddresses.count >= 1, 'and over loopback source addresses');
  t.equal(s.registered, 600);
  t.equal(s.attempted, 600);
  // A busy machine may let a handshake pass its timeout: every attempt is either accepted or counted as an error.
  const connectErrors = Object.entries(s.errors).filter(([k]) => k.startsWith('connect:')).reduce((n, [, v]) => n + v, 0);
  t.equal(s.accepted + connectErrors, 600, 'every attempt accounted for');
  t.equal(s.connect.count, s.accepted);
  t.ok(s.held >= 0 && s.held <= s.accepted);
  t.equal(Object.keys(s.memory.serverWorkerRssAtHeldByPid).length, 2, 'RSS read from each of the 2 workers');
  t.ok(s.memory.serverWorkersRssBytes.held > 0);
  t.ok(s.memory.redisRssBytes.held > 0);
  t.type(s.memory.serverPerSessionBytes, 'number');
  t.type(s.memory.redisPerSessionBytes, 'number');
  t.equal(Object.keys(s.openFiles.serverWorkers).length, 2, 'open files counted in each worker');
  t.equal(s.cpu.serverProcesses, 3, 'CPU of the primary and its 2 workers');
  t.type(s.cpu.redis, 'number');
  t.type(s.limitedBy, 'string');
  t.ok(Array.isArray(s.notes));

  t.equal(results.pairs.rungs.length, 1);
  const rung = results.pairs.rungs[0]!;
  t.equal(rung.rate, 100);
  for (const target of ['embedded', 'redis-1', 'redis-2'] as const) {
    const f = rung[target];
    t.ok(f, `${target} measured`);
    t.match(f.command, /^tickwire load pairs --count 5 --rate 100 --duration 1s/);
    t.ok(f.sent > 0, `${target}: messages sent`);
    t.equal(f.accepted + f.refused + f.unanswered, f.sent, `${target}: every send answered or counted`);
    t.same([f.lost, f.duplicated, f.reordered], [0, 0, 0], `${target}: nothing lost, duplicated or reordered`);
    t.equal(f.unanswered, 0, `${target}: every send answered`);
    // A TEMPORARILY_UNAVAILABLE (Redis slower than its timeout) may still deliver (MSG-18); receipts are only
    // missing when the drain timed out.
    t.ok(f.delivered >= f.accepted && f.delivered <= f.accepted + f.refusedButDelivered, `${target}: every ACKed message delivered`);
    if (!f.drainTimedOut) t.equal(f.receiptsMissing, 0, `${target}: every delivery receipted`);
    t.equal(f.clean, f.refused === 0 && f.receiptsMissing === 0 && !f.drainTimedOut);
    t.equal(f.sendToDelivery.count, f.delivered);
    t.type(f.deliveredRate, 'number');
    t.type(f.limitedBy, 'string');
    t.ok(Array.isArray(results.pairs.best[target].rungsUnderTarget));
    if (f.clean) t.equal(results.pairs.best[target].highestCleanAchievedRate, f.deliveredRate, `${target}: the one clean rung is the best`);
  }
  t.notMatch(rung.embedded.serverCommand, /--redis/, 'the embedded process uses its log');
  t.match(rung['redis-1'].serverCommand, /--workers 1 --redis /);
  t.match(rung['redis-2'].serverCommand, /--workers 2 --redis /);
  t.type(rung['redis-1'].cpu?.redis, 'number', 'Redis CPU sampled');
  t.type(rung.ratios['redis-2']?.deliveredRate, 'number', 'ratios against the embedded process');
  t.equal(results.pairs.best.ladderTop, 100);
  t.equal(results.summary.accountingFailed, false);
});
