// The embedded store over real files: every operation, durability across reopen, checkpoints, segment reclamation,
// body eviction, and a child process killed with SIGKILL mid-burst.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLogStore, type LogStore, type LogStoreOptions } from '../../../../reference-server/store/log/log-store.ts';
import type { NewDevice, QueueItem, StoreEvent } from '../../../../reference-server/store/store.ts';

const freshDir = () => mkdtempSync(join(tmpdir(), 'tickwire-store-'));
const KEY = 'BQ' + 'A'.repeat(42);
const SIG = 'A'.repeat(86) + '==';
const device = (name: string, preKeyIds: number[] = []): NewDevice => ({
  name,
  secretHash: 'f'.repeat(64),
  registrationId: 7,
  identityKey: KEY,
  signedPreKey: { keyId: 1, publicKey: KEY, signature: SIG },
  oneTimePreKeys: preKeyIds.map((keyId) => ({ keyId, publicKey: KEY })),
});
const DAY = 86_400_000;
const body = (text: string) => Buffer.from(text).toString('base64');

async function withStore(t: Test, dir: string, options: LogStoreOptions = {}): Promise<LogStore> {
  const store = await openLogStore(dir, options);
  t.teardown(() => store.close().catch(() => {}));
  return store;
}

async function twoUsers(store: LogStore) {
  const alice = (await store.createAccount('alice', device('alice phone', [1, 2, 3]), 1000))!;
  const bob = (await store.createAccount('bob', device('bob phone', [10, 11]), 1000))!;
  return { alice: { userId: alice.userId, deviceId: alice.deviceId }, bob: { userId: bob.userId, deviceId: bob.deviceId } };
}

t.test('accounts: usernames are unique, even when registered concurrently; ids are random', async (t) => {
  const store = await withStore(t, freshDir());
  const results = await Promise.all(Array.from({ length: 10 }, () => store.createAccount('carol', device('c'), 1)));
  t.equal(results.filter((r) => r !== undefined).length, 1, 'exactly one registration of a name wins');
  const other = await store.createAccount('dave', device('d'), 1);
  t.not(other!.userId, results.find((r) => r)!.userId);
  t.match(other!.userId, /^[A-Za-z0-9_-]{22}$/);
  t.equal(other!.deviceId, 1);
  const found = await store.findUserByUsername('dave');
  t.same(found!.deviceIds, [1]);
});

t.test('linking, device ids never reused, removal discards the queue and invalidates codes', async (t) => {
  const dir = freshDir();
  const store = await withStore(t, dir);
  const { alice, bob } = await twoUsers(store);
  await store.createLinkCode(alice.userId, 'hash-1', 5000, 1);
  t.equal(await store.linkDevice('hash-1', device('tablet'), 6000, 16), 'invalid-code', 'an expired code is refused');
  await store.createLinkCode(alice.userId, 'hash-2', 9000, 1);
  const linked = await store.linkDevice('hash-2', device('tablet'), 6000, 16);
  t.same(linked, { userId: alice.userId, deviceId: 2 });
  t.equal(await store.linkDevice('hash-2', device('again'), 6000, 16), 'invalid-code', 'a code works once');
  await store.createLinkCode(alice.userId, 'hash-3', 9000, 1);
  t.equal(await store.linkDevice('hash-3', device('third'), 6000, 2), 'too-many-devices');
  t.equal(await store.linkDevice('hash-3', device('third'), 6000, 3).then((r) => (typeof r === 'object' ? r.deviceId : r)), 3, 'the code survived the refusal');

  const sent = await store.enqueueMessage({ from: bob, messageId: 'msg-0001', to: alice.userId, envelopes: [1, 2, 3].map((deviceId) => ({ deviceId, type: 'ratchet' as const, body: body('hi') })), serverTime: 7000 }, DAY, 100);
  t.equal(sent.status, 'accepted');
  const events: StoreEvent[] = [];
  store.subscribe((e) => events.push(e));
  await store.createLinkCode(alice.userId, 'hash-4', 9000, 3);
  t.equal(await store.removeDevice({ userId: alice.userId, deviceId: 3 }), 'removed');
  t.same(events, [{ type: 'device-removed', device: { userId: alice.userId, deviceId: 3 } }]);
  t.equal(await store.linkDevice('hash-4', device('x'), 6000, 16), 'invalid-code', "deleting the code's device invalidates it");
  t.same(await store.readQueue({ userId: alice.userId, deviceId: 3 }, 0, 10), [], 'the queue went with the device');
  t.equal(await store.removeDevice({ userId: alice.userId, deviceId: 3 }), 'unknown-device');
  t.equal(await store.removeDevice({ userId: bob.userId, deviceId: 1 }), 'last-device');
  await store.close();

  const again = await withStore(t, dir);
  t.same((await again.getAccount(alice.userId))!.deviceIds, [1, 2]);
  await again.createLinkCode(alice.userId, 'hash-5', 99_000, 1);
  t.same(await again.linkDevice('hash-5', device('new'), 7000, 16), { userId: alice.userId, deviceId: 4 }, 'device id 3 is not reused after a restart');
});

