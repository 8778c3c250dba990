// The bare ws relay of `tickwire load --target baseline` (load/baseline-server.ts): its framing, and the connections,
// pairs and fanin scenarios run briefly against it with their accounting checked (every message delivered exactly
// once, in order, with its receipt). No assertion about speed. `npm run bench:load` itself is tested by
// test/bench/load.slow.ts (npm run test:bench).
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBaselineServer } from '../../load/baseline-server.ts';
import type { LoadReport } from '../../load/report.ts';
import { LoadServer, TICKWIRE_BIN } from '../../load/server-process.ts';
import { Connection } from '../../reference-client/wire/connection.ts';
import { runNode } from '../lib/run-node.ts';

// Several load runs, each spawning worker processes: more than the default file timeout on a busy machine.
t.setTimeout(600_000);

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tickwire-baseline-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const spawnOut = (args: string[]) => runNode(args, { cwd: ROOT });

type Request = Parameters<Connection['request']>[0];
const bare = (frame: Record<string, unknown>) => frame as unknown as Request;

t.test('the relay forwards to the named connection, answers the sender, answers pings and echoes the rest', async (t) => {
  const relay = await startBaselineServer();
  t.teardown(() => relay.close());
  const a = await Connection.open(`${relay.url}/?name=a`, { validate: false });
  const b = await Connection.open(`${relay.url}/?name=b`, { validate: false });
  t.teardown(() => {
    a.terminate();
    b.terminate();
  });
  const frame = { type: 'deliver', id: 'm-1', to: 'b', items: [{ seq: 1, kind: 'message', messageId: 'm-1', from: { userId: 'a', deviceId: 1 }, envelope: { type: 'ratchet', body: 'AAAA' } }] };
  const arrived = b.waitFor('deliver');
  const answer = await a.request(bare(frame));
  t.same(answer, { type: 'send_ok', id: 'm-1' }, 'the sender is answered send_ok');
  t.same(await arrived, frame, 'the recipient gets the bytes unchanged');
  const refused = await a.request(bare({ type: 'deliver', id: 'm-2', to: 'nobody', items: [] }));
  t.equal(refused.type, 'error');
  t.equal(refused.type === 'error' ? refused.code : '', 'NOT_CONNECTED', 'nobody under that name: a relay stores nothing');
  t.same(await a.request({ type: 'ping', id: 'p1' }), { type: 'pong', id: 'p1' });
  const echoed = new Promise<string>((resolve) => a.socket.once('message', (data) => resolve(String(data))));
  a.sendRaw('{"anything":true}');
  t.equal(await echoed, '{"anything":true}', 'a frame without `to` comes back');
  t.equal(relay.named, 2);
  // A later connection under the same name takes it over.
  const b2 = await Connection.open(`${relay.url}/?name=b`, { validate: false });
  t.teardown(() => b2.terminate());
  const second = b2.waitFor('deliver');
  await a.request(bare({ ...frame, id: 'm-3' }));
  t.equal((await second).items[0].seq, 1);
  const health = await fetch(`${relay.url}/healthz`);
  t.equal(health.status, 200);
  await health.arrayBuffer();
});

function accountedFor(t: Test, report: LoadReport): void {
  const m = report.messages;
  t.ok(m.sent > 0, 'messages were sent');
  t.equal(m.accepted, m.sent, 'every send answered send_ok by the relay');
  t.equal(m.delivered, m.sent, 'every message delivered');
  t.equal(m.receipts, m.sent, 'every receipt back at its sender');
  t.equal(m.lost, 0);
  t.equal(m.duplicated, 0);
  t.equal(m.reordered, 0);
  t.equal(m.redelivered, 0);
  t.equal(m.receiptsMissing, 0);
  t.equal(m.unexpected, 0);
  t.equal(m.sendToAck.count, m.sent);
  t.equal(m.sendToDelivery.count, m.sent);
}

async function run(t: Test, name: string, args: string[]): Promise<LoadReport> {
  const output = join(dir, `${name}.json`);
  const result = await spawnOut([TICKWIRE_BIN, 'load', name, '--target', 'baseline', '--quiet', '--output', output, ...args]);
  t.equal(result.code, 0, `exit 0\n${result.stdout}\n${result.stderr}`);
  const report = JSON.parse(readFileSync(output, 'utf8')) as LoadReport;
  t.equal(report.scenario, name);
  t.equal(report.options.target, 'baseline');
  t.ok(report.verdict.pass, report.verdict.failures.join('; '));
  t.same(report.errors, {});
  t.equal(report.sessions.registered, 0, 'nothing is registered with a relay');
  t.ok(report.server && report.server.samples.length > 0, 'server samples from /proc');
  t.match(result.stdout, /the bare ws relay baseline/);
  return report;
}

t.test('the load tool against the relay', async (t) => {
  t.test('connections against the built-in relay: 100 sessions over 2 workers and 2 source addresses', async (t) => {
    const report = await run(t, 'connections', ['--count', '100', '--rate', '200', '--duration', '1500ms', '--workers', '2', '--local-address', '127.0.0.2-127.0.0.3']);
    t.equal(report.sessions.accepted, 100);
    t.equal(report.sessions.held, 100);
    t.equal(report.sessions.connectLatency.count, 100);
  });

  const relay = await LoadServer.startBaseline();
  t.teardown(() => relay.stop());
  const target = ['--url', relay.url, '--pid', String(relay.pid)];

  t.test('pairs: 20 pairs at 400 msg/s for 2 s, every message accounted for', async (t) => {
    const report = await run(t, 'pairs', [...target, '--count', '20', '--rate', '400', '--duration', '2s', '--workers', '2']);
    accountedFor(t, report);
    t.equal(report.messages.sent, 800);
    t.equal(report.sessions.accepted, 40);
  });

  t.test('fanin: 10 senders to one connection', async (t) => {
    const report = await run(t, 'fanin', [...target, '--count', '10', '--rate', '200', '--duration', '1s']);
    accountedFor(t, report);
    t.equal(report.messages.sent, 200);
    t.equal(report.sessions.accepted, 11);
  });

  t.test('usage: a scenario that needs a queue or the HTTP API is refused, as is an unknown target', async (t) => {
    const offline = await spawnOut([TICKWIRE_BIN, 'load', 'offline', '--target', 'baseline', ...target]);
    t.equal(offline.code, 2);
    t.match(offline.stderr, /bare ws relay runs connections, pairs, fanin only/);
    const unknown = await spawnOut([TICKWIRE_BIN, 'load', 'pairs', '--target', 'nope', ...target]);
    t.equal(unknown.code, 2);
    const remote = await spawnOut([TICKWIRE_BIN, 'load', '--baseline-server', '--host', '192.0.2.1']);
    t.equal(remote.code, 2);
    t.match(remote.stderr, /--allow-remote/);
  });
});
