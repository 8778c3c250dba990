// `npm run bench:load -- --quick`, small: 50 sessions and one short pairs rung against the reference server and the
// bare ws relay, in one run. Checks the shape of the results file (written to a temporary path) and the accounting of
// every message; no assertion about speed. Part of `npm run test:bench`, not of npm test: it spawns a dozen processes.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode } from '../lib/run-node.ts';

t.setTimeout(600_000);

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tickwire-load-bench-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const spawnOut = (args: string[]) => runNode(args, { cwd: ROOT });

interface Percentiles {
  count: number;
  p50: number;
  p99: number;
  p999: number;
}

t.test('bench:load --quick writes a well-formed results file (to a temporary path)', async (t) => {
  const out = join(dir, 'load.json');
  const args = ['--quick', '--sessions', '50', '--connect-rate', '100', '--hold', '1', '--pairs', '5', '--ladder', '200', '--rung', '1', '--warmup', '1', '--out', out];
  const result = await spawnOut(['--import', 'tsx', join(ROOT, 'bench/load.ts'), ...args]);
  t.equal(result.code, 0, `exit 0\n${result.stdout}\n${result.stderr}`);
  t.ok(existsSync(out));
  const results = JSON.parse(readFileSync(out, 'utf8')) as {
    benchmark: string;
    command: string;
    mode: string;
    cpus: { count: number };
    options: { ladder: number[]; sessions: number };
    connections: Record<'tickwire' | 'baseline', { held: number; accepted: number; pass: boolean; connect: Percentiles; memoryPerSessionBytes: number; limitedBy: string; command: string }> & { ratios: Record<string, number> };
    pairs: {
      rungs: Array<{ rate: number; ratios: Record<string, number> } & Record<'tickwire' | 'baseline', { sent: number; delivered: number; receipts: number; lost: number; duplicated: number; reordered: number; pass: boolean; sendToDelivery: Percentiles; limitedBy: string }>>;
      highestRateUnderTarget: { tickwire: number | null; baseline: number | null; ladderTop: number };
    };
    summary: { accountingFailed: boolean };
    failures: Record<string, string>;
  };
  t.equal(results.benchmark, 'load');
  t.equal(results.mode, 'quick');
  t.match(results.command, /^npm run bench:load -- --quick/);
  t.type(results.cpus.count, 'number');
  t.same(results.options.ladder, [200]);
  t.same(results.failures, {});
  for (const target of ['tickwire', 'baseline'] as const) {
    const c = results.connections[target];
    t.equal(c.accepted, 50, `${target}: every session accepted`);
    t.equal(c.held, 50, `${target}: every session held`);
    t.ok(c.pass);
    t.equal(c.connect.count, 50);
    t.type(c.memoryPerSessionBytes, 'number');
    t.type(c.limitedBy, 'string');
    t.match(c.command, new RegExp(`^tickwire load --target ${target} connections `));
  }
  t.type(results.connections.ratios, 'object');
  t.equal(results.pairs.rungs.length, 1);
  const rung = results.pairs.rungs[0]!;
  t.equal(rung.rate, 200);
  for (const target of ['tickwire', 'baseline'] as const) {
    const r = rung[target];
    t.equal(r.sent, 200, `${target}: the open loop sent rate × duration`);
    t.equal(r.delivered, r.sent);
    t.equal(r.receipts, r.sent);
    t.equal(r.lost + r.duplicated + r.reordered, 0);
    t.ok(r.pass);
    t.equal(r.sendToDelivery.count, r.sent);
    for (const key of ['p50', 'p99', 'p999'] as const) t.type(r.sendToDelivery[key], 'number');
  }
  t.type(rung.ratios, 'object');
  const highest = results.pairs.highestRateUnderTarget;
  t.equal(highest.ladderTop, 200);
  for (const target of ['tickwire', 'baseline'] as const) t.ok(highest[target] === null || highest[target] === 200, `${target}: a rung of the ladder or null`);
  t.equal(results.summary.accountingFailed, false);
  t.match(result.stdout, /highest rung, p99 send→dlv < 50 ms/);
});
