// The Redis store against a redis-server of its own (redis-server.ts: loopback, free port, temporary directory,
// appendonly yes, appendfsync always): the Store contract shared with the log store, two store instances standing for
// two server processes (events, concurrent prekey fetches and resends), a kill -9 of Redis in the middle of a burst
// (nothing acknowledged is lost), Redis down or hanging (StoreUnavailableError within a bound, then recovery by itself),
// the lease of a send's deduplication claim, the counters behind stats(), and `serve --redis`.
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { UsageError } from '../../../../bin/command.ts';
import { configFromArgs } from '../../../../reference-server/cli.ts';
import { defaultConfig } from '../../../../reference-server/config.ts';
import { startServer } from '../../../../reference-server/server.ts';
import { StoreUnavailableError } from '../../../../reference-server/store/errors.ts';
import { keys } from '../../../../reference-server/store/redis/keys.ts';
import { openRedisStore, type RedisStore, type RedisStoreOptions } from '../../../../reference-server/store/redis/redis-store.ts';
import { ENQUEUE_MESSAGE } from '../../../../reference-server/store/redis/scripts.ts';
import type { DeviceAddress, StoreEvent, StoreStats } from '../../../../reference-server/store/store.ts';
import { body, DAY, device, storeContract, twoUsers } from '../contract.ts';
import { registerUser } from '../../helpers.ts';
import { RedisServer } from './redis-server.ts';

async function openStore(t: Test, url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
  const store = await openRedisStore(url, { commandTimeoutMs: 1000, ...options });
  t.teardown(() => store.close().catch(() => {}));
  return store;
}

async function client(t: Test, url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  t.teardown(() => redis.disconnect());
  return redis;
}

