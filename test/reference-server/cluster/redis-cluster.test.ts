// The Redis store, the session bus and the shared limits on a Redis Cluster of three masters (redis-cluster.ts:
// loopback, free ports, appendonly yes, appendfsync always), named as an operator names it: redis+cluster://seeds.
// The Store contract shared with the log store and the single Redis; a user's keys in one slot, and the users spread
// over the three masters; events published on one node heard by a store whose subscriber is on another; and two
// `tickwire serve` processes on the cluster as one service: a message from A to B with its receipts, a hello on A
// replacing the session on B [DLV-34], and one registration limit over both [DPL-8].
import t, { type Test } from 'tap';
import type { MessageItem, ReceiptItem } from '../../../spec/index.ts';
import { UsageError } from '../../../bin/command.ts';
import { configFromArgs } from '../../../reference-server/cli.ts';
import { openRedisStore, type RedisStore } from '../../../reference-server/store/redis/redis-store.ts';
import { parseClusterUrl } from '../../../reference-server/store/redis/url.ts';
import type { DeviceAddress, StoreEvent } from '../../../reference-server/store/store.ts';
import { body, DAY, device, storeContract } from '../store/contract.ts';
import { RedisCluster, flushCluster } from '../store/redis/redis-cluster.ts';
import { freePort } from '../store/redis/redis-server.ts';
import { deviceRegistration, http, items, openSession, registerUser, sendFrame, username } from '../helpers.ts';
import { ServeProcess, tempDir } from './serve-process.ts';

