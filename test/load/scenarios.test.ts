// The scenarios of `tickwire load`, run briefly as the real command (worker processes, sockets bound to loopback
// source addresses) against a reference server started by the test with a raised registration limit, each checked
// by its accounting and the shape of its JSON report. No assertion about speed.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadReport } from '../../load/report.ts';
import { LoadServer, TICKWIRE_BIN } from '../../load/server-process.ts';
import { runNode } from '../lib/run-node.ts';

// Several load runs, each with its own server and worker processes: ~100 s alone, more than the default file timeout
// when other jobs share the 2 cores. Nothing here measures speed.
t.setTimeout(600_000);

const dir = mkdtempSync(join(tmpdir(), 'tickwire-load-test-'));
const server = await LoadServer.start();
t.teardown(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const load = (args: string[]) => runNode([TICKWIRE_BIN, 'load', ...args]);

async function run(t: Test, name: string, args: string[]): Promise<LoadReport> {
  const output = join(dir, `${name}.json`);
  const result = await load([name, '--url', server.url, '--pid', String(server.pid), '--quiet', '--output', output, ...args]);
  t.equal(result.code, 0, `exit 0\n${result.stdout}\n${result.stderr}`);
  const report = JSON.parse(readFileSync(output, 'utf8')) as LoadReport;
  t.equal(report.tool, 'tickwire-load');
  t.equal(report.version, 1);
  t.equal(report.scenario, name);
  t.ok(report.verdict.pass, report.verdict.failures.join('; '));
  t.same(report.errors, {});
  for (const key of ['p50', 'p90', 'p99', 'p999', 'max', 'count'] as const) t.type(report.sessions.connectLatency[key], 'number');
  t.ok(report.server && report.server.samples.length > 0, 'server samples from /proc');
  return report;
}

function accountedFor(t: Test, report: LoadReport): void {
  const m = report.messages;
  t.ok(m.sent > 0, 'messages were sent');
  t.equal(m.accepted, m.sent, 'every send answered send_ok');
  t.equal(m.delivered, m.sent, 'every message delivered');
  t.equal(m.receipts, m.sent, 'every delivered receipt back at its sender');
  t.equal(m.lost, 0);
  t.equal(m.duplicated, 0);
  t.equal(m.reordered, 0);
  t.equal(m.receiptsMissing, 0);
  t.equal(m.sendToAck.count, m.sent);
  t.equal(m.sendToDelivery.count, m.sent);
}

t.test('connections: 200 sessions over 2 workers and 2 source addresses', async (t) => {
  const report = await run(t, 'connections', ['--count', '200', '--rate', '400', '--duration', '2s', '--workers', '2', '--local-address', '127.0.0.2-127.0.0.3']);
  t.equal(report.sessions.accepted, 200);
  t.equal(report.sessions.held, 200);
  t.equal(report.sessions.connectLatency.count, 200);
  t.same(new Set(report.localAddresses.flat()), new Set(['127.0.0.2', '127.0.0.3']));
  t.equal(report.localAddresses.length, 2);
});

t.test('pairs: 50 pairs at 500 msg/s for 3 s', async (t) => {
  const report = await run(t, 'pairs', ['--count', '50', '--rate', '500', '--duration', '3s', '--workers', '2']);
  accountedFor(t, report);
  t.equal(report.messages.sent, 1500);
  t.equal(report.sessions.accepted, 100);
});

t.test('fanin: 20 senders to one device across 2 workers', async (t) => {
  const report = await run(t, 'fanin', ['--count', '20', '--rate', '200', '--duration', '2s', '--workers', '2']);
  accountedFor(t, report);
  t.equal(report.messages.sent, 400);
  t.equal(report.sessions.accepted, 21);
});

t.test('offline: 2,000 queued messages drained', async (t) => {
  const report = await run(t, 'offline', ['--count', '20', '--messages', '2000', '--rate', '2000', '--duration', '1s', '--workers', '2']);
  accountedFor(t, report);
  t.equal(report.messages.sent, 2000);
  t.equal(report.drain?.count, 20, 'a drain time per device');
  t.ok((report.figures['maxDrainMs'] ?? 0) > 0);
});

t.test('usage: a non-loopback target is refused without --allow-remote; an unreachable one exits 2', async (t) => {
  const remote = await load(['pairs', '--url', 'http://192.0.2.1:8080']);
  t.equal(remote.code, 2);
  t.match(remote.stderr, /--allow-remote/);
  const unknown = await load(['nope']);
  t.equal(unknown.code, 2);
  const unreachable = await load(['pairs', '--url', 'http://127.0.0.1:1', '--quiet']);
  t.equal(unreachable.code, 2);
  t.match(unreachable.stderr, /unreachable/);
});