t.test('one-time prekeys: each handed out once, under concurrency and across restarts', async (t) => {
  const dir = freshDir();
  const store = await withStore(t, dir);
  const owner = (await store.createAccount('owner', device('o', Array.from({ length: 20 }, (_, i) => i)), 1))!;
  const bundles = await Promise.all(Array.from({ length: 50 }, () => store.takeBundles(owner.userId)));
  const handed = bundles.flatMap((b) => (Array.isArray(b) ? b.map((e) => e.oneTimePreKey?.keyId).filter((k) => k !== undefined) : []));
  t.equal(handed.length, 20, 'twenty keys handed out');
  t.equal(new Set(handed).size, 20, 'no key twice');
  t.ok(bundles.every((b) => Array.isArray(b) && b.length === 1), 'every fetch got a bundle, the late ones without a one-time prekey');
  t.equal(await store.countOneTimePreKeys(owner), 0);
  t.equal(await store.addOneTimePreKeys(owner, [{ keyId: 5, publicKey: KEY }], 100), 1, 'a consumed keyId may be uploaded again');
  t.same(await store.addOneTimePreKeys(owner, [{ keyId: 9, publicKey: KEY }, { keyId: 5, publicKey: KEY }], 100), { duplicateKeyIds: [5] }, 'only the clashing keyIds are named');
  t.equal(await store.addOneTimePreKeys(owner, [{ keyId: 6, publicKey: KEY }, { keyId: 7, publicKey: KEY }], 2), 'too-many');
  t.equal(await store.addOneTimePreKeys(owner, [{ keyId: 8, publicKey: KEY }], 100), 2);
  const one = await store.takeBundles(owner.userId, 1);
  t.equal(Array.isArray(one) && one[0]!.oneTimePreKey?.keyId, 5, 'keys go out oldest first');
  t.equal(await store.takeBundles('nobody'), 'unknown-user');
  t.equal(await store.takeBundles(owner.userId, 9), 'unknown-device');
  t.same(await store.takeBundles(owner.userId, undefined, 1), [], 'excluding the only device leaves nothing');
  await store.setSignedPreKey(owner, { keyId: 2, publicKey: KEY, signature: SIG });
  await store.close();

  const again = await withStore(t, dir);
  t.equal(await again.countOneTimePreKeys(owner), 1, 'only the untaken key is left after a restart');
  const after = await again.takeBundles(owner.userId);
  t.equal(Array.isArray(after) && after[0]!.oneTimePreKey?.keyId, 8);
  t.equal(Array.isArray(after) && after[0]!.device.signedPreKey.keyId, 2, 'the rotated signed prekey survived');
});