/** Retries `attempt` until it resolves (or `timeoutMs` passes, then rethrows its last failure). */
async function eventually<T>(attempt: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

const send = (store: RedisStore, from: DeviceAddress, to: string, messageId: string, serverTime = 10, deviceIds = [1]) =>
  store.enqueueMessage({ from, messageId, to, envelopes: deviceIds.map((deviceId) => ({ deviceId, type: 'ratchet' as const, body: body(messageId) })), serverTime }, DAY, 100_000);

const server = await RedisServer.start();
t.teardown(() => server.dispose());

t.test('the Store contract', async (t) => {
  const admin = await client(t, server.url);
  storeContract(t, {
    async fresh(t) {
      await admin.flushall();
      return { open: () => openStore(t, server.url) };
    },
  });
});

t.test('two stores on one Redis are two processes of one service', async (t) => {
  const admin = await client(t, server.url);
  await admin.flushall();
  const a = await openStore(t, server.url);
  const b = await openStore(t, server.url);
  const seenByA: StoreEvent[] = [];
  const seenByB: StoreEvent[] = [];
  a.subscribe((e) => seenByA.push(e));
  b.subscribe((e) => seenByB.push(e));
  const { alice, bob } = await twoUsers(a);
  t.same((await b.findUserByUsername('bob'))?.userId, bob.userId, 'an account made by one is found by the other');

  t.match(await send(a, alice, bob.userId, 'x-0000001'), { status: 'accepted', seqs: [{ deviceId: 1, seq: 1 }] });
  t.ok(await until(() => seenByB.length > 0), "the other process hears of the enqueue (pub/sub)");
  t.same(seenByB, [{ type: 'enqueued', device: bob, lastSeq: 1 }]);
  t.same(seenByA, [{ type: 'enqueued', device: bob, lastSeq: 1 }], 'the writing process hears of it once (its echo is skipped)');
  const items = await b.readQueue(bob, 0, 10);
  t.match(items, [{ kind: 'message', messageId: 'x-0000001', from: alice }], 'and finds the item when it reads');

  const acked = await b.acknowledge(bob, [1], 20);
  t.equal(acked.receipts.length, 1);
  t.ok(await until(() => seenByA.length > 1));
  t.same(seenByA[1], { type: 'enqueued', device: alice, lastSeq: 1 }, "the sender's process hears of the delivered receipt");
  t.match(await a.readQueue(alice, 0, 10), [{ kind: 'receipt', status: 'delivered', messageIds: ['x-0000001'] }]);

  await a.createLinkCode(alice.userId, 'code', 10_000, 1, 1);
  const tablet = (await b.linkDevice('code', device('tablet'), 2, 16)) as DeviceAddress;
  t.same(tablet, { userId: alice.userId, deviceId: 2 }, 'a code made by one process links on the other');
  seenByB.length = 0;
  t.equal(await a.removeDevice(tablet), 'removed');
  t.ok(await until(() => seenByB.length > 0));
  t.same(seenByB, [{ type: 'device-removed', device: tablet }], 'the other process hears of the removal');

  // Resends of one messageId racing on two processes: enqueued once [MSG-14], never a duplicate answer before the
  // original is durable [MSG-17].
  const carol = (await a.createAccount('carol', device('c'), 1))!;
  for (let round = 0; round < 20; round++) {
    const id = `race-${String(round).padStart(5, '0')}`;
    const sameTo = await Promise.all([send(a, alice, bob.userId, id, 100), send(b, alice, bob.userId, id, 101)]);
    t.same(sameTo.map((r) => r.status).sort(), ['accepted', 'duplicate'], `round ${round}: one of two concurrent resends is accepted`);
    const otherId = `other-${String(round).padStart(5, '0')}`;
    const otherTo = await Promise.allSettled([send(a, alice, bob.userId, otherId, 100), send(b, alice, carol.userId, otherId, 101)]);
    const accepted = otherTo.filter((r) => r.status === 'fulfilled' && r.value.status === 'accepted').length;
    const refusedRightly = otherTo.every((r) => r.status === 'fulfilled' || r.reason instanceof StoreUnavailableError);
    t.ok(accepted === 1 && refusedRightly, `round ${round}: a resend to another recipient is never enqueued as well`);
  }
  const bobQueue = await a.readQueue(bob, 0, 1000);
  const carolQueue = await a.readQueue({ userId: carol.userId, deviceId: 1 }, 0, 1000);
  const ids = [...bobQueue, ...carolQueue].map((i) => (i.kind === 'message' ? i.messageId : ''));
  t.equal(ids.length, new Set(ids).size, 'no messageId is in two queues or twice in one');

  // One-time prekeys fetched through two connections at once [PKY].
  const owner = (await a.createAccount('owner', device('o', Array.from({ length: 100 }, (_, i) => i + 1)), 1))!;
  const bundles = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).takeBundles(owner.userId)));
  const handed = bundles.flatMap((x) => (Array.isArray(x) ? x.map((e) => e.oneTimePreKey?.keyId).filter((k) => k !== undefined) : []));
  t.equal(handed.length, 100, '200 fetches on two processes took the 100 keys');
  t.equal(new Set(handed).size, 100, 'each key at most once');
});

t.test("a send's claim: a resend to another recipient waits out the lease, then takes it over", async (t) => {
  const admin = await client(t, server.url);
  await admin.flushall();
  const store = await openStore(t, server.url, { sendLeaseMs: 1500, clockSkewMs: 100 });
  const { alice, bob } = await twoUsers(store);
  const carol = (await store.createAccount('carol', device('c'), 1))!;
  // As if a process crashed between the claim and the enqueue of a send to bob.
  const [seconds] = await admin.time();
  const redisNow = Number(seconds) * 1000;
  const leaseUntil = redisNow + 1500;
  await admin.set(keys.dedupeClaim(alice, 'lease-00001'), `100|${100 + DAY}|${leaseUntil}|${bob.userId}`, 'PX', DAY);
  await t.rejects(send(store, alice, carol.userId, 'lease-00001', 200), StoreUnavailableError, 'while the lease lasts, the resend is answered as unavailable');
  t.equal(await store.findDuplicate(alice, 'lease-00001', 200), undefined, '[MSG-17] not a duplicate: the original is not durable');
  const stale = await admin.eval(
    ENQUEUE_MESSAGE.lua,
    4 + 2,
    keys.user(bob.userId),
    keys.devices(bob.userId),
    keys.seqs(bob.userId),
    keys.acceptance(bob.userId, alice, 'lease-00001'),
    keys.queue(bob),
    keys.enqueuedAt(bob),
    ...[alice.userId, '1', bob.userId, '100', String(100 + DAY), String(DAY), String(redisNow - 1), '100', keys.events, 'test e x', '1', '1', '{}'],
  );
  t.same(stale, ['lease-expired'], "the original's enqueue, arriving after its lease, is refused");
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, leaseUntil + 150 - redisNow)));
  t.match(await send(store, alice, carol.userId, 'lease-00001', 300), { status: 'accepted', serverTime: 300 }, 'after the lease the resend takes the claim over');
  t.same(await send(store, alice, bob.userId, 'lease-00001', 400), { status: 'duplicate', serverTime: 300 }, 'and the messageId is now taken by that send');
  t.same(await store.readQueue(bob, 0, 10), [], 'nothing reached bob');
});

