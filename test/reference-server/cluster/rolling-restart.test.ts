// Zero-downtime restart (PROTOCOL.md 6.6): `tickwire serve --workers 2 --redis` under a steady message load between two
// reference clients, SIGHUP to the primary replaces the workers one at a time [DPL-6]; each old worker answers what it
// received and closes its sessions with SERVER_RESTART / 1012 [DPL-3] [KAL-13]; the clients reconnect by themselves
// [KAL-10]. Every message the server acknowledged reaches the receiving application exactly once, in order [DPL-5].
import t from 'tap';
import { newClient, sleep } from '../../reference-client/client-harness.ts';
import { RedisServer } from '../store/redis/redis-server.ts';
import { ServeProcess, servingPid, TEST_SERVER_ARGS, tempDir } from './serve-process.ts';

/** One message every LOAD_INTERVAL_MS while the load runs. */
const LOAD_INTERVAL_MS = 20;

t.test('a rolling restart under load loses and duplicates nothing', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.dispose());
  const server = await ServeProcess.start(t, ['--workers', '2', '--redis', redis.url, '--port', '0', '--data-dir', tempDir(t), '--log-level', 'info', ...TEST_SERVER_ARGS]);
  const pidsBefore = new Set<number>();
  for (let i = 0; i < 10; i++) pidsBefore.add(await servingPid(server.url));

  const received: string[] = [];
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob', {
    onMessage: (message) => void received.push(Buffer.from(message.plaintext).toString('utf8')),
  });
  await Promise.all([alice.client.connect(), bob.client.connect()]);

  const sent: Array<{ text: string; messageId: string }> = [];
  let loading = true;
  const load = (async () => {
    for (let i = 0; loading; i++) {
      const text = `m${i}`;
      const { messageId } = await alice.client.send(bob.client.address.userId, text);
      sent.push({ text, messageId });
      await sleep(LOAD_INTERVAL_MS);
    }
  })();

  await sleep(1000);
  const hupAt = sent.length;
  server.signal('SIGHUP');
  await server.logged('primary.rolling_restart_done', () => true, 90_000);
  await sleep(1000);
  loading = false;
  await load;
  t.ok(hupAt > 0 && sent.length > hupAt, `load ran before (${hupAt}) and after the restart (${sent.length - hupAt} more)`);

  // [MSG-12] Wait until the server has acknowledged every message (tick 'sent' or later) and bob has them all.
  await alice.rec.until(() => sent.every((m) => alice.client.tickOf(m.messageId) !== 'pending'), 'every message acknowledged', 60_000);
  await bob.rec.until(() => received.length >= sent.length, 'every message received', 60_000);
  await sleep(500); // a duplicate would arrive now
  const counts = new Map<string, number>();
  for (const text of received) counts.set(text, (counts.get(text) ?? 0) + 1);
  const missing = sent.filter((m) => !counts.has(m.text)).map((m) => m.text);
  const doubled = [...counts].filter(([, n]) => n > 1).map(([text]) => text);
  t.same(missing, [], 'every acknowledged message reached the application');
  t.same(doubled, [], 'none reached it twice');
  t.same(received, sent.map((m) => m.text), '[DLV-7] in the order they were sent');

  const restarts = (rec: typeof alice.rec) => rec.of('disconnected').filter(([info]) => info.code === 1012).length;
  t.ok(restarts(alice.rec) >= 1 && restarts(bob.rec) >= 1, '[KAL-13] both clients were moved by SERVER_RESTART (1012) and reconnected');
  const pidsAfter = new Set<number>();
  for (let i = 0; i < 10; i++) pidsAfter.add(await servingPid(server.url));
  t.equal(pidsAfter.size, 2, 'two workers serve after the restart');
  t.same([...pidsAfter].filter((pid) => pidsBefore.has(pid)), [], 'and none of them is an old one');
});