t.test('messages: device-set checks, dedupe, queue limits, ack with receipts, restart', async (t) => {
  const dir = freshDir();
  const store = await withStore(t, dir);
  const { alice, bob } = await twoUsers(store);
  const send = (messageId: string, deviceIds = [1], to = bob.userId, from = alice) =>
    store.enqueueMessage({ from, messageId, to, envelopes: deviceIds.map((deviceId) => ({ deviceId, type: 'ratchet' as const, body: body(messageId) })), serverTime: 5000 }, DAY, 3);

  t.same(await send('m-unknown', [1], 'nobody'), { status: 'unknown-user' });
  t.same(await send('m-stale', [1, 2]), { status: 'stale-devices', missing: [], extra: [2] });
  t.same(await send('m-self', [1], alice.userId), { status: 'stale-devices', missing: [], extra: [1] }, 'to oneself with no other device');
  const first = await send('m-0000001');
  t.match(first, { status: 'accepted', serverTime: 5000, seqs: [{ deviceId: 1, seq: 1 }] });
  t.same(await send('m-0000001', [1, 2]), { status: 'duplicate', serverTime: 5000 }, 'a resend is a duplicate whatever its envelopes');
  const concurrent = await Promise.all([send('m-0000002'), send('m-0000002')]);
  t.same(concurrent.map((r) => r.status).sort(), ['accepted', 'duplicate'], 'concurrent resends enqueue once');
  await send('m-0000003');
  t.match(await send('m-0000004'), { status: 'queue-full', deviceIds: [1] });

  const items = await store.readQueue(bob, 0, 10);
  t.same(items.map((i) => i.seq), [1, 2, 3]);
  t.match(items[0], { kind: 'message', messageId: 'm-0000001', from: alice, envelope: { type: 'ratchet', body: body('m-0000001') }, serverTime: 5000 });
  t.equal(await store.lastSeq(bob), 3);

  const acked = await store.acknowledge(bob, [1, 2, 2, 99], 6000);
  t.same(acked.removed, [1, 2], 'unknown and repeated seqs are ignored');
  t.equal(acked.receipts.length, 1, 'one delivered receipt for the sender device');
  t.match(acked.receipts[0], { to: alice, item: { kind: 'receipt', status: 'delivered', from: bob, messageIds: ['m-0000001', 'm-0000002'], at: 6000 } });
  t.same((await store.acknowledge(bob, [1], 6000)).removed, [], 're-acknowledging is a no-op');
  const aliceQueue = await store.readQueue(alice, 0, 10);
  t.match(aliceQueue, [{ kind: 'receipt', status: 'delivered', seq: 1 }]);
  const read = await store.enqueueReceipt(bob, { kind: 'receipt', status: 'read', from: alice, messageIds: ['x1234567'], at: 6500 }, 3);
  t.match(read, { status: 'accepted', seq: 4 });
  t.same(await store.enqueueReceipt({ userId: bob.userId, deviceId: 5 }, { kind: 'receipt', status: 'read', from: alice, messageIds: ['x1234567'], at: 1 }, 3), { status: 'unknown-device' });
  await store.close();

  const again = await withStore(t, dir);
  t.same((await again.readQueue(bob, 0, 10)).map((i) => i.seq), [3, 4], 'the queue survives the restart');
  t.match(await again.readQueue(alice, 0, 10), [{ kind: 'receipt', messageIds: ['m-0000001', 'm-0000002'] }], 'so does the receipt');
  t.equal((await again.enqueueMessage({ from: alice, messageId: 'm-0000002', to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('x') }], serverTime: 9000 }, DAY, 10)).status, 'duplicate', 'dedupe keys survive');
  const next = await again.enqueueMessage({ from: alice, messageId: 'm-0000009', to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('x') }], serverTime: 9000 }, DAY, 10);
  t.match(next, { status: 'accepted', seqs: [{ seq: 5 }] }, 'seqs continue above the highest ever assigned');
  t.equal(await again.expire(9000), 3, 'expiry removes the items enqueued before the cut');
  t.same((await again.readQueue(bob, 0, 10)).map((i) => i.seq), [5]);
});

t.test('checkpoints reclaim acknowledged segments and keep start-up exact; evicted bodies are read back', async (t) => {
  const dir = freshDir();
  const options = { segmentBytes: 16 * 1024, checkpointEveryBytes: 32 * 1024, cacheBytes: 2048 };
  const store = await withStore(t, dir, options);
  const { alice, bob } = await twoUsers(store);
  const sent: string[] = [];
  for (let i = 0; i < 400; i++) {
    const id = `bulk-${String(i).padStart(5, '0')}`;
    await store.enqueueMessage({ from: alice, messageId: id, to: bob.userId, envelopes: [{ deviceId: 1, type: 'prekey', body: body(id.repeat(5)) }], serverTime: 100 + i }, DAY, 10_000);
    sent.push(id);
  }
  const segmentsBefore = readdirSync(dir).filter((f) => f.endsWith('.twlog')).length;
  const all: QueueItem[] = await store.readQueue(bob, 0, 1000);
  t.equal(all.length, 400);
  t.ok(all.every((item, i) => item.kind === 'message' && item.envelope.body === body(sent[i]!.repeat(5))), 'every body, cached or read back from disk, is intact');
  t.ok(store.stats().cachedItems < 400, `only ${store.stats().cachedItems} bodies are held in memory`);
  await store.acknowledge(bob, all.slice(0, 350).map((i) => i.seq), 1000);
  for (let i = 0; i < 100; i++) await store.enqueueMessage({ from: bob, messageId: `pad-${String(i).padStart(5, '0')}`, to: alice.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('p'.repeat(200)) }], serverTime: 2000 }, DAY, 10_000);
  const segmentsAfter = readdirSync(dir).filter((f) => f.endsWith('.twlog')).length;
  t.ok(readdirSync(dir).includes('checkpoint.json'), 'a checkpoint was written');
  t.ok(segmentsAfter < segmentsBefore + 12, `segments reclaimed (${segmentsBefore} before the acks, ${segmentsAfter} after more traffic)`);
  await store.close();

  const again = await withStore(t, dir, options);
  const left = await again.readQueue(bob, 0, 1000);
  t.same(left.map((i) => (i.kind === 'message' ? i.messageId : '')), sent.slice(350), 'the 50 unacknowledged messages are there, in order, after a restart from the checkpoint');
  t.ok(left.every((item) => item.kind === 'message' && item.envelope.body.length > 0));
  t.equal((await again.readQueue(alice, 0, 1000)).filter((i) => i.kind === 'message').length, 100);
  const receipts = (await again.readQueue(alice, 0, 1000)).filter((i) => i.kind === 'receipt');
  t.equal(receipts.length, 4, '350 acknowledged messages gave four delivered receipts of at most 100 ids');
  t.equal(receipts.reduce((n, r) => n + (r.kind === 'receipt' ? r.messageIds.length : 0), 0), 350);
});