t.test('kill -9 of redis-server mid-burst: everything acknowledged before it is there after the restart', async (t) => {
  const own = await RedisServer.start();
  t.teardown(() => own.dispose());
  const store = await openStore(t, own.url, { outboxStaleMs: 100 });
  const { alice, bob } = await twoUsers(store);
  const owner = (await store.createAccount('owner', device('o', Array.from({ length: 2000 }, (_, i) => i + 1)), 1))!;
  const accepted = new Map<number, string[]>();
  const ackedIds = new Set<string>();
  /** Items whose acknowledgement was under way at the crash: removed or not, either is right. */
  const maybeAcked = new Set<string>();
  const taken = new Set<number>();
  let stop = false;
  const faults: unknown[] = [];
  const guard = async (work: () => Promise<void>) => {
    try {
      while (!stop) await work();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) faults.push(error);
    }
  };
  const senders = Array.from({ length: 6 }, (_, w) => {
    accepted.set(w, []);
    let i = 0;
    return guard(async () => {
      const id = `k${w}-${String(i++).padStart(6, '0')}`;
      const result = await send(store, alice, bob.userId, id);
      if (result.status === 'accepted') accepted.get(w)!.push(id);
    });
  });
  let cursor = 0;
  const acker = guard(async () => {
    const items = await store.readQueue(bob, cursor, 20);
    if (items.length === 0) return new Promise((resolve) => setTimeout(resolve, 5));
    cursor = items[items.length - 1]!.seq;
    const chosen = items.filter((_, n) => n % 2 === 0);
    const ids = chosen.map((i) => (i.kind === 'message' ? i.messageId : ''));
    for (const id of ids) maybeAcked.add(id);
    const result = await store.acknowledge(bob, chosen.map((i) => i.seq), 50);
    for (const item of chosen) if (item.kind === 'message' && result.removed.includes(item.seq)) ackedIds.add(item.messageId);
    for (const id of ids) maybeAcked.delete(id);
  });
  const taker = guard(async () => {
    const bundle = await store.takeBundles(owner.userId);
    if (Array.isArray(bundle) && bundle[0]?.oneTimePreKey) taken.add(bundle[0].oneTimePreKey.keyId);
  });
  const total = () => [...accepted.values()].reduce((n, ids) => n + ids.length, 0);
  t.ok(await until(() => total() >= 1500, 60_000), 'the burst is under way');
  await own.kill();
  stop = true;
  await Promise.all([...senders, acker, taker]);
  t.same(faults, [], 'in-flight operations failed with StoreUnavailableError only');
  const before = { sent: total(), acked: ackedIds.size, taken: taken.size };
  await own.restart();

  // The same store instance recovers by itself; its retention sweep delivers the receipts that acknowledgements under
  // way at the crash still owed.
  const queue = await eventually(() => store.readQueue(bob, 0, 1_000_000));
  await new Promise((resolve) => setTimeout(resolve, 150));
  await store.expire(0);
  const inQueue = queue.map((i) => (i.kind === 'message' ? i.messageId : ''));
  const present = new Set(inQueue);
  const receipted = new Set((await store.readQueue(alice, 0, 1_000_000)).flatMap((i) => (i.kind === 'receipt' ? i.messageIds : [])));
  const lost = [...accepted.values()].flat().filter((id) => !ackedIds.has(id) && !maybeAcked.has(id) && !present.has(id));
  t.same(lost, [], `all ${before.sent} ACKed sends not acknowledged by bob (${before.acked} were, ${maybeAcked.size} were being acknowledged) are in the queue`);
  const gone = [...accepted.values()].flat().filter((id) => !present.has(id) && !receipted.has(id));
  t.same(gone, [], '[RCP-5] every ACKed send is still queued or has its delivered receipt, including those acknowledged at the crash');
  t.same([...ackedIds].filter((id) => present.has(id)), [], 'no acknowledged item is back');
  for (const [w, ids] of accepted) {
    const order = inQueue.filter((id) => id.startsWith(`k${w}-`));
    t.same(order, [...order].sort(), `sender ${w}: in send order (${ids.length} accepted)`);
  }
  const seqs = queue.map((i) => i.seq);
  t.same(seqs, [...new Set(seqs)].sort((x, y) => x - y), 'seqs unique and ascending');
  t.same([...ackedIds].filter((id) => !receipted.has(id)), [], `[RCP-5] a delivered receipt for each of the ${before.acked} acknowledged messages`);
  const admin = await client(t, own.url);
  const left = (await admin.hkeys(keys.preKeys(owner.userId))).map((field) => Number(field.split(':')[1]));
  t.same(left.filter((k) => taken.has(k)), [], `no one-time prekey handed out before the crash (${before.taken}) is still stored`);
  t.ok(taken.size + left.length <= 2000, `${taken.size} taken + ${left.length} left <= 2000`);
  const next = await store.takeBundles(owner.userId);
  const key = Array.isArray(next) ? next[0]?.oneTimePreKey?.keyId : undefined;
  t.ok(key !== undefined && !taken.has(key), 'the next fetch gets a key never handed out');
  t.match(await send(store, alice, bob.userId, 'after-crash-1'), { status: 'accepted', seqs: [{ seq: Math.max(0, ...seqs) + 1 }] }, 'seqs go on above the highest');
});

