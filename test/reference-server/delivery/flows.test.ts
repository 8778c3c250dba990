// The sequence diagrams of PROTOCOL.md 4.15 and the delivery rules of sections 4.2 to 4.13, over real sockets.
import t from 'tap';
import type { DeliverFrame, MessageItem, ReceiptItem } from '../../../spec/index.ts';
import { http, linkDevice, messageId, openSession, registerUser, rid, sendFrame, sleep, startTestServer, TestClient, body } from '../helpers.ts';

const items = (frame: DeliverFrame) => frame.items as Array<MessageItem | ReceiptItem>;

t.test('(a) online delivery with the full receipt chain', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const a = (await openSession(server, alice)).client;
  const b = (await openSession(server, bob)).client;
  await a.nextOf('queue_empty');
  await b.nextOf('queue_empty');

  const send = sendFrame(bob.userId, [bob.deviceId], { id: 'q1' });
  const ok = await a.request(send);
  t.match(ok, { type: 'send_ok', id: 'q1', messageId: send.messageId, duplicate: false }, '[MSG-12] send_ok');
  const deliver = await b.nextOf('deliver');
  const [item] = items(deliver);
  // [MSG-13] [AUT-9]
  t.match(item, { kind: 'message', messageId: send.messageId, from: { userId: alice.userId, deviceId: alice.deviceId }, envelope: { type: send.envelopes[0]!.type, body: send.envelopes[0]!.body } });
  t.equal((item as MessageItem).serverTime, (ok as { serverTime: number }).serverTime, '[MSG-13] serverTime of send_ok');
  t.notOk(item!.redelivered, '[DLV-10] no redelivered flag on a first delivery');
  b.send({ type: 'ack', upTo: item!.seq });

  const delivered = await a.nextOf('deliver');
  t.match(items(delivered)[0], { kind: 'receipt', status: 'delivered', from: { userId: bob.userId, deviceId: bob.deviceId }, messageIds: [send.messageId] }, '[RCP-1]');
  a.send({ type: 'ack', upTo: items(delivered)[0]!.seq });

  const receipt = await b.request({ type: 'receipt', id: 'q2', to: { userId: alice.userId, deviceId: alice.deviceId }, status: 'read', messageIds: [send.messageId, send.messageId] });
  t.match(receipt, { type: 'receipt_ok', id: 'q2' }, '[RCP-11]');
  const read = await a.nextOf('deliver');
  t.match(items(read)[0], { kind: 'receipt', status: 'read', from: { userId: bob.userId, deviceId: bob.deviceId }, messageIds: [send.messageId, send.messageId] }, '[RCP-11] messageIds as received');
  t.ok(items(read)[0]!.seq > items(delivered)[0]!.seq, '[DLV-2] one seq space per queue');
  await a.close();
  await b.close();
});

t.test('(b) offline delivery and drain on connect, with queue_empty and receipts for an offline sender', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0, maxDeliverBatch: 2 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const a = (await openSession(server, alice)).client;
  const sends = [1, 2, 3].map((i) => sendFrame(bob.userId, [bob.deviceId], { id: `q${i}` }));
  for (const send of sends) a.send(send);
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await a.nextOf('send_ok'));
  t.same(answers.map((f) => f.id), ['q1', 'q2', 'q3'], '[TRN-35] send_ok in receive order');
  await a.close();

  const { client: b, welcome } = await openSession(server, bob, { receiveMax: 64 });
  t.equal(welcome.limits.maxDeliverBatch, 2);
  const first = await b.nextOf('deliver');
  const second = await b.nextOf('deliver');
  const empty = await b.nextOf('queue_empty');
  const all = [...items(first), ...items(second)];
  t.equal(items(first).length, 2, '[DLV-6] at most maxDeliverBatch items');
  t.same(all.map((i) => (i as MessageItem).messageId), sends.map((s) => s.messageId), '[DLV-31] [DLV-7] seq order');
  t.equal(empty.lastSeq, all[2]!.seq, '[DLV-26] lastSeq of B');
  const order = b.received.map((f) => f.type);
  t.ok(order.lastIndexOf('deliver') < order.indexOf('queue_empty'), '[DLV-27] after every item of B');
  b.send({ type: 'ack', upTo: empty.lastSeq });
  // A request behind the ack on the same connection: its answer means the ack has been applied [TRN-34] (the items
  // left bob's queue); the delivered receipts it produces are enqueued once durable, within a second [RCP-3].
  await b.request({ type: 'unsubscribe_presence', id: 'barrier', userIds: [alice.userId] });
  await b.close();

  const again = await openSession(server, alice);
  const receipts = [];
  while (receipts.flatMap((r) => r.messageIds).length < 3) {
    const frame = await again.client.nextOf('deliver');
    receipts.push(...(items(frame) as ReceiptItem[]));
  }
  t.same(receipts.flatMap((r) => r.messageIds).sort(), sends.map((s) => s.messageId).sort(), 'delivered receipts reach the sender on reconnect');
  t.ok(receipts.every((r) => r.status === 'delivered' && r.from.userId === bob.userId));
  const marker = await again.client.nextOf('queue_empty');
  // [DLV-26] lastSeq is the last receipt when the receipts were already enqueued at alice's welcome, 0 when they were
  // enqueued just after it (both conform: RCP-3 gives the server up to a second).
  t.ok(marker.lastSeq === 0 || marker.lastSeq === receipts[receipts.length - 1]!.seq, `[DLV-26] lastSeq ${marker.lastSeq}`);
  await again.client.close();
});

