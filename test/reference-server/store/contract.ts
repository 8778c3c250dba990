// The Store contract (reference-server/store/store.ts) as checks any implementation must pass: the embedded log
// (store/log/log-store.test.ts) and Redis (store/redis/redis-store.test.ts) run the same ones. A harness gives each
// check a fresh, empty backing (a data directory, a flushed Redis) on which stores can be opened, closed and opened
// again, which is how a check sees what survives a restart.
import type { Test } from 'tap';
import type { NewDevice, Store, StoreEvent } from '../../../reference-server/store/store.ts';

export interface StoreBacking {
  /** Opens a store over this backing's data; the harness closes it at the end of the test. */
  open(): Promise<Store>;
}

export interface StoreHarness {
  /** A fresh, empty backing for one test, disposed of with it. */
  fresh(t: Test): Promise<StoreBacking>;
}

export const KEY = 'BQ' + 'A'.repeat(42);
export const SIG = 'A'.repeat(86) + '==';
export const DAY = 86_400_000;
export const device = (name: string, preKeyIds: number[] = []): NewDevice => ({
  name,
  secretHash: 'f'.repeat(64),
  registrationId: 7,
  identityKey: KEY,
  signedPreKey: { keyId: 1, publicKey: KEY, signature: SIG },
  oneTimePreKeys: preKeyIds.map((keyId) => ({ keyId, publicKey: KEY })),
});
export const body = (text: string) => Buffer.from(text).toString('base64');

export async function twoUsers(store: Store) {
  const alice = (await store.createAccount('alice', device('alice phone', [1, 2, 3]), 1000))!;
  const bob = (await store.createAccount('bob', device('bob phone', [10, 11]), 1000))!;
  return { alice: { userId: alice.userId, deviceId: alice.deviceId }, bob: { userId: bob.userId, deviceId: bob.deviceId } };
}

