// Two `tickwire serve` processes on different ports sharing one redis-server form one service [DPL-1]: a message from a
// client on A to a device on B is delivered in order with the whole receipt chain; a hello on A replaces the device's
// session on B [DLV-34] [DPL-2] and the new session gets what was in flight, flagged as redelivered [DLV-36] [DLV-10];
// presence and typing cross processes [PRS-6] [PRS-11]; a device deleted through A loses its session on B [IDN-29];
// prekeys_low reaches the session on B after a bundle fetch through A [PKY-20]; device lists show authentications on
// either [IDN-23]; and the users of a SIGKILLed process
// go offline within the lease bound [DPL-7].
import t from 'tap';
import type { MessageItem, ReceiptItem } from '../../../spec/index.ts';
import { http, items, linkDevice, openSession, registerUser, rid, sendFrame, type TestClient } from '../helpers.ts';
import { RedisServer } from '../store/redis/redis-server.ts';
import { ServeProcess, TEST_SERVER_ARGS, tempDir } from './serve-process.ts';

/** Lease of 1 s: a SIGKILLed process's users go offline within about 1.5 s (cluster/constants.ts). */
const LEASE_TTL_MS = 1000;

t.test('two instances sharing Redis', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.dispose());
  const args = () => ['--port', '0', '--redis', redis.url, '--data-dir', tempDir(t), '--log-level', 'warn', '--lease-ttl-ms', String(LEASE_TTL_MS), '--prekey-low-water', '3', ...TEST_SERVER_ARGS];
  const [A, B] = await Promise.all([ServeProcess.start(t, args()), ServeProcess.start(t, args())]);
  t.not(A.url, B.url, 'two listeners');

  t.test('a message from A to B, in order, with the whole receipt chain [DPL-1] [DLV-7] [RCP-1] [RCP-11]', async (t) => {
    const alice = await registerUser(A);
    const bob = await registerUser(B);
    const { client: a } = await openSession(A, alice);
    const { client: b } = await openSession(B, bob);
    await Promise.all([a.nextOf('queue_empty'), b.nextOf('queue_empty')]);
    const frames = Array.from({ length: 20 }, () => sendFrame(bob.userId, [bob.deviceId]));
    for (const frame of frames) a.send(frame);
    for (const frame of frames) t.match(await a.next((f) => 'id' in f && f.id === frame.id), { type: 'send_ok', duplicate: false }, `send_ok ${frame.id}`);
    const delivered = (await items(b, frames.length, 'message')) as MessageItem[];
    t.same(delivered.map((i) => i.messageId), frames.map((f) => f.messageId), '[DLV-7] every message on B, in the order A accepted them');
    t.ok(delivered.every((item, i) => i === 0 || item.seq > delivered[i - 1]!.seq), 'seqs ascend');
    t.same(delivered[0]!.from, { userId: alice.userId, deviceId: alice.deviceId }, '[MSG-13] from the device on A');
    b.send({ type: 'ack', upTo: delivered[delivered.length - 1]!.seq });
    const receipts = (await items(a, 1, 'receipt')) as ReceiptItem[];
    const ids = new Set<string>();
    for (let got = receipts; ; got = (await items(a, 1, 'receipt')) as ReceiptItem[]) {
      for (const receipt of got) {
        t.equal(receipt.status, 'delivered');
        t.same(receipt.from, { userId: bob.userId, deviceId: bob.deviceId }, '[RCP-1] from the device on B');
        for (const id of receipt.messageIds) ids.add(id);
        a.send({ type: 'ack', seqs: [receipt.seq] });
      }
      if (ids.size >= frames.length) break;
    }
    t.same([...ids].sort(), frames.map((f) => f.messageId).sort(), '[RCP-1] a delivered receipt for every message');
    const read = frames.slice(0, 3).map((f) => f.messageId);
    t.match(await b.request({ type: 'receipt', id: rid('rc'), to: { userId: alice.userId, deviceId: alice.deviceId }, status: 'read', messageIds: read }), { type: 'receipt_ok' });
    const [readReceipt] = (await items(a, 1, 'receipt')) as ReceiptItem[];
    t.match(readReceipt, { status: 'read', messageIds: read, from: { userId: bob.userId, deviceId: bob.deviceId } }, '[RCP-11] the read receipt from B reaches A');
    await Promise.all([a.close(), b.close()]);
  });

  t.test('a hello on A replaces the session on B; what was in flight is delivered again [DPL-2] [DLV-34] [DLV-36] [DLV-10]', async (t) => {
    const carol = await registerUser(A);
    const sender = await registerUser(A);
    const { client: old } = await openSession(B, carol);
    await old.nextOf('queue_empty');
    const { client: s } = await openSession(A, sender);
    const frame = sendFrame(carol.userId, [carol.deviceId]);
    t.match(await s.request(frame), { type: 'send_ok' });
    const [first] = (await items(old, 1, 'message')) as MessageItem[];
    t.equal(first!.messageId, frame.messageId);
    t.notOk(first!.redelivered, '[DLV-10] a first delivery is not flagged');
    // Not acknowledged: in flight on the old session when the device authenticates again, on the other process.
    const { client: fresh } = await openSession(A, carol);
    t.match(await old.nextOf('error'), { code: 'SESSION_REPLACED' }, '[DLV-34] the session on B is told');
    t.equal((await old.closed).code, 4409, '[DLV-34] and closed with 4409');
    const [again] = (await items(fresh, 1, 'message')) as MessageItem[];
    t.equal(again!.messageId, frame.messageId, '[DLV-36] the item in flight on B is delivered on the new session on A');
    t.equal(again!.redelivered, true, '[DLV-10] flagged: B delivered it before');
    fresh.send({ type: 'ack', upTo: again!.seq });
    // A third hello, back on B: the session on A ends the same way.
    const { client: third } = await openSession(B, carol);
    t.match(await fresh.nextOf('error'), { code: 'SESSION_REPLACED' });
    t.equal((await fresh.closed).code, 4409);
    await Promise.all([third.close(), s.close()]);
  });

  t.test('presence and typing across processes [PRS-1] [PRS-2] [PRS-6] [PRS-11]', async (t) => {
    const dave = await registerUser(A);
    const erin = await registerUser(B);
    const erin2 = await linkDevice(B, erin);
    const { client: d } = await openSession(A, dave);
    t.match(await d.request({ type: 'subscribe_presence', id: rid('p'), userIds: [erin.userId] }), { type: 'subscribed' });
    t.match(await d.nextOf('presence'), { userId: erin.userId, status: 'offline' }, '[PRS-4] offline at first');
    const { client: e1 } = await openSession(B, erin);
    t.match(await d.nextOf('presence'), { userId: erin.userId, status: 'online' }, '[PRS-6] online when a session opens on B');
    const { client: e2 } = await openSession(A, erin2);
    t.ok(await d.quietFor(300, (f) => f.type === 'presence'), 'a second device, on the other process, changes nothing');
    e1.send({ type: 'typing', to: dave.userId, state: 'started' });
    t.match(await d.nextOf('typing'), { from: { userId: erin.userId, deviceId: erin.deviceId }, state: 'started' }, '[PRS-11] typing from B reaches A');
    d.send({ type: 'typing', to: erin.userId, state: 'stopped' });
    t.match(await e1.nextOf('typing'), { from: { userId: dave.userId, deviceId: dave.deviceId }, state: 'stopped' }, '[PRS-11] on B');
    t.match(await e2.nextOf('typing'), { from: { userId: dave.userId, deviceId: dave.deviceId }, state: 'stopped' }, '[PRS-11] and on A');
    await e1.close();
    t.ok(await d.quietFor(300, (f) => f.type === 'presence'), '[PRS-1] still online while the device on A has a session');
    const before = Date.now();
    await e2.close();
    const offline = await d.nextOf('presence');
    t.match(offline, { userId: erin.userId, status: 'offline' }, '[PRS-6] offline when the last session, on A, closed');
    t.ok(offline.lastSeenAt !== undefined && offline.lastSeenAt >= before - 1000, '[PRS-2] with the last-seen time');
    // A subscriber on B sees the same recorded time.
    const { client: d2 } = await openSession(B, await registerUser(B));
    t.match(await d2.request({ type: 'subscribe_presence', id: rid('p'), userIds: [erin.userId] }), { type: 'subscribed' });
    t.match(await d2.nextOf('presence'), { userId: erin.userId, status: 'offline', lastSeenAt: offline.lastSeenAt }, '[PRS-8] lastSeenAt is the same on every process');
    await Promise.all([d.close(), d2.close()]);
  });

  t.test('a device deleted through A loses its session on B; prekeys_low from A reaches B [IDN-29] [PKY-20]', async (t) => {
    const frank = await registerUser(A);
    const frank2 = await linkDevice(A, frank, { prekeys: 3 });
    const { client: f2 } = await openSession(B, frank2);
    await f2.nextOf('queue_empty');
    const fetcher = await registerUser(A);
    const bundle = await http(A, 'GET', `/v1/users/${frank.userId}/keys?deviceId=${frank2.deviceId}`, { auth: fetcher });
    t.equal(bundle.status, 200, 'a bundle fetched through A');
    t.match(await f2.nextOf('prekeys_low'), { remaining: 2, lowWater: 3 }, '[PKY-20] the session on B hears of it');
    const deleted = await http(A, 'DELETE', `/v1/devices/${frank2.deviceId}`, { auth: frank });
    t.equal(deleted.status, 204);
    t.match(await f2.nextOf('error'), { code: 'DEVICE_REMOVED' }, '[IDN-29] the session on B ends');
    t.equal((await f2.closed).code, 4403);
  });

  t.test('a device list on A shows an authentication on B [IDN-23]', async (t) => {
    const hank = await registerUser(A);
    const hank2 = await linkDevice(A, hank);
    const list = async () => (await http(A, 'GET', '/v1/devices', { auth: hank })).body as { devices: Array<{ deviceId: number; lastSeenAt?: number }> };
    t.equal((await list()).devices.find((d) => d.deviceId === hank2.deviceId)?.lastSeenAt, undefined, 'not before it authenticated');
    const { client, welcome } = await openSession(B, hank2);
    await client.close();
    const seen = (await list()).devices.find((d) => d.deviceId === hank2.deviceId)?.lastSeenAt;
    t.ok(seen !== undefined && Math.abs(seen - welcome.serverTime) < 1000, `[IDN-23] the hello on B (${welcome.serverTime}) shows on A (${seen})`);
  });

  t.test('the users of a SIGKILLed process go offline within the lease bound [DPL-7]', async (t) => {
    const watcher = await registerUser(A);
    const gone = await registerUser(B);
    const { client: w } = await openSession(A, watcher);
    t.match(await w.request({ type: 'subscribe_presence', id: rid('p'), userIds: [gone.userId] }), { type: 'subscribed' });
    await w.nextOf('presence');
    const { client: g } = await openSession(B, gone);
    t.match(await w.nextOf('presence'), { userId: gone.userId, status: 'online' });
    B.signal('SIGKILL');
    await B.exited;
    // Reaped at most 1.5 leases after the last renewal; 10 s leaves room for a loaded machine.
    t.match(await w.nextOf('presence', (p) => p.userId === gone.userId, 10_000), { status: 'offline' }, '[DPL-7] offline once the lease expired');
    await g.closed;
    // Its device can authenticate on A at once.
    const { client: back } = await openSession(A, gone);
    t.match(await w.nextOf('presence', (p) => p.userId === gone.userId), { status: 'online' });
    await Promise.all([back.close(), w.close()]);
  });

  t.test('after Redis restarts, claims and presence work again without operator action', async (t) => {
    const ivy = await registerUser(A);
    const jay = await registerUser(A);
    const { client: watcher } = await openSession(A, ivy);
    t.match(await watcher.request({ type: 'subscribe_presence', id: rid('p'), userIds: [jay.userId] }), { type: 'subscribed' });
    await watcher.nextOf('presence');
    await redis.kill();
    await redis.restart();
    // The first hellos may come before the server's connections are back; a refused one closes, and is retried.
    let session: TestClient | undefined;
    for (let attempt = 0; attempt < 50 && !session; attempt++) {
      session = await openSession(A, jay).then(
        ({ client }) => client,
        () => undefined,
      );
      if (!session) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    t.ok(session, 'a hello succeeds once Redis is back');
    t.match(await watcher.nextOf('presence', (p) => p.userId === jay.userId && p.status === 'online', 10_000), { status: 'online' }, '[PRS-6] the watcher hears of it');
    await session!.close();
    t.match(await watcher.nextOf('presence', (p) => p.userId === jay.userId, 10_000), { status: 'offline' });
    await watcher.close();
  });
});