t.test('(c) a lost acknowledgement: redelivery with backoff, then on a new session', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0, ackTimeoutMs: 1000, maxRedeliveryBackoffMs: 1500 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const a = (await openSession(server, alice)).client;
  const b = (await openSession(server, bob)).client;
  await b.nextOf('queue_empty');
  const send = sendFrame(bob.userId, [bob.deviceId]);
  await a.request(send);
  const first = await b.nextOf('deliver');
  const t0 = Date.now();
  const second = await b.nextOf('deliver', () => true, 3000);
  const t1 = Date.now();
  t.ok(t1 - t0 >= 950 && t1 - t0 <= 2100, `[DLV-21] [DLV-22] [DLV-23] first redelivery after ackTimeoutMs (${t1 - t0} ms)`);
  t.equal(items(second)[0]!.seq, items(first)[0]!.seq);
  t.equal(items(second)[0]!.redelivered, true, '[DLV-10]');
  await b.nextOf('deliver', () => true, 3000);
  const t2 = Date.now();
  t.ok(t2 - t1 >= 1400 && t2 - t1 <= 2600, `second redelivery after min(2 × ackTimeoutMs, max) = 1500 ms (${t2 - t1} ms)`);
  b.ws.terminate();
  await b.closed;

  const { client: b2 } = await openSession(server, bob);
  const replay = await b2.nextOf('deliver');
  t.match(items(replay)[0], { seq: items(first)[0]!.seq, messageId: send.messageId, redelivered: true }, '[DLV-24] [DLV-10] on the new session');
  t.equal((await b2.nextOf('queue_empty')).lastSeq, items(first)[0]!.seq);
  b2.send({ type: 'ack', seqs: [items(first)[0]!.seq] });
  t.match(items(await a.nextOf('deliver'))[0], { kind: 'receipt', messageIds: [send.messageId] });
  t.ok(await b2.quietFor(1300, (f) => f.type === 'deliver'), '[DLV-15] never delivered again after the ack');
  await a.close();
  await b2.close();
});

t.test('(d) prekeys_low at session start, then delivery of a prekey message', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 10 } });
  const bob = await registerUser(server, { prekeys: 10 });
  const alice = await registerUser(server, { prekeys: 20 });
  const bundle = await http(server, 'GET', `/v1/users/${bob.userId}/keys`, { auth: alice });
  t.equal(bundle.status, 200);
  const a = (await openSession(server, alice)).client;
  t.ok(await a.quietFor(200, (f) => f.type === 'prekeys_low'), 'no prekeys_low while above the low-water mark');
  const send = { type: 'send', id: 'q1', messageId: messageId(), to: bob.userId, envelopes: [{ deviceId: bob.deviceId, type: 'prekey', body: body() }] };
  t.match(await a.request(send), { type: 'send_ok' });
  const { client: b } = await openSession(server, bob);
  t.match(await b.nextOf('prekeys_low'), { remaining: 9, lowWater: 10 }, '[PKY-22]');
  t.match(items(await b.nextOf('deliver'))[0], { kind: 'message', envelope: { type: 'prekey' } });
  await b.nextOf('queue_empty');
  await http(server, 'GET', `/v1/users/${bob.userId}/keys`, { auth: alice });
  t.match(await b.nextOf('prekeys_low'), { remaining: 8, lowWater: 10 }, '[PKY-20] on a fetch while the session is open');
  await a.close();
  await b.close();
});