t.test('kill -9 mid-burst: every send acknowledged as durable is in the queue after restart, in order', async (t) => {
  const child = fileURLToPath(new URL('./store-child.ts', import.meta.url));
  const dir = freshDir();
  for (let round = 0; round < 3; round++) {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dir, String(64 * 1024), String(256 * 1024), String(round)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffered = '';
    let acknowledged = -1;
    let ids: string[] = [];
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('ready')) ids = line.split(' ').slice(1);
        else acknowledged = Math.max(acknowledged, Number(line));
      }
    });
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    const target = 1500 + 700 * round;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (acknowledged >= target) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    proc.kill('SIGKILL');
    await exited;
    const store = await openLogStore(dir, { segmentBytes: 64 * 1024, checkpointEveryBytes: 256 * 1024 });
    const [, bobId] = ids;
    const queue = await store.readQueue({ userId: bobId!, deviceId: 1 }, 0, 1_000_000);
    const ofRound = queue.filter((i) => i.kind === 'message' && i.messageId.startsWith(`r${round}-`)).map((i) => (i.kind === 'message' ? Number(i.messageId.slice(i.messageId.indexOf('-m') + 2)) : -1));
    const expected = Array.from({ length: acknowledged + 1 }, (_, n) => n).filter((n) => n % 3 !== 0);
    const present = new Set(ofRound);
    t.ok(expected.every((n) => present.has(n)), `round ${round}: all ${expected.length} acknowledged, unacked-by-bob messages survived (queue has ${ofRound.length} of this round)`);
    t.same(ofRound, [...ofRound].sort((a, b) => a - b), `round ${round}: in send order`);
    const seqs = queue.map((i) => i.seq);
    t.same(seqs, [...new Set(seqs)].sort((a, b) => a - b), `round ${round}: seqs unique and ascending`);
    const alice = ids[0]!;
    const receipts = await store.readQueue({ userId: alice, deviceId: 1 }, 0, 1_000_000);
    t.ok(receipts.length > 0, `round ${round}: delivered receipts survived`);
    await store.close();
  }
});

t.test('operations issued without waiting are staged in call order, even across checkpoints', async (t) => {
  const store = await withStore(t, freshDir(), { checkpointEveryBytes: 4096 });
  const { alice, bob } = await twoUsers(store);
  const calls = Array.from({ length: 500 }, (_, i) =>
    store.enqueueMessage({ from: alice, messageId: `order-${String(i).padStart(5, '0')}`, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body(`m${i}`) }], serverTime: 10 }, DAY, 10_000),
  );
  const results = await Promise.all(calls);
  const seqs = results.map((r) => (r.status === 'accepted' ? r.seqs[0]!.seq : -1));
  t.same(seqs, Array.from({ length: 500 }, (_, i) => i + 1), 'the n-th call got the n-th seq');
  const duplicate = await store.findDuplicate(alice, 'order-00007', 20);
  t.same(duplicate, { serverTime: 10 }, 'findDuplicate reports an accepted send');
  t.equal(await store.findDuplicate(alice, 'order-99999', 20), undefined);
  t.equal(await store.findDuplicate(alice, 'order-00007', 10 + DAY), undefined, 'and forgets it after the window');
});