/** Registers every check of the contract as a subtest of `t`. */
export function storeContract(t: Test, harness: StoreHarness): void {
  t.test('accounts: usernames are unique, even when registered concurrently; ids are random', async (t) => {
    const store = await (await harness.fresh(t)).open();
    const results = await Promise.all(Array.from({ length: 10 }, () => store.createAccount('carol', device('c'), 1)));
    t.equal(results.filter((r) => r !== undefined).length, 1, 'exactly one registration of a name wins');
    const other = await store.createAccount('dave', device('d'), 1);
    t.not(other!.userId, results.find((r) => r)!.userId);
    t.match(other!.userId, /^[A-Za-z0-9_-]{22}$/);
    t.equal(other!.deviceId, 1);
    const found = await store.findUserByUsername('dave');
    t.same(found!.deviceIds, [1]);
    t.equal(await store.findUserByUsername('nobody'), undefined);
    t.equal(await store.getAccount('nobody'), undefined);
    t.equal(await store.getDevice({ userId: other!.userId, deviceId: 2 }), undefined);
  });

  t.test('linking, device ids never reused, removal discards the queue and invalidates codes', async (t) => {
    const backing = await harness.fresh(t);
    const store = await backing.open();
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
    t.equal(await store.linkDevice('never-issued', device('x'), 6000, 16), 'invalid-code', 'an unknown code is refused');

    const sent = await store.enqueueMessage({ from: bob, messageId: 'msg-0001', to: alice.userId, envelopes: [1, 2, 3].map((deviceId) => ({ deviceId, type: 'ratchet' as const, body: body('hi') })), serverTime: 7000 }, DAY, 100);
    t.equal(sent.status, 'accepted');
    const events: StoreEvent[] = [];
    store.subscribe((e) => events.push(e));
    await store.createLinkCode(alice.userId, 'hash-4', 9000, 3);
    t.equal(await store.removeDevice({ userId: alice.userId, deviceId: 3 }), 'removed');
    t.same(events, [{ type: 'device-removed', device: { userId: alice.userId, deviceId: 3 } }]);
    t.equal(await store.linkDevice('hash-4', device('x'), 6000, 16), 'invalid-code', "deleting the code's device invalidates it");
    t.same(await store.readQueue({ userId: alice.userId, deviceId: 3 }, 0, 10), [], 'the queue went with the device');
    t.equal(await store.countOneTimePreKeys({ userId: alice.userId, deviceId: 3 }), 0, 'so did its prekeys');
    t.equal(await store.removeDevice({ userId: alice.userId, deviceId: 3 }), 'unknown-device');
    t.equal(await store.removeDevice({ userId: bob.userId, deviceId: 1 }), 'last-device');
    await store.close();

    const again = await backing.open();
    t.same((await again.getAccount(alice.userId))!.deviceIds, [1, 2]);
    await again.createLinkCode(alice.userId, 'hash-5', 99_000, 1);
    t.same(await again.linkDevice('hash-5', device('new'), 7000, 16), { userId: alice.userId, deviceId: 4 }, 'device id 3 is not reused after a restart');
  });

  t.test('one-time prekeys: each handed out once, under concurrency and across restarts', async (t) => {
    const backing = await harness.fresh(t);
    const store = await backing.open();
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
    await t.rejects(store.setSignedPreKey({ userId: owner.userId, deviceId: 9 }, { keyId: 2, publicKey: KEY, signature: SIG }), RangeError, 'an unknown device has no signed prekey to rotate');
    await t.rejects(store.addOneTimePreKeys({ userId: owner.userId, deviceId: 9 }, [{ keyId: 1, publicKey: KEY }], 100), RangeError);
    await store.close();

    const again = await backing.open();
    t.equal(await again.countOneTimePreKeys(owner), 1, 'only the untaken key is left after a restart');
    const after = await again.takeBundles(owner.userId);
    t.equal(Array.isArray(after) && after[0]!.oneTimePreKey?.keyId, 8);
    t.equal(Array.isArray(after) && after[0]!.device.signedPreKey.keyId, 2, 'the rotated signed prekey survived');
  });

  t.test('one-time prekeys: 200 concurrent fetches of 100 keys hand out each key at most once', async (t) => {
    const store = await (await harness.fresh(t)).open();
    const ids = Array.from({ length: 100 }, (_, i) => 1000 + i);
    const owner = (await store.createAccount('owner', device('o', ids), 1))!;
    await store.createLinkCode(owner.userId, 'code', 10_000, 1, 1);
    const second = await store.linkDevice('code', device('tablet', ids.slice(0, 50)), 2, 16);
    t.same(second, { userId: owner.userId, deviceId: 2 });
    const bundles = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? store.takeBundles(owner.userId) : store.takeBundles(owner.userId, 1))));
    const handed = new Map<number, number[]>([[1, []], [2, []]]);
    for (const bundle of bundles) {
      if (!Array.isArray(bundle)) continue;
      for (const entry of bundle) if (entry.oneTimePreKey) handed.get(entry.device.deviceId)!.push(entry.oneTimePreKey.keyId);
    }
    t.equal(handed.get(1)!.length, 100, 'all 100 keys of device 1 went out');
    t.equal(new Set(handed.get(1)).size, 100, 'each of them once');
    t.equal(handed.get(2)!.length, 50, 'all 50 keys of device 2 went out (the same keyIds, another device)');
    t.equal(new Set(handed.get(2)).size, 50, 'each of them once');
    t.equal(await store.countOneTimePreKeys(owner), 0);
  });

  t.test('messages: device-set checks, dedupe, queue limits, ack with receipts, restart', async (t) => {
    const backing = await harness.fresh(t);
    const store = await backing.open();
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
    t.same(await store.enqueueReceipt({ userId: 'nobody', deviceId: 1 }, { kind: 'receipt', status: 'read', from: alice, messageIds: ['x1234567'], at: 1 }, 3), { status: 'unknown-user' });
    await store.close();

    const again = await backing.open();
    t.same((await again.readQueue(bob, 0, 10)).map((i) => i.seq), [3, 4], 'the queue survives the restart');
    t.match(await again.readQueue(alice, 0, 10), [{ kind: 'receipt', messageIds: ['m-0000001', 'm-0000002'] }], 'so does the receipt');
    t.equal((await again.enqueueMessage({ from: alice, messageId: 'm-0000002', to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('x') }], serverTime: 9000 }, DAY, 10)).status, 'duplicate', 'dedupe keys survive');
    const next = await again.enqueueMessage({ from: alice, messageId: 'm-0000009', to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('x') }], serverTime: 9000 }, DAY, 10);
    t.match(next, { status: 'accepted', seqs: [{ seq: 5 }] }, 'seqs continue above the highest ever assigned');
    t.equal(await again.expire(9000), 3, 'expiry removes the items enqueued before the cut');
    t.same((await again.readQueue(bob, 0, 10)).map((i) => i.seq), [5]);
  });

  t.test('device sets: missing and extra devices, sends to oneself, seqs per device', async (t) => {
    const store = await (await harness.fresh(t)).open();
    const { alice, bob } = await twoUsers(store);
    await store.createLinkCode(alice.userId, 'code', 10_000, 1, 1);
    await store.linkDevice('code', device('tablet'), 2, 16);
    const send = (messageId: string, deviceIds: number[], to: string, from = bob) =>
      store.enqueueMessage({ from, messageId, to, envelopes: deviceIds.map((deviceId) => ({ deviceId, type: 'ratchet' as const, body: body(messageId) })), serverTime: 10 }, DAY, 100);
    t.same(await send('s-0000001', [1], alice.userId), { status: 'stale-devices', missing: [2], extra: [] }, '[MSG-6] a missing device');
    t.same(await send('s-0000002', [2, 1, 7], alice.userId), { status: 'stale-devices', missing: [], extra: [7] }, '[MSG-7] an extra device');
    t.same(await send('s-0000003', [7], alice.userId), { status: 'stale-devices', missing: [1, 2], extra: [7] }, 'both');
    t.same(await send('s-0000004', [1, 1], alice.userId), { status: 'stale-devices', missing: [2], extra: [] }, 'a repeated device is not a device set');
    t.same(await send('s-0000005', [2], alice.userId, alice), { status: 'accepted', serverTime: 10, seqs: [{ deviceId: 2, seq: 1 }] }, "to one's own other devices");
    t.same(await send('s-0000006', [1, 2], alice.userId, alice), { status: 'stale-devices', missing: [], extra: [1] }, "never to the sender's own device");
    t.equal((await send('s-0000003', [1, 2], alice.userId)).status, 'accepted', 'a refused send does not count as sent');
    const a = await send('s-0000007', [2, 1], alice.userId);
    t.same(a, { status: 'accepted', serverTime: 10, seqs: [{ deviceId: 2, seq: 3 }, { deviceId: 1, seq: 2 }] }, 'one item per envelope, each at the next seq of its device');
    t.same((await store.readQueue({ userId: alice.userId, deviceId: 2 }, 1, 10)).map((i) => i.seq), [2, 3], 'reading after a seq');
    t.same((await store.readQueue({ userId: alice.userId, deviceId: 2 }, 0, 1)).map((i) => i.seq), [1], 'at most limit items');
  });

  t.test('deduplication: resends to another recipient, findDuplicate, the window', async (t) => {
    const store = await (await harness.fresh(t)).open();
    const { alice, bob } = await twoUsers(store);
    const carol = (await store.createAccount('carol', device('c'), 1))!;
    const to = (messageId: string, userId: string, serverTime: number) =>
      store.enqueueMessage({ from: alice, messageId, to: userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body(messageId) }], serverTime }, 1000, 100);
    t.equal((await to('d-0000001', bob.userId, 100)).status, 'accepted');
    t.same(await to('d-0000001', carol.userId, 200), { status: 'duplicate', serverTime: 100 }, '[MSG-14] whatever the recipient of the resend');
    t.same(await store.findDuplicate(alice, 'd-0000001', 500), { serverTime: 100 });
    t.equal(await store.findDuplicate(bob, 'd-0000001', 500), undefined, 'the key is per sender device');
    t.equal(await store.findDuplicate(alice, 'd-0000002', 500), undefined);
    t.equal(await store.findDuplicate(alice, 'd-0000001', 1100), undefined, 'forgotten after the window');
    t.same(await to('d-0000001', carol.userId, 1200), { status: 'accepted', serverTime: 1200, seqs: [{ deviceId: 1, seq: 1 }] }, 'after the window it is a new send');
    t.equal((await to('d-0000003', 'nobody', 100)).status, 'unknown-user');
    t.equal((await to('d-0000003', carol.userId, 100)).status, 'accepted', 'a refused send leaves no deduplication record');
    t.equal((await store.readQueue(bob, 0, 10)).length, 1);
  });

  t.test('receipts: at most maxReceiptIds ids per item, one group per sender device, none for a removed sender', async (t) => {
    const store = await (await harness.fresh(t)).open();
    const { alice, bob } = await twoUsers(store);
    await store.createLinkCode(alice.userId, 'code', 10_000, 1, 1);
    const tablet = (await store.linkDevice('code', device('tablet'), 2, 16)) as { userId: string; deviceId: number };
    await store.createLinkCode(alice.userId, 'code2', 10_000, 1, 1);
    const laptop = (await store.linkDevice('code2', device('laptop'), 2, 16)) as { userId: string; deviceId: number };
    const from = [alice, tablet, laptop];
    for (let i = 0; i < 260; i++) {
      const sender = from[i < 250 ? 0 : i < 255 ? 1 : 2]!;
      const result = await store.enqueueMessage({ from: sender, messageId: `r-${String(i).padStart(7, '0')}`, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('x') }], serverTime: 10 }, DAY, 1000);
      if (result.status !== 'accepted') t.fail(`send ${i}: ${result.status}`);
    }
    t.equal(await store.removeDevice(laptop), 'removed');
    const items = await store.readQueue(bob, 0, 1000);
    const events: StoreEvent[] = [];
    store.subscribe((e) => events.push(e));
    const acked = await store.acknowledge(bob, items.map((i) => i.seq), 20, 100);
    t.equal(acked.removed.length, 260);
    t.same(acked.receipts.map((r) => [r.to.deviceId, r.item.messageIds.length]), [[1, 100], [1, 100], [1, 50], [tablet.deviceId, 5]], '[RCP-2] batches of at most 100 ids; [RCP-8] none for the removed laptop');
    t.same(acked.receipts.flatMap((r) => (r.to.deviceId === 1 ? r.item.messageIds : [])), Array.from({ length: 250 }, (_, i) => `r-${String(i).padStart(7, '0')}`), 'in acknowledgement order');
    t.same(acked.receipts.map((r) => r.item.seq), [1, 2, 3, 1], 'each receipt item has its own seq');
    const aliceQueue = await store.readQueue(alice, 0, 10);
    t.equal(aliceQueue.length, 3, 'the receipts are in the sender queue');
    const lastSeqs = new Map<number, number>();
    for (const e of events) if (e.type === 'enqueued' && e.device.userId === alice.userId) lastSeqs.set(e.device.deviceId, Math.max(lastSeqs.get(e.device.deviceId) ?? 0, e.lastSeq));
    t.same([...lastSeqs].sort(), [[1, 3], [tablet.deviceId, 1]], 'enqueued events name each sender device up to its last seq');
    t.equal(await store.lastSeq(bob), 0, 'the queue is empty');
  });

  t.test('receipt limits: read receipts respect maxQueueItems, delivered receipts do not', async (t) => {
    const store = await (await harness.fresh(t)).open();
    const { alice, bob } = await twoUsers(store);
    for (let i = 0; i < 2; i++) {
      await store.enqueueMessage({ from: bob, messageId: `f-${i}-000000`, to: alice.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('x') }], serverTime: 10 }, DAY, 2);
    }
    t.same(await store.enqueueReceipt(alice, { kind: 'receipt', status: 'read', from: bob, messageIds: ['x1234567'], at: 1 }, 2), { status: 'queue-full' }, "alice's queue is full");
    await store.enqueueMessage({ from: alice, messageId: 'to-bob-01', to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('x') }], serverTime: 10 }, DAY, 2);
    const acked = await store.acknowledge(bob, [1], 20);
    t.equal(acked.receipts.length, 1, '[RCP-9] a delivered receipt goes into a full queue');
    t.equal((await store.readQueue(alice, 0, 10)).length, 3);
  });

  t.test('an acknowledgement frees queue room at once, for operations issued after it', async (t) => {
    const store = await (await harness.fresh(t)).open();
    const { alice, bob } = await twoUsers(store);
    const carol = (await store.createAccount('carol', device('c'), 1))!;
    for (let i = 0; i < 3; i++) {
      await store.enqueueMessage({ from: alice, messageId: `full-${i}-00000`, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('x') }], serverTime: 10 }, DAY, 3);
    }
    // [DLV-15] Items leave the queue at once (store.ts): a send issued right after the ack, from another device,
    // finds the room (with the log store and with Redis alike, before the ack's promise settles).
    const ack = store.acknowledge(bob, [1], 20);
    const send = store.enqueueMessage({ from: carol, messageId: 'room-00001', to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('y') }], serverTime: 20 }, DAY, 3);
    t.match(await send, { status: 'accepted', seqs: [{ seq: 4 }] });
    t.same((await ack).removed, [1]);
  });

  t.test('operations issued without waiting take effect in call order', async (t) => {
    const store = await (await harness.fresh(t)).open();
    const { alice, bob } = await twoUsers(store);
    const calls = Array.from({ length: 300 }, (_, i) =>
      store.enqueueMessage({ from: alice, messageId: `order-${String(i).padStart(5, '0')}`, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body(`m${i}`) }], serverTime: 10 }, DAY, 10_000),
    );
    const results = await Promise.all(calls);
    t.same(results.map((r) => (r.status === 'accepted' ? r.seqs[0]!.seq : -1)), Array.from({ length: 300 }, (_, i) => i + 1), 'the n-th call got the n-th seq');
    // [TRN-34] An acknowledgement followed by a send: the receipt is in the sender's queue before the reply.
    const ack = store.acknowledge(bob, [1], 20);
    const reply = store.enqueueMessage({ from: bob, messageId: 'reply-0001', to: alice.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('re') }], serverTime: 20 }, DAY, 10_000);
    await Promise.all([ack, reply]);
    t.same((await store.readQueue(alice, 0, 10)).map((i) => i.kind), ['receipt', 'message'], 'in call order');
  });
}