t.test('window, queue_empty and acknowledgement rules (sections 4.5, 4.6, 4.8)', async (t) => {
  // The default ackTimeoutMs (10 s): this case waits out several quiet periods and must not see redeliveries.
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const a = (await openSession(server, alice)).client;
  for (let i = 0; i < 5; i++) await a.request(sendFrame(bob.userId, [bob.deviceId]));

  const { client: b, welcome } = await openSession(server, bob, { receiveMax: 2 });
  t.equal(welcome.limits.window, 2);
  const first = await b.nextOf('deliver');
  t.equal(items(first).length, 2, '[DLV-8] at most window items in flight');
  t.ok(await b.quietFor(400, (f) => f.type === 'deliver' || f.type === 'queue_empty'), '[DLV-27] no queue_empty while B is not delivered');

  // [DLV-12] Acks are judged per session.
  const seqs = items(first).map((i) => i.seq);
  b.send({ type: 'ack', id: 'bad1', upTo: seqs[1]! + 1 });
  t.match(await b.nextOf('error', (f) => f.id === 'bad1'), { code: 'INVALID_ACK' });
  b.send({ type: 'ack', id: 'bad2', seqs: [seqs[0]!, seqs[1]! + 50] });
  t.match(await b.nextOf('error', (f) => f.id === 'bad2'), { code: 'INVALID_ACK' }, 'one bad seq fails the whole frame');
  b.send({ type: 'ack', id: 'bad3', seqs: Array.from({ length: welcome.limits.maxAckBatch + 1 }, () => seqs[0]!) });
  t.match(await b.nextOf('error', (f) => f.id === 'bad3'), { code: 'INVALID_FRAME' }, '[DLV-13] [DLV-40] INVALID_FRAME before INVALID_ACK');
  b.send({ type: 'ack', id: 'bad4' });
  t.match(await b.nextOf('error', (f) => f.id === 'bad4'), { code: 'INVALID_FRAME' }, 'ack without upTo or seqs');
  // The first two are still in flight: nothing was acknowledged by the failed frames.
  t.ok(await b.quietFor(300, (f) => f.type === 'deliver'), 'the window did not move');

  b.send({ type: 'ack', seqs: [seqs[0]!, seqs[0]!] });
  const next = await b.nextOf('deliver');
  t.equal(items(next).length, 1, 'one slot freed, one more item');
  b.send({ type: 'ack', id: 'noop', seqs: [seqs[0]!] });
  t.ok(await b.quietFor(200, (f) => f.type === 'error'), '[DLV-14] acknowledging again is a no-op');
  b.send({ type: 'ack', upTo: items(next)[0]!.seq });
  const rest = await b.nextOf('deliver');
  const marker = await b.nextOf('queue_empty');
  t.equal(marker.lastSeq, items(rest)[items(rest).length - 1]!.seq, 'queue_empty once the rest of B is delivered');

  // A session whose queue is empty gets queue_empty before any deliver [DLV-28].
  const carol = await registerUser(server);
  const { client: c } = await openSession(server, carol);
  await a.request(sendFrame(carol.userId, [carol.deviceId]));
  await c.nextOf('deliver');
  const order = c.received.map((f) => f.type);
  t.ok(order.indexOf('queue_empty') < order.indexOf('deliver'), '[DLV-28]');
  t.equal((c.received.find((f) => f.type === 'queue_empty') as { lastSeq: number }).lastSeq, 0);
  await Promise.all([a.close(), b.close(), c.close()]);
});

t.test('security: a device cannot acknowledge another device\'s items [AUT-8] [DLV-12]', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const mallory = await registerUser(server);
  const a = (await openSession(server, alice)).client;
  await a.request(sendFrame(bob.userId, [bob.deviceId]));
  await a.request(sendFrame(mallory.userId, [mallory.deviceId]));
  const { client: m } = await openSession(server, mallory);
  const mine = items(await m.nextOf('deliver'))[0]!;
  // Bob's item has the same seq in Bob's queue: acknowledging it on Mallory's session names Mallory's own queue.
  m.send({ type: 'ack', id: 'steal', seqs: [mine.seq + 1] });
  t.match(await m.nextOf('error', (f) => f.id === 'steal'), { code: 'INVALID_ACK' });
  m.send({ type: 'ack', id: 'steal2', upTo: mine.seq + 5 });
  t.match(await m.nextOf('error', (f) => f.id === 'steal2'), { code: 'INVALID_ACK' });
  const { client: b } = await openSession(server, bob);
  t.ok(items(await b.nextOf('deliver')).length === 1, 'Bob still gets his item');
  await Promise.all([a.close(), b.close(), m.close()]);
});

