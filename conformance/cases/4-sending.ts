// Sections 4.2 and 4.3 of PROTOCOL.md: send, its checks in order (INVALID_FRAME, ENVELOPE_TOO_LARGE, UNKNOWN_USER,
// STALE_DEVICES, QUEUE_FULL), the message item a recipient gets, and sender-side deduplication, also across a crash
// and between a send and its resend racing on two connections of one device.
import type { DeviceEnvelope, ServerFrame } from '../../spec/index.ts';
import type { ConformanceCase } from '../case.ts';
import { as, must } from '../expect.ts';
import { drain, envelopeOf, envelopesFor, send, sendOk, sendPipelined } from '../messaging.ts';

/** Queues of more than this many items make the queue-full case UNSUPPORTED rather than slow. */
const MAX_FILL = 5000;
/** Messages sent, and resent at once on a second connection, in the race of MSG-17. */
const RACE_MESSAGES = 8;

export const cases: ConformanceCase[] = [
  {
    id: '4.2/send-ok-and-online-push',
    requirements: ['MSG-12', 'MSG-13', 'DLV-9', 'DLV-2', 'AUT-9'],
    level: 'must',
    title: 'a send gets send_ok, and an online recipient gets the item at once with the sender address and identical envelope',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const b = await ctx.connect(bob.devices[0]!);
      await b.next('queue_empty', 'DLV-25');
      const a = await ctx.connect(alice.devices[0]!);
      const sent = await sendOk(ctx, a, alice.devices[0]!, bob);
      const [item] = await b.takeItems(1, 'DLV-9');
      const message = item!.kind === 'message' ? item! : must.fail('MSG-13', 'a message item', item);
      must.hold(message.seq >= 1, 'DLV-2', 'seq >= 1', message.seq);
      must.equal(
        { messageId: message.messageId, from: message.from, envelope: message.envelope, serverTime: message.serverTime },
        { messageId: sent.messageId, from: { userId: alice.userId, deviceId: alice.devices[0]!.deviceId }, envelope: envelopeOf(sent, bob.devices[0]!), serverTime: sent.ok.serverTime },
        'MSG-13',
        'the delivered item',
      );
      must.hold(message.redelivered !== true, 'DLV-10', 'no redelivered flag on a first delivery', message.redelivered);
    },
  },
  {
    id: '4.2/every-device-gets-its-envelope',
    requirements: ['MSG-10', 'MSG-13', 'DLV-1'],
    level: 'must',
    title: 'a send to a user with several devices enqueues exactly its own envelope in each device queue',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 3 });
      const a = await ctx.connect(alice.devices[0]!);
      const sent = await sendOk(ctx, a, alice.devices[0]!, bob);
      for (const device of bob.devices) {
        const session = await ctx.connect(device);
        const [item] = await session.takeItems(1, 'MSG-10');
        must.hold(item!.kind === 'message' && item!.messageId === sent.messageId, 'MSG-10', `message ${sent.messageId}`, item);
        must.equal(item!.kind === 'message' ? item!.envelope : undefined, envelopeOf(sent, device), 'MSG-13', `envelope for ${device.label}`);
        must.equal((await session.next('queue_empty', 'DLV-25')).lastSeq, item!.seq, 'DLV-26', `lastSeq of ${device.label}`);
      }
    },
  },
  {
    id: '4.2/unknown-user',
    requirements: ['MSG-5'],
    level: 'must',
    title: 'a send to a userId nobody has gets UNKNOWN_USER',
    async run(ctx) {
      const alice = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const sent = await send(ctx, a, alice.devices[0]!, `nobody-${ctx.material.rng.int(1, 1e9)}`, { deviceIds: [1] });
      must.errorFrame(sent.answer, 'UNKNOWN_USER', 'MSG-5', sent.id);
    },
  },
  {
    id: '4.2/stale-devices',
    requirements: ['MSG-6', 'ERR-5', 'MSG-10', 'MSG-16'],
    level: 'must',
    title: 'envelopes that do not match the device set get STALE_DEVICES {missing, extra} and enqueue nothing',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 2 });
      const [b1, b2] = bob.devices as [typeof bob.devices[0], typeof bob.devices[0]];
      const a = await ctx.connect(alice.devices[0]!);
      const unknown = Math.max(b1.deviceId, b2.deviceId) + 1000;
      const probes: Array<[number[], { missing: number[]; extra: number[] }]> = [
        [[b1.deviceId], { missing: [b2.deviceId], extra: [] }],
        [[b1.deviceId, b2.deviceId, unknown], { missing: [], extra: [unknown] }],
        [[unknown], { missing: [b1.deviceId, b2.deviceId].sort((x, y) => x - y), extra: [unknown] }],
      ];
      const messageId = ctx.material.messageId();
      for (const [deviceIds, details] of probes) {
        const sent = await send(ctx, a, alice.devices[0]!, bob, { deviceIds, messageId });
        const error = as(sent.answer, 'error', 'MSG-6', `envelopes for [${deviceIds.join(', ')}]`);
        must.errorFrame(error, 'STALE_DEVICES', 'MSG-6', sent.id);
        must.equal(error.details, details, 'MSG-6', `details for envelopes [${deviceIds.join(', ')}]`);
      }
      // The refused sends left no trace: the same messageId now goes through as new (MSG-16), once.
      const ok = await sendOk(ctx, a, alice.devices[0]!, bob, { messageId });
      const b = await ctx.connect(b1);
      const empty = await b.next('queue_empty', 'DLV-25');
      const messages = b.items.filter((r) => r.frame.kind === 'message').map((r) => r.frame);
      must.equal(messages.length, 1, 'MSG-10', 'items in the queue after three refused sends and one accepted');
      must.equal(empty.lastSeq, messages[0]!.seq, 'DLV-26', 'lastSeq');
      must.equal(ok.ok.duplicate, false, 'MSG-16');
    },
  },
  {
    id: '4.2/send-to-self',
    requirements: ['MSG-6', 'MSG-7', 'RCP-6'],
    level: 'must',
    title: "a send to one's own user addresses the other devices; with no other device it gets STALE_DEVICES",
    async run(ctx) {
      const solo = await ctx.user();
      const s = await ctx.connect(solo.devices[0]!);
      const alone = await send(ctx, s, solo.devices[0]!, solo, { deviceIds: [solo.devices[0]!.deviceId] });
      const error = as(alone.answer, 'error', 'MSG-7');
      must.errorFrame(error, 'STALE_DEVICES', 'MSG-7', alone.id);
      must.equal(error.details, { missing: [], extra: [solo.devices[0]!.deviceId] }, 'MSG-7', 'details');

      const pair = await ctx.user({ devices: 2 });
      const [d1, d2] = pair.devices as [typeof pair.devices[0], typeof pair.devices[0]];
      const one = await ctx.connect(d1);
      const sent = await sendOk(ctx, one, d1, pair);
      const two = await ctx.connect(d2);
      const [item] = await two.takeItems(1, 'MSG-10');
      must.hold(item!.kind === 'message' && item!.messageId === sent.messageId, 'MSG-6', `message ${sent.messageId} on the sibling`, item);
      two.ack({ upTo: item!.seq });
      const receipt = await one.item('RCP-6', (i) => i.kind === 'receipt' && i.status === 'delivered' && i.messageIds.includes(sent.messageId), 'a delivered receipt');
      must.equal(receipt.from, { userId: pair.userId, deviceId: d2.deviceId }, 'RCP-6', 'receipt from the sibling');
    },
  },
  {
    id: '4.2/invalid-envelopes',
    requirements: ['MSG-3', 'MSG-2'],
    level: 'must',
    title: 'envelopes repeating a deviceId or with an empty body get INVALID_FRAME',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const d = bob.devices[0]!.deviceId;
      const frames = [
        { deviceIds: [d, d], body: ctx.material.body() },
        { deviceIds: [d], body: '' },
      ];
      for (const [i, f] of frames.entries()) {
        const id = `inv${i}`;
        a.sendRaw({ type: 'send', id, messageId: ctx.material.messageId(), to: bob.userId, envelopes: f.deviceIds.map((deviceId) => ({ deviceId, type: 'ratchet', body: f.body })) });
        must.errorFrame(await a.next('error', 'MSG-3', (e) => e.id === id), 'INVALID_FRAME', 'MSG-3', id);
      }
      // Step (1) comes before step (4): an invalid send to an unknown user is still INVALID_FRAME.
      a.sendRaw({ type: 'send', id: 'inv-unknown', messageId: ctx.material.messageId(), to: 'no-such-user-anywhere', envelopes: [{ deviceId: 1, type: 'ratchet', body: 'AA==' }, { deviceId: 1, type: 'ratchet', body: 'AA==' }] });
      must.errorFrame(await a.next('error', 'MSG-2', (e) => e.id === 'inv-unknown'), 'INVALID_FRAME', 'MSG-2', 'inv-unknown');
    },
  },
  {
    id: '4.2/envelope-too-large',
    requirements: ['MSG-4', 'MSG-2'],
    level: 'must',
    title: 'an envelope body over maxEnvelopeBytes gets ENVELOPE_TOO_LARGE, before the recipient checks',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const { maxEnvelopeBytes } = a.limits;
      const big = await send(ctx, a, alice.devices[0]!, bob, { bytes: maxEnvelopeBytes + 1 });
      must.errorFrame(big.answer, 'ENVELOPE_TOO_LARGE', 'MSG-4', big.id);
      const unknown = await send(ctx, a, alice.devices[0]!, 'nobody-at-all-here', { bytes: maxEnvelopeBytes + 1, deviceIds: [1] });
      must.errorFrame(unknown.answer, 'ENVELOPE_TOO_LARGE', 'MSG-2', unknown.id, 'size is checked before the recipient');
      await sendOk(ctx, a, alice.devices[0]!, bob, { bytes: maxEnvelopeBytes });
    },
  },
  {
    id: '4.3/duplicate-send',
    requirements: ['MSG-14', 'MSG-10'],
    level: 'must',
    title: 'a resend with the same messageId gets send_ok duplicate:true with the original serverTime and enqueues nothing',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 2 });
      const carol = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const first = await sendOk(ctx, a, alice.devices[0]!, bob);
      const again = await send(ctx, a, alice.devices[0]!, bob, { messageId: first.messageId });
      const dup = as(again.answer, 'send_ok', 'MSG-14');
      must.equal({ duplicate: dup.duplicate, serverTime: dup.serverTime, messageId: dup.messageId }, { duplicate: true, serverTime: first.ok.serverTime, messageId: first.messageId }, 'MSG-14', 'resend');
      // Whatever the resend addresses: a different user, or a device set that would be stale.
      const elsewhere = await send(ctx, a, alice.devices[0]!, carol, { messageId: first.messageId });
      must.equal(as(elsewhere.answer, 'send_ok', 'MSG-14').duplicate, true, 'MSG-14', 'resend to another user');
      const stale = await send(ctx, a, alice.devices[0]!, bob, { messageId: first.messageId, deviceIds: [bob.devices[0]!.deviceId] });
      must.equal(as(stale.answer, 'send_ok', 'MSG-14').duplicate, true, 'MSG-14', 'resend with a stale device set');
      const last = await sendOk(ctx, a, alice.devices[0]!, bob);
      const b = await ctx.connect(bob.devices[0]!);
      const items = await b.takeItems(2, 'DLV-9');
      must.equal(items.map((i) => (i.kind === 'message' ? i.messageId : i.kind)), [first.messageId, last.messageId], 'MSG-14', 'messages in the queue');
      const c = await ctx.connect(carol.devices[0]!);
      must.equal((await c.next('queue_empty', 'DLV-25')).lastSeq, 0, 'MSG-14', "carol's queue stays empty");
    },
  },
  {
    id: '4.2/queue-full',
    requirements: ['MSG-9', 'ERR-5', 'MSG-2', 'MSG-10'],
    level: 'must',
    title: 'a send to devices whose queues hold maxQueueItems items gets QUEUE_FULL listing them in ascending order, and enqueues nothing',
    budgetMs: (limits) => 15_000 + 10 * limits.maxQueueItems,
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 3 });
      const [b1, b2, b3] = bob.devices as [typeof bob.devices[0], typeof bob.devices[0], typeof bob.devices[0]];
      const a1 = alice.devices[0]!;
      const s1 = await ctx.connect(b1);
      const { maxQueueItems } = s1.limits;
      if (maxQueueItems > MAX_FILL) ctx.unsupported(`filling a queue of maxQueueItems (${maxQueueItems}) takes more than ${MAX_FILL} sends`);
      await s1.next('queue_empty', 'DLV-25');
      // A send to one's own user addresses the other devices only (MSG-6): these fill the queues of b2 and b3, not b1's.
      // Below maxQueueItems a queue takes every send.
      const fill = await sendPipelined(ctx, s1, b1, bob, maxQueueItems, { bytes: 1, requirementId: 'MSG-9' });
      const a = await ctx.connect(a1);
      const fullIds = [b2.deviceId, b3.deviceId].sort((x, y) => x - y);
      // Envelopes in descending deviceId order, so that details listed in frame order are caught.
      const descending = bob.devices.map((d) => d.deviceId).sort((x, y) => y - x);
      const refused = await send(ctx, a, a1, bob, { deviceIds: descending });
      const error = as(refused.answer, 'error', 'MSG-9', `a send to ${bob.label} with two full queues`);
      must.errorFrame(error, 'QUEUE_FULL', 'MSG-9', refused.id);
      must.equal(error.details, { deviceIds: fullIds }, 'MSG-9', 'details of QUEUE_FULL');
      // MSG-2: deduplication (2) and the device set (5) are checked before the queue capacity (6).
      const resent = await send(ctx, s1, b1, bob, { messageId: fill[0]! });
      must.equal(as(resent.answer, 'send_ok', 'MSG-2', 'a resend of an accepted message to full queues').duplicate, true, 'MSG-2', 'duplicate flag of the resend');
      const stale = await send(ctx, a, a1, bob, { deviceIds: fullIds });
      must.errorFrame(stale.answer, 'STALE_DEVICES', 'MSG-2', stale.id, 'a stale send to full queues');
      // Below the limit again (one item acknowledged on each), the queues take the next send.
      for (const device of [b2, b3]) {
        const session = await ctx.connect(device);
        const [item] = await session.takeItems(1, 'DLV-9');
        session.ack({ seqs: [item!.seq] });
        await session.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      }
      const accepted = await sendOk(ctx, a, a1, bob);
      // The refused sends left nothing in b1's queue (MSG-10): the accepted one is the only item it gets.
      await s1.item('DLV-9', (i) => i.kind === 'message' && i.messageId === accepted.messageId, `message ${accepted.messageId}`);
      await s1.quiet(200);
      const messages = s1.items.flatMap((r) => (r.frame.kind === 'message' ? [r.frame.messageId] : []));
      must.equal(messages, [accepted.messageId], 'MSG-10', `messages delivered to ${b1.label} (it also gets delivered receipts for its own sends)`);
    },
  },
  {
    id: '4.3/dedupe-survives-crash',
    requirements: ['MSG-15', 'MSG-14', 'DLV-39'],
    level: 'must',
    needs: ['restart'],
    title: 'the deduplication key of an accepted send survives a crash: the resend afterwards is a duplicate with the original serverTime',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a1 = alice.devices[0]!;
      const a = await ctx.connect(a1);
      const first = await sendOk(ctx, a, a1, bob);
      await ctx.restartServer('crash');
      // Seconds later, well within dedupeWindowSec (at least 86400 s), the key must still be known.
      const again = await ctx.connect(a1);
      const resend = await send(ctx, again, a1, bob, { messageId: first.messageId });
      const dup = as(resend.answer, 'send_ok', 'MSG-15', `the resend of ${first.messageId} after the crash`);
      must.equal({ duplicate: dup.duplicate, serverTime: dup.serverTime }, { duplicate: true, serverTime: first.ok.serverTime }, 'MSG-15', 'the resend after the crash');
      const b = await ctx.connect(bob.devices[0]!);
      const items = await drain(b, 'DLV-39');
      must.equal(items.map((i) => (i.kind === 'message' ? i.messageId : i.kind)), [first.messageId], 'MSG-14', `items of ${bob.label} after the crash`);
    },
  },
  {
    id: '4.3/concurrent-resend-waits-for-durability',
    requirements: ['MSG-17', 'MSG-14', 'DLV-39'],
    level: 'must',
    needs: ['restart'],
    title: 'sends and their resends racing on two connections of one device: after a crash right after the answers, each acknowledged message is delivered exactly once',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a1 = alice.devices[0]!;
      const first = await ctx.connect(a1);
      const second = await ctx.open({ label: a1.label });
      const messages = Array.from({ length: RACE_MESSAGES }, () => ({ messageId: ctx.material.messageId(), envelopes: envelopesFor(ctx, bob, a1) as [DeviceEnvelope, ...DeviceEnvelope[]] }));
      // The originals on the first connection; at once, on the second, hello (which replaces the first session, DLV-34;
      // requests already processed keep their effects, DLV-35) and the resends, in reverse order. The connection that
      // closes leaves its answers unknown, so its requests resolve to undefined.
      const originals = messages.map(({ messageId, envelopes }, i) =>
        first.conn.request({ type: 'send', id: `original-${i}`, messageId, to: bob.userId, envelopes }, ctx.remaining()).catch(() => undefined),
      );
      const hello = second.hello(a1);
      const resends = [...messages].reverse().map(({ messageId, envelopes }, i) => second.request({ type: 'send', id: `resend-${i}`, messageId, to: bob.userId, envelopes }, 'MSG-17'));
      must.frameType(await hello, 'welcome', 'AUT-13', `hello of ${a1.label} on the second connection`);
      const answers = await Promise.all(resends);
      // Crash at once: a duplicate answered before its original was durable would now be lost.
      await ctx.restartServer('crash');
      const okOf = (answer: ServerFrame | undefined) => (answer?.type === 'send_ok' ? answer : undefined);
      const originalAnswers = await Promise.all(originals);
      const acknowledged = new Set<string>();
      for (const [i, answer] of answers.entries()) {
        const ok = as(answer, 'send_ok', 'MSG-14', `the resend resend-${i}`);
        acknowledged.add(ok.messageId);
        const original = okOf(originalAnswers[RACE_MESSAGES - 1 - i]);
        if (original && ok.duplicate) must.equal(ok.serverTime, original.serverTime, 'MSG-14', `serverTime of the duplicate ${ok.messageId}`);
      }
      const b = await ctx.connect(bob.devices[0]!);
      const items = await drain(b, 'DLV-39');
      for (const { messageId } of messages) {
        const copies = items.filter((i) => i.kind === 'message' && i.messageId === messageId).map((i) => i.seq);
        must.hold(copies.length > 0, 'MSG-17', `message ${messageId} (answered send_ok before the crash) in ${bob.label}'s queue`, 'absent after the crash');
        must.hold(copies.length === 1, 'MSG-14', `message ${messageId} enqueued once`, `seqs ${copies.join(', ')}`);
      }
      must.equal(acknowledged.size, RACE_MESSAGES, 'MSG-14', 'distinct messageIds answered');
    },
  },
];