t.test('receipts owed by an acknowledgement whose process died are enqueued by the retention sweep', async (t) => {
  const admin = await client(t, server.url);
  await admin.flushall();
  const store = await openStore(t, server.url, { outboxStaleMs: 0 });
  const { alice, bob } = await twoUsers(store);
  // What ACK_ITEMS leaves behind when the process dies before the receipts are enqueued.
  const entry = { d: '1', at: '777', max: '100', t: '1', m: [[alice.userId, '1', 'lost-000001'], [alice.userId, '1', 'lost-000002'], ['nobody', '1', 'lost-000003']] };
  await admin.hset(keys.receiptOutbox(bob.userId), '1.1', JSON.stringify(entry));
  t.equal(await store.expire(0), 0, 'nothing expired');
  t.match(await store.readQueue(alice, 0, 10), [{ kind: 'receipt', status: 'delivered', from: bob, messageIds: ['lost-000001', 'lost-000002'], at: 777 }], '[RCP-5] the receipt reached the sender');
  t.same(await admin.hkeys(keys.receiptOutbox(bob.userId)), [], 'and the debt is settled');
});

t.test('Redis down: StoreUnavailableError at once, and recovery by itself when it is back', async (t) => {
  const own = await RedisServer.start();
  t.teardown(() => own.dispose());
  const store = await openStore(t, own.url);
  const other = await openStore(t, own.url);
  const { alice, bob } = await twoUsers(store);
  const heard: StoreEvent[] = [];
  other.subscribe((e) => heard.push(e));
  await other.readQueue(bob, 0, 10); // the other process has a session for bob
  await own.kill();
  const operations: Array<[string, () => Promise<unknown>]> = [
    ['enqueueMessage', () => send(store, alice, bob.userId, 'down-0001')],
    ['acknowledge', () => store.acknowledge(bob, [1], 1)],
    ['readQueue', () => store.readQueue(bob, 0, 10)],
    ['takeBundles', () => store.takeBundles(bob.userId)],
    ['createAccount', () => store.createAccount('erin', device('e'), 1)],
    ['findDuplicate', () => store.findDuplicate(alice, 'down-0001', 1)],
  ];
  for (const [name, operation] of operations) {
    const started = Date.now();
    await t.rejects(operation(), StoreUnavailableError, `${name} rejects with StoreUnavailableError`);
    t.ok(Date.now() - started < 3000, `${name} rejects without hanging (${Date.now() - started} ms)`);
  }
  await own.restart();
  const result = await eventually(() => send(store, alice, bob.userId, 'back-0001'));
  t.match(result, { status: 'accepted', seqs: [{ deviceId: 1, seq: 1 }] }, 'the same store works again once Redis is back');
  t.ok(await until(() => heard.some((e) => e.type === 'enqueued' && e.lastSeq === 1)), 'the other process hears of enqueues again (it subscribed again)');
  t.same(await store.findDuplicate(alice, 'back-0001', 20), { serverTime: 10 });
});