t.test('send checks (sections 4.2, 4.3)', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0, maxEnvelopeBytes: 16384, maxFrameBytes: 65536 } });
  const alice = await registerUser(server);
  const alice2 = await linkDevice(server, alice);
  const bob = await registerUser(server);
  const bob2 = await linkDevice(server, bob);
  const loner = await registerUser(server);
  const { client: a } = await openSession(server, alice);

  t.test('[MSG-6] STALE_DEVICES with missing and extra, ascending', async (t) => {
    const answer = await a.request(sendFrame(bob.userId, [bob.deviceId, 77]));
    t.match(answer, { type: 'error', code: 'STALE_DEVICES', details: { missing: [bob2.deviceId], extra: [77] } });
  });
  t.test('[MSG-7] a send to one\'s own user: D excludes the sender; with no other device every envelope is extra', async (t) => {
    t.match(await a.request(sendFrame(alice.userId, [alice2.deviceId])), { type: 'send_ok' });
    t.match(await a.request(sendFrame(alice.userId, [alice.deviceId, alice2.deviceId])), { code: 'STALE_DEVICES', details: { missing: [], extra: [alice.deviceId] } });
    const { client: l } = await openSession(server, loner);
    t.match(await l.request(sendFrame(loner.userId, [loner.deviceId, 5])), { code: 'STALE_DEVICES', details: { missing: [], extra: [loner.deviceId, 5] } });
    await l.close();
  });
  t.test('[MSG-5] UNKNOWN_USER', async (t) => {
    t.match(await a.request(sendFrame('no-such-user', [1])), { type: 'error', code: 'UNKNOWN_USER' });
  });
  t.test('[MSG-3] INVALID_FRAME for a repeated deviceId', async (t) => {
    t.match(await a.request(sendFrame(bob.userId, [bob.deviceId, bob.deviceId])), { code: 'INVALID_FRAME' });
  });
  t.test('[MSG-4] ENVELOPE_TOO_LARGE on the decoded size; [MSG-2] after deduplication', async (t) => {
    const exact = sendFrame(bob.userId, [bob.deviceId, bob2.deviceId], { bytes: 16384 });
    t.match(await a.request(exact), { type: 'send_ok', duplicate: false }, 'exactly maxEnvelopeBytes is fine');
    const over = sendFrame(bob.userId, [bob.deviceId, bob2.deviceId], { bytes: 16385 });
    t.match(await a.request(over), { code: 'ENVELOPE_TOO_LARGE' });
    const resend = { ...over, id: rid(), messageId: exact.messageId };
    t.match(await a.request(resend), { type: 'send_ok', duplicate: true }, 'a resend of an accepted message is a duplicate whatever its envelopes');
  });
  t.test('[MSG-14] [MSG-16] resend dedupe', async (t) => {
    const send = sendFrame(bob.userId, [bob.deviceId, bob2.deviceId]);
    const ok = await a.request(send);
    const again = await a.request({ ...send, id: rid(), to: 'whoever', envelopes: [{ deviceId: 9, type: 'ratchet', body: 'AAAA' }] });
    t.match(again, { type: 'send_ok', duplicate: true, messageId: send.messageId, serverTime: (ok as { serverTime: number }).serverTime });
    const refused = sendFrame(bob.userId, [bob.deviceId]);
    t.match(await a.request(refused), { code: 'STALE_DEVICES' });
    t.match(await a.request({ ...refused, id: rid(), envelopes: send.envelopes }), { type: 'send_ok', duplicate: false }, 'a refused send left no dedupe key');
    const { client: b } = await openSession(server, bob);
    const ids: string[] = [];
    for (;;) {
      const frame = await b.next((f) => f.type === 'deliver' || f.type === 'queue_empty');
      if (frame.type === 'queue_empty') break;
      ids.push(...items(frame as DeliverFrame).map((i) => (i as MessageItem).messageId));
    }
    t.equal(ids.filter((id) => id === send.messageId).length, 1, 'enqueued once');
    await b.close();
  });
  t.test('receipt checks [RCP-10]', async (t) => {
    t.match(await a.request({ type: 'receipt', id: rid(), to: { userId: 'ghost', deviceId: 1 }, status: 'read', messageIds: ['m-00000000'] }), { code: 'UNKNOWN_USER' });
    t.match(await a.request({ type: 'receipt', id: rid(), to: { userId: bob.userId, deviceId: 999 }, status: 'read', messageIds: ['m-00000000'] }), { code: 'UNKNOWN_DEVICE' });
    t.match(await a.request({ type: 'receipt', id: rid(), to: { userId: bob.userId, deviceId: 1 }, status: 'delivered', messageIds: ['m-00000000'] }), { code: 'INVALID_FRAME' });
    const many = Array.from({ length: 101 }, (_, i) => `m-${String(i).padStart(8, '0')}`);
    t.match(await a.request({ type: 'receipt', id: rid(), to: { userId: bob.userId, deviceId: bob.deviceId }, status: 'read', messageIds: many }), { code: 'INVALID_FRAME' });
  });
  t.teardown(() => a.close());
});