async function openStore(t: Test, url: string): Promise<RedisStore> {
  const store = await openRedisStore(url, { commandTimeoutMs: 2000 });
  t.teardown(() => store.close().catch(() => {}));
  return store;
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

const send = (store: RedisStore, from: DeviceAddress, to: string, messageId: string, serverTime: number) =>
  store.enqueueMessage({ from, messageId, to, envelopes: [{ deviceId: 1, type: 'ratchet' as const, body: body(messageId) }], serverTime }, DAY, 100_000);

/** The hash tag of a key: the userId of `tw:{U}:...`. */
const tagOf = (key: string) => /^[^{]*\{([^}]*)\}/.exec(key)?.[1];

const cluster = await RedisCluster.start(3);
t.teardown(() => cluster.dispose());
const admin = await cluster.admin();
t.teardown(() => admin.disconnect());

t.test('--redis takes a redis+cluster:// URL of seed nodes', async (t) => {
  t.equal(configFromArgs(['--redis', cluster.url]).redisUrl, cluster.url);
  t.throws(() => configFromArgs(['--redis', 'redis+cluster://127.0.0.1']), UsageError, 'a seed without a port is refused');
  t.throws(() => configFromArgs(['--redis', 'redis+cluster://127.0.0.1:7000/1']), UsageError, 'a cluster has no database number');
  t.same(parseClusterUrl('rediss+cluster://tw:p%40ss@[::1]:7000,127.0.0.1:7001'), {
    nodes: [{ host: '::1', port: 7000 }, { host: '127.0.0.1', port: 7001 }],
    username: 'tw',
    password: 'p@ss',
    tls: true,
  });
});

t.test('the Store contract on a Redis Cluster', async (t) => {
  storeContract(t, {
    async fresh(t) {
      await flushCluster(admin);
      return { open: () => openStore(t, cluster.url) };
    },
  });
});

t.test("each user's keys are in one slot, and the users are spread over the three masters", async (t) => {
  await flushCluster(admin);
  const store = await openStore(t, cluster.url);
  t.same(store.persistence, { appendonly: 'yes', appendfsync: 'always' }, 'the persistence of the masters is read at start');
  const users: DeviceAddress[] = [];
  for (let i = 0; i < 24; i++) users.push((await store.createAccount(`spread${i}`, device(`d${i}`, [1, 2]), 1000))!);
  // A message to each user from the one before, acknowledged by half of them (receipts and outboxes), a link code.
  for (const [i, to] of users.entries()) t.match(await send(store, users[(i + users.length - 1) % users.length]!, to.userId, `spread-${i}`, 2000), { status: 'accepted' });
  for (const to of users.slice(0, 12)) t.equal((await store.acknowledge(to, [1], 3000)).removed.length, 1);
  await store.createLinkCode(users[0]!.userId, 'spread-code', 10_000, 1, 1);

  const holders = new Map<string, Set<number>>();
  const usersPerMaster: number[] = [];
  const masters = admin.nodes('master');
  for (const [n, node] of masters.entries()) {
    const userKeys = (await node.keys('tw:{*')).filter((key) => tagOf(key) !== undefined);
    const here = new Set(userKeys.map((key) => tagOf(key)!));
    usersPerMaster.push(here.size);
    for (const userId of here) holders.set(userId, (holders.get(userId) ?? new Set()).add(n));
    for (const userId of here) {
      const slots = new Set(await Promise.all(userKeys.filter((key) => tagOf(key) === userId).map((key) => node.cluster('KEYSLOT', key))));
      if (slots.size !== 1) t.fail(`the keys of ${userId} are in ${slots.size} slots`);
    }
  }
  t.equal(masters.length, 3, 'three masters');
  t.ok(users.every((u) => holders.get(u.userId)?.size === 1), "every user's keys are on exactly one master, in one slot");
  t.ok(usersPerMaster.every((count) => count > 0), `every master holds users (${usersPerMaster.join(', ')})`);

  // The retention sweep goes over users of every master (its reads are sent per key, not as one pipeline).
  t.equal(await store.expire(2500), users.length - 12, 'expire removes the unacknowledged messages on every master');
  t.equal(await store.expire(4000), 12, 'and the delivered receipts, enqueued at 3000');
});

t.test('two stores on the cluster: events published on any node reach a subscriber on another', async (t) => {
  await flushCluster(admin);
  const a = await openStore(t, cluster.url);
  // b's seeds: first a port where nothing listens, then the nodes in reverse order, so that its subscriber moves on
  // to another node than a's.
  const reversed = [...cluster.nodes].reverse().map((node) => `127.0.0.1:${node.port}`);
  const b = await openStore(t, `redis+cluster://127.0.0.1:${await freePort()},${reversed.join(',')}`);
  const seenByB: StoreEvent[] = [];
  b.subscribe((event) => seenByB.push(event));
  const sender = (await a.createAccount('events-sender', device('s'), 1000))!;
  const recipients: DeviceAddress[] = [];
  for (let i = 0; i < 12; i++) recipients.push((await a.createAccount(`events${i}`, device(`r${i}`), 1000))!);
  for (const [i, to] of recipients.entries()) t.match(await send(a, sender, to.userId, `event-${i}`, 2000), { status: 'accepted' });
  t.ok(await until(() => seenByB.length >= recipients.length), `b heard ${seenByB.length} of ${recipients.length} enqueues`);
  t.same(
    seenByB.map((e) => (e.type === 'enqueued' ? e.device.userId : '')).sort(),
    recipients.map((r) => r.userId).sort(),
    'one enqueued event per recipient, whichever master holds it',
  );
  t.match(await b.readQueue(recipients[0]!, 0, 10), [{ kind: 'message', seq: 1, messageId: 'event-0', from: sender }], 'b reads what a wrote');

  // Every subscriber connection of the cluster cut: b's reconnects (to the next node), subscribes again and hears
  // what follows; what was published in between is re-announced for the devices it reads (resync).
  await b.readQueue(recipients[1]!, 0, 10);
  seenByB.length = 0;
  await Promise.all(admin.nodes('master').map((node) => node.call('CLIENT', 'KILL', 'TYPE', 'pubsub')));
  t.match(await send(a, sender, recipients[1]!.userId, 'after-cut', 3000), { status: 'accepted' });
  t.ok(
    await until(() => seenByB.some((e) => e.type === 'enqueued' && e.device.userId === recipients[1]!.userId && e.lastSeq === 2)),
    'after the cut, b hears of the enqueue (live or by resync)',
  );
});

t.test('two `tickwire serve --redis redis+cluster://...` processes are one service [DPL-1] [DPL-8]', async (t) => {
  await flushCluster(admin);
  const args = () => [
    '--port', '0', '--redis', cluster.url, '--data-dir', tempDir(t), '--log-level', 'warn', '--lease-ttl-ms', '1000',
    '--registrations-per-minute', '5', '--ack-timeout-ms', '1000', '--shutdown-grace-ms', '2000',
  ];
  const [A, B] = await Promise.all([ServeProcess.start(t, args()), ServeProcess.start(t, args())]);

  // [DPL-8] Five registrations from 127.0.0.1, alternating A and B, then both refuse: one count in the cluster.
  const users = [];
  for (let i = 0; i < 5; i++) users.push(await registerUser(i % 2 === 0 ? A : B));
  for (const server of [A, B]) {
    const refused = await http(server, 'POST', '/v1/accounts', { body: { username: username(), device: deviceRegistration() } });
    t.equal(refused.status, 429, `[IDN-8] the sixth registration is refused by ${server === A ? 'A' : 'B'}`);
  }
  const [alice, bob, carol] = users as [(typeof users)[number], (typeof users)[number], (typeof users)[number]];

  // A message from a client on A to a device on B, in order, with the delivered receipts back on A.
  const { client: a } = await openSession(A, alice);
  const { client: b } = await openSession(B, bob);
  await Promise.all([a.nextOf('queue_empty'), b.nextOf('queue_empty')]);
  const frames = Array.from({ length: 10 }, () => sendFrame(bob.userId, [bob.deviceId]));
  for (const frame of frames) a.send(frame);
  for (const frame of frames) t.match(await a.next((f) => 'id' in f && f.id === frame.id), { type: 'send_ok', duplicate: false }, `send_ok ${frame.id}`);
  const delivered = (await items(b, frames.length, 'message')) as MessageItem[];
  t.same(delivered.map((i) => i.messageId), frames.map((f) => f.messageId), '[DLV-7] every message on B, in the order A accepted them');
  b.send({ type: 'ack', upTo: delivered[delivered.length - 1]!.seq });
  const ids = new Set<string>();
  while (ids.size < frames.length) {
    for (const receipt of (await items(a, 1, 'receipt')) as ReceiptItem[]) {
      t.match(receipt, { status: 'delivered', from: { userId: bob.userId, deviceId: bob.deviceId } }, '[RCP-1] a delivered receipt from B');
      for (const id of receipt.messageIds) ids.add(id);
      a.send({ type: 'ack', seqs: [receipt.seq] });
    }
  }
  t.same([...ids].sort(), frames.map((f) => f.messageId).sort(), '[RCP-1] a receipt for every message');

  // [DLV-34] A hello on A replaces carol's session on B (the bus asks B, whichever node its subscriber is on).
  const { client: old } = await openSession(B, carol);
  await old.nextOf('queue_empty');
  const { client: fresh } = await openSession(A, carol);
  t.match(await old.nextOf('error'), { code: 'SESSION_REPLACED' }, '[DLV-34] the session on B is told');
  t.equal((await old.closed).code, 4409, '[DLV-34] and closed with 4409');
  await Promise.all([a.close(), b.close(), fresh.close()]);
});