t.test('Redis hanging (SIGSTOP): operations fail after the command timeout, and work once it resumes', async (t) => {
  const own = await RedisServer.start();
  t.teardown(() => own.dispose());
  const store = await openStore(t, own.url, { commandTimeoutMs: 300 });
  const { alice, bob } = await twoUsers(store);
  own.pause();
  const started = Date.now();
  await t.rejects(send(store, alice, bob.userId, 'hang-0001'), StoreUnavailableError, 'a send is not answered as accepted');
  await t.rejects(store.readQueue(bob, 0, 10), StoreUnavailableError);
  t.ok(Date.now() - started < 3000, `both failed within the timeouts (${Date.now() - started} ms)`);
  own.resume();
  // The send may or may not have been applied once Redis resumed [MSG-18]; a resend settles it either way.
  const resent = await eventually(() => send(store, alice, bob.userId, 'hang-0001'));
  t.ok(resent.status === 'accepted' || resent.status === 'duplicate', `the resend is ${resent.status}`);
  t.equal((await store.readQueue(bob, 0, 10)).length, 1, 'enqueued exactly once');
});

t.test('stats: counters shared through Redis; a warning when Redis does not fsync every write', async (t) => {
  const admin = await client(t, server.url);
  await admin.flushall();
  const a = await openStore(t, server.url, { statsRefreshMs: 50 });
  const b = await openStore(t, server.url, { statsRefreshMs: 50 });
  const { alice, bob } = await twoUsers(a);
  for (let i = 0; i < 3; i++) await send(a, alice, bob.userId, `s-${i}-000000`);
  // A read-back racing a change can show the value before it for one refresh period: the counters are approximate.
  const matches = (stats: StoreStats, expected: Partial<StoreStats>) => Object.entries(expected).every(([k, v]) => stats[k as keyof StoreStats] === v);
  t.ok(await until(() => matches(a.stats(), { accounts: 2, devices: 2, queuedItems: 3, maxQueueDepth: 3, cachedItems: 0 })), 'the writing process counts its changes');
  t.ok(await until(() => b.stats().accounts === 2 && b.stats().queuedItems === 3), 'the other process reads the counters back');
  await b.acknowledge(bob, [1, 2], 20);
  t.ok(await until(() => a.stats().queuedItems === 2), 'acknowledged items and the receipt they made are counted');

  const relaxed = await RedisServer.start({ appendfsync: 'everysec' });
  t.teardown(() => relaxed.dispose());
  const warnings: Array<{ event: string; fields?: Record<string, unknown> }> = [];
  const log = { debug() {}, info() {}, error() {}, warn: (event: string, fields?: Record<string, unknown>) => void warnings.push({ event, ...(fields ? { fields } : {}) }) };
  const store = await openStore(t, relaxed.url, { log });
  t.same(store.persistence, { appendonly: 'yes', appendfsync: 'everysec' });
  t.match(warnings, [{ event: 'store.redis_not_durable', fields: { appendfsync: 'everysec' } }]);
});

t.test('tickwire serve --redis: the flag, and a server whose state is in Redis', async (t) => {
  t.equal(configFromArgs(['--redis', server.url]).redisUrl, server.url);
  t.throws(() => configFromArgs(['--redis', '127.0.0.1:6379']), UsageError, 'not a redis:// URL');
  t.throws(() => configFromArgs(['--redis', server.url, '--test-mutant', 'ack-before-durable']), UsageError, 'a mutant of the log store');
  const admin = await client(t, server.url);
  await admin.flushall();
  const unused = join(tmpdir(), `tickwire-unused-${process.pid}`);
  const running = await startServer(defaultConfig({ port: 0, dataDir: unused, redisUrl: server.url, logLevel: 'silent' }));
  t.teardown(() => running.close());
  const user = await registerUser(running);
  const store = await openStore(t, server.url);
  t.same((await store.findUserByUsername(user.username))?.userId, user.userId, 'the account is in Redis');
  t.notOk(existsSync(unused), 'the data directory was not used');
});