t.test('session replacement and device removal (sections 4.12, 2.5)', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const bob2 = await linkDevice(server, bob);
  const { client: watcher } = await openSession(server, alice);
  const { client: old } = await openSession(server, bob);
  await watcher.request({ type: 'subscribe_presence', id: 'w1', userIds: [bob.userId] });
  t.match(await watcher.nextOf('presence'), { userId: bob.userId, status: 'online' });
  await watcher.request(sendFrame(bob.userId, [bob.deviceId, bob2.deviceId]));
  const inFlight = items(await old.nextOf('deliver'))[0]!;

  const { client: fresh } = await openSession(server, bob);
  t.match(await old.nextOf('error'), { code: 'SESSION_REPLACED' }, '[DLV-34]');
  t.same(await old.closed, { code: 4409, reason: 'SESSION_REPLACED' });
  t.match(items(await fresh.nextOf('deliver'))[0], { seq: inFlight.seq, redelivered: true }, '[DLV-36]');
  t.ok(await watcher.quietFor(300, (f) => f.type === 'presence'), '[DLV-37] no presence change');

  const removed = await http(server, 'DELETE', `/v1/devices/${bob.deviceId}`, { auth: bob2 });
  t.equal(removed.status, 204);
  t.match(await fresh.nextOf('error'), { code: 'DEVICE_REMOVED' }, '[IDN-29]');
  t.same(await fresh.closed, { code: 4403, reason: 'DEVICE_REMOVED' });
  const again = await TestClient.connect(server);
  t.match(await again.request({ type: 'hello', id: 'h', userId: bob.userId, deviceId: bob.deviceId, secret: bob.secret }), { code: 'AUTH_FAILED' }, '[IDN-27]');
  t.match(await watcher.nextOf('presence'), { userId: bob.userId, status: 'offline' }, 'the last session closed');
  await watcher.close();
});

t.test('[KAL-14] a backlog of the largest envelopes drains to a client that keeps reading, without SLOW_CONSUMER', async (t) => {
  // 40 items of maxEnvelopeBytes (65,536 bytes, about 87 KB of base64 each) are 3.5 MB: far over the 1 MiB
  // slow-consumer threshold if the pump wrote a whole batch of them at once.
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const a = (await openSession(server, alice)).client;
  const count = 40;
  const sends = Array.from({ length: count }, (_, i) => sendFrame(bob.userId, [bob.deviceId], { id: `big${i}`, bytes: 65_536 }));
  for (const send of sends) t.equal((await a.request(send)).type, 'send_ok');
  const b = (await openSession(server, bob)).client;
  const seen: string[] = [];
  while (seen.length < count) {
    const deliver = await b.nextOf('deliver', () => true, 20_000);
    for (const item of items(deliver)) if (item.kind === 'message' && !item.redelivered) seen.push(item.messageId);
    b.send({ type: 'ack', upTo: items(deliver).at(-1)!.seq });
  }
  t.same(seen, sends.map((s) => s.messageId), 'every item, once, in order');
  await b.nextOf('queue_empty');
  const closed = await Promise.race([b.closed, sleep(200).then(() => undefined)]);
  t.equal(closed, undefined, 'the session is still open');
  await a.close();
  await b.close();
});
