// Section 4.13 of PROTOCOL.md: delivered receipts generated on ack (combined or not, durable across a crash, exempt
// from maxQueueItems, discarded for a deleted sender), read receipts submitted by the recipient, to online and
// offline senders, their checks and what must not generate a receipt.
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { as, must } from '../expect.ts';
import { drain, sendOk, sendPipelined, type Sent } from '../messaging.ts';
import type { Item, Session } from '../session.ts';

/** Queues of more than this many items make the full-queue case UNSUPPORTED rather than slow. */
const MAX_FILL = 5000;
/** How long a case listens for a delivered receipt that must not come: RCP-3's second, and some margin. */
const RECEIPT_QUIET_MS = 1500;

/** The messageIds of the delivered receipts among `items`, one entry per listing. */
function deliveredIds(items: Item[]): string[] {
  return items.flatMap((i) => (i.kind === 'receipt' && i.status === 'delivered' ? i.messageIds : []));
}

interface Pair {
  alice: User;
  bob: User;
  a1: Device;
  b1: Device;
}

async function pair(ctx: CaseContext): Promise<Pair> {
  const alice = await ctx.user();
  const bob = await ctx.user();
  return { alice, bob, a1: alice.devices[0]!, b1: bob.devices[0]! };
}

/** Bob's session receives `sent` and acknowledges it; resolves with the time window of the ack (case time). */
async function receiveAndAck(b: Session, sent: Sent): Promise<number> {
  const item = await b.item('MSG-10', (i) => i.kind === 'message' && i.messageId === sent.messageId, `message ${sent.messageId}`);
  b.ack({ seqs: [item.seq] });
  return Date.now();
}

async function readReceipt(b: Session, to: Device, messageIds: string[], id: string) {
  return b.request({ type: 'receipt', id, to: { userId: to.userId, deviceId: to.deviceId }, status: 'read', messageIds: messageIds as [string, ...string[]] }, 'RCP-11');
}

export const cases: ConformanceCase[] = [
  {
    id: '4.13/delivered-receipt-to-online-sender',
    requirements: ['RCP-1', 'RCP-4', 'AUT-9'],
    level: 'must',
    title: "the recipient's ack enqueues a delivered receipt from the recipient device for the online sender",
    async run(ctx) {
      const { bob, a1, b1 } = await pair(ctx);
      const a = await ctx.connect(a1);
      const b = await ctx.connect(b1);
      const sent = await sendOk(ctx, a, a1, bob);
      const before = Date.now();
      await receiveAndAck(b, sent);
      const receipt = await a.item('RCP-1', (i) => i.kind === 'receipt' && i.messageIds.includes(sent.messageId), `a receipt for ${sent.messageId}`);
      if (receipt.kind !== 'receipt') must.fail('RCP-1', 'a receipt item', receipt);
      must.equal({ status: receipt.status, from: receipt.from }, { status: 'delivered', from: { userId: b1.userId, deviceId: b1.deviceId } }, 'RCP-1', 'the receipt');
      // `at` is the server's time of processing the ack: after the send was accepted, and not far from our clock.
      must.hold(receipt.at >= sent.ok.serverTime && Math.abs(receipt.at - before) < 60_000, 'RCP-4', `at between send_ok.serverTime ${sent.ok.serverTime} and now`, receipt.at);
    },
  },
  {
    id: '4.13/delivered-receipt-within-a-second',
    requirements: ['RCP-3'],
    level: 'should',
    title: 'a delivered receipt reaches an online sender within about a second of the ack',
    async run(ctx) {
      const { bob, a1, b1 } = await pair(ctx);
      const a = await ctx.connect(a1);
      const b = await ctx.connect(b1);
      const sent = await sendOk(ctx, a, a1, bob);
      const ackedAt = ctx.transcript.now();
      await receiveAndAck(b, sent);
      await a.item('RCP-3', (i) => i.kind === 'receipt' && i.messageIds.includes(sent.messageId), 'a delivered receipt', 1500);
      const at = a.items.find((r) => r.frame.kind === 'receipt')!.at;
      must.hold(at - ackedAt <= 1500, 'RCP-3', 'the receipt within 1000 ms (+500 ms for the network)', `${Math.round(at - ackedAt)} ms`);
    },
  },
  {
    id: '4.13/delivered-receipt-to-offline-sender',
    requirements: ['RCP-1', 'DLV-1'],
    level: 'must',
    title: 'a sender that was offline during the ack gets the delivered receipt when it connects',
    async run(ctx) {
      const { bob, a1, b1 } = await pair(ctx);
      const a = await ctx.connect(a1);
      const sent = await sendOk(ctx, a, a1, bob);
      await a.close();
      const b = await ctx.connect(b1);
      await receiveAndAck(b, sent);
      await b.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      const again = await ctx.connect(a1);
      const receipt = await again.item('RCP-1', (i) => i.kind === 'receipt' && i.messageIds.includes(sent.messageId), 'the delivered receipt');
      must.equal(receipt.kind === 'receipt' ? receipt.status : receipt.kind, 'delivered', 'RCP-1', 'receipt status');
    },
  },
  {
    id: '4.13/read-receipt',
    requirements: ['RCP-11', 'RCP-12', 'AUT-9'],
    level: 'must',
    title: 'a read receipt gets receipt_ok and reaches the sender device with messageIds exactly as sent; repeats are not merged',
    async run(ctx) {
      const { bob, a1, b1 } = await pair(ctx);
      const a = await ctx.connect(a1);
      const first = await sendOk(ctx, a, a1, bob);
      const second = await sendOk(ctx, a, a1, bob);
      const b = await ctx.connect(b1);
      const list = [second.messageId, first.messageId, second.messageId];
      must.equal(await readReceipt(b, a1, list, 'rr1'), { type: 'receipt_ok', id: 'rr1' }, 'RCP-11', 'answer to receipt');
      must.equal(await readReceipt(b, a1, list, 'rr2'), { type: 'receipt_ok', id: 'rr2' }, 'RCP-12', 'answer to the identical receipt');
      const isRead = (i: { kind: string; status?: string }) => i.kind === 'receipt' && i.status === 'read';
      await a.until(() => (a.items.filter((r) => isRead(r.frame)).length >= 2 ? true : undefined), 'RCP-12', 'two read receipt items');
      for (const r of a.items.filter((x) => isRead(x.frame))) {
        const item = r.frame;
        if (item.kind !== 'receipt') continue;
        must.equal({ from: item.from, messageIds: item.messageIds }, { from: { userId: b1.userId, deviceId: b1.deviceId }, messageIds: list }, 'RCP-11', 'read receipt item');
      }
      await a.quiet(200);
      must.equal(new Set(a.items.filter((r) => isRead(r.frame)).map((r) => r.frame.seq)).size, 2, 'RCP-12', 'read receipt items for two receipt frames');
    },
  },
  {
    id: '4.13/read-receipt-to-offline-sender',
    requirements: ['RCP-11'],
    level: 'must',
    title: 'a read receipt for an offline sender device is delivered when it connects',
    async run(ctx) {
      const { bob, a1, b1 } = await pair(ctx);
      const a = await ctx.connect(a1);
      const sent = await sendOk(ctx, a, a1, bob);
      await a.close();
      const b = await ctx.connect(b1);
      must.frameType(await readReceipt(b, a1, [sent.messageId], 'rr'), 'receipt_ok', 'RCP-11');
      const again = await ctx.connect(a1);
      await again.item('RCP-11', (i) => i.kind === 'receipt' && i.status === 'read' && i.messageIds[0] === sent.messageId, 'the read receipt');
    },
  },
  {
    id: '4.13/receipt-to-unknown-address',
    requirements: ['RCP-10', 'IDN-30'],
    level: 'must',
    title: 'a receipt to an unknown user gets UNKNOWN_USER, to an unknown or deleted device UNKNOWN_DEVICE',
    async run(ctx) {
      const alice = await ctx.user({ devices: 2 });
      const bob = await ctx.user();
      const [a1, a2] = alice.devices as [Device, Device];
      const b = await ctx.connect(bob.devices[0]!);
      const messageIds = [ctx.material.messageId()];
      const probe = async (to: { userId: string; deviceId: number }, id: string, code: string, requirementId: string) => {
        const answer = await b.request({ type: 'receipt', id, to, status: 'read', messageIds: messageIds as [string] }, 'RCP-10');
        must.errorFrame(answer, code, requirementId, id, `receipt to ${to.userId}/${to.deviceId}`);
      };
      await probe({ userId: `nobody-${ctx.material.rng.int(1, 1e9)}`, deviceId: 1 }, 'r1', 'UNKNOWN_USER', 'RCP-10');
      await probe({ userId: alice.userId, deviceId: 2147483647 }, 'r2', 'UNKNOWN_DEVICE', 'RCP-10');
      must.status(await ctx.http('deleteDevice', { params: { deviceId: a2.deviceId }, credentials: a1 }), 204, 'IDN-24');
      await probe({ userId: alice.userId, deviceId: a2.deviceId }, 'r3', 'UNKNOWN_DEVICE', 'IDN-30');
    },
  },
  {
    id: '4.13/no-receipt-for-receipts',
    requirements: ['RCP-7'],
    level: 'must',
    title: 'acknowledging a receipt item generates no receipt',
    async run(ctx) {
      const { bob, a1, b1 } = await pair(ctx);
      const a = await ctx.connect(a1);
      const b = await ctx.connect(b1);
      const sent = await sendOk(ctx, a, a1, bob);
      await receiveAndAck(b, sent);
      const receipt = await a.item('RCP-1', (i) => i.kind === 'receipt' && i.messageIds.includes(sent.messageId), 'the delivered receipt');
      a.ack({ seqs: [receipt.seq] });
      await a.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      const later = await b.quiet(400);
      const receiptsForBob = b.items.filter((r) => r.frame.kind === 'receipt');
      must.equal(receiptsForBob.map((r) => r.frame), [], 'RCP-7', `receipts delivered to ${b1.label} (frames meanwhile: ${later.length})`);
    },
  },
  {
    id: '4.13/delivered-receipts-combined-or-separate',
    requirements: ['RCP-1', 'RCP-2'],
    level: 'must',
    title: 'one ack of messages from two sender devices: each sender gets delivered receipts, combined or one per message, listing each of its messageIds once',
    async run(ctx) {
      const alice = await ctx.user({ devices: 2 });
      const bob = await ctx.user();
      const b1 = bob.devices[0]!;
      const senders: Array<{ device: Device; session: Session; ids: string[] }> = [];
      for (const [i, device] of alice.devices.entries()) {
        const session = await ctx.connect(device);
        senders.push({ device, session, ids: await sendPipelined(ctx, session, device, bob, 4 - i) });
      }
      const b = await ctx.connect(b1);
      const total = senders.reduce((n, s) => n + s.ids.length, 0);
      const items = await b.takeItems(total, 'DLV-9');
      b.ack({ upTo: Math.max(...items.map((i) => i.seq)) });
      const maxReceiptIds = b.limits.maxReceiptIds;
      for (const { device, session, ids } of senders) {
        const receipts = () => session.items.map((r) => r.frame).filter((i) => i.kind === 'receipt' && i.status === 'delivered');
        await session.until(() => (ids.every((id) => deliveredIds(receipts()).includes(id)) ? true : undefined), 'RCP-1', `delivered receipts for ${ids.length} messages at ${device.label}`);
        await session.quiet(300);
        const distinct = [...new Map(receipts().map((i) => [i.seq, i])).values()];
        for (const receipt of distinct) {
          if (receipt.kind !== 'receipt') continue;
          must.equal(receipt.from, { userId: b1.userId, deviceId: b1.deviceId }, 'RCP-1', `from of the receipt seq ${receipt.seq} at ${device.label}`);
          must.hold(receipt.messageIds.length >= 1 && receipt.messageIds.length <= maxReceiptIds, 'RCP-2', `1 to maxReceiptIds (${maxReceiptIds}) messageIds`, receipt.messageIds, device.label);
        }
        // Combined or not, a receipt combines only messages of its own sender device, each listed once.
        must.equal(deliveredIds(distinct).sort(), [...ids].sort(), 'RCP-2', `messageIds of the delivered receipts at ${device.label}`);
      }
    },
  },
  {
    id: '4.13/delivered-receipt-despite-full-queue',
    requirements: ['RCP-9', 'RCP-10', 'ERR-5'],
    level: 'must',
    title: "a delivered receipt is enqueued even when the sender device's queue holds maxQueueItems items; a read receipt to it gets QUEUE_FULL",
    budgetMs: (limits) => 15_000 + 20 * limits.maxQueueItems,
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const carol = await ctx.user();
      const [a1, b1, c1] = [alice.devices[0]!, bob.devices[0]!, carol.devices[0]!];
      const a = await ctx.connect(a1);
      const { maxQueueItems } = a.limits;
      if (maxQueueItems > MAX_FILL) ctx.unsupported(`filling a queue of maxQueueItems (${maxQueueItems}) takes more than ${MAX_FILL} sends`);
      const sent = await sendOk(ctx, a, a1, bob);
      await a.close();
      // Carol fills the queue of alice's only device while it is offline (below the limit every send is accepted).
      const c = await ctx.connect(c1);
      await sendPipelined(ctx, c, c1, alice, maxQueueItems, { bytes: 1, requirementId: 'MSG-9' });
      const b = await ctx.connect(b1);
      const read = await b.request({ type: 'receipt', id: 'rr-full', to: { userId: a1.userId, deviceId: a1.deviceId }, status: 'read', messageIds: [sent.messageId] }, 'RCP-10');
      const error = as(read, 'error', 'RCP-10', 'a read receipt to a full queue');
      must.errorFrame(error, 'QUEUE_FULL', 'RCP-10', 'rr-full');
      must.equal(error.details, { deviceIds: [a1.deviceId] }, 'ERR-5', 'details of QUEUE_FULL');
      // The delivered receipt of bob's ack is not submitted by a client: maxQueueItems does not apply to it.
      await receiveAndAck(b, sent);
      await b.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      const again = await ctx.connect(a1);
      const items = await drain(again, 'RCP-9');
      must.hold(deliveredIds(items).includes(sent.messageId), 'RCP-9', `a delivered receipt for ${sent.messageId} behind ${maxQueueItems} queued messages`, `${items.length} items, receipts: ${JSON.stringify(items.filter((i) => i.kind === 'receipt'))}`);
    },
  },
  {
    id: '4.13/receipt-for-deleted-sender-discarded',
    requirements: ['RCP-8', 'DLV-32'],
    level: 'must',
    title: "an item stays queued after its sender device and the recipient's sibling are deleted; acknowledging it sends no receipt to anyone",
    async run(ctx) {
      const alice = await ctx.user({ devices: 2 });
      const bob = await ctx.user({ devices: 2 });
      const [a1, a2] = alice.devices as [Device, Device];
      const [b1, b2] = bob.devices as [Device, Device];
      const s2 = await ctx.connect(a2);
      const sent = await sendOk(ctx, s2, a2, bob);
      await s2.close();
      const first = await ctx.connect(b1);
      await first.takeItems(1, 'DLV-9');
      await first.close();
      must.status(await ctx.http('deleteDevice', { params: { deviceId: a2.deviceId }, credentials: a1 }), 204, 'IDN-24', `deleting the sender ${a2.label}`);
      must.status(await ctx.http('deleteDevice', { params: { deviceId: b2.deviceId }, credentials: b1 }), 204, 'IDN-24', `deleting the sibling ${b2.label}`);
      // DLV-32: neither deletion removes the item from b1's queue; only its acknowledgement (or b1's deletion) does.
      const b = await ctx.connect(b1);
      const item = await b.item('DLV-32', (i) => i.kind === 'message' && i.messageId === sent.messageId, `message ${sent.messageId}, still unacknowledged`);
      must.equal(item.kind === 'message' ? item.from : undefined, { userId: a2.userId, deviceId: a2.deviceId }, 'MSG-13', 'from of the item of a deleted sender');
      const a = await ctx.connect(a1);
      await a.next('queue_empty', 'DLV-25');
      b.ack({ id: 'ack-orphan', seqs: [item.seq] });
      await b.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      const a3 = await ctx.link(alice);
      const fresh = await ctx.connect(a3);
      await fresh.next('queue_empty', 'DLV-25');
      await a.quiet(RECEIPT_QUIET_MS);
      must.equal(b.received.filter((r) => r.frame.type === 'error').map((r) => r.frame), [], 'RCP-8', `errors after acknowledging an item of a deleted sender`);
      for (const session of [a, fresh]) {
        must.equal(deliveredIds(session.items.map((r) => r.frame)), [], 'RCP-8', `delivered receipts at ${session.label} (the receipt for ${a2.label} is discarded, not redirected)`);
      }
    },
  },
  {
    id: '4.13/delivered-receipt-survives-crash',
    requirements: ['RCP-5', 'DLV-39'],
    level: 'must',
    needs: ['restart'],
    title: 'acknowledgements applied just before a crash still yield their delivered receipts after the restart: perhaps twice, never lost',
    async run(ctx) {
      const { alice, bob, a1, b1 } = await pair(ctx);
      const a = await ctx.connect(a1);
      const ids = await sendPipelined(ctx, a, a1, bob, 5);
      await a.close();
      const b = await ctx.connect(b1);
      const items = await b.takeItems(ids.length, 'DLV-9');
      for (const item of items) b.ack({ seqs: [item.seq] });
      await b.request({ type: 'ping', id: 'sync' }, 'KAL-1'); // the acks are applied (TRN-34)
      // A send acknowledged after the acks: on a server that writes one log in order, the acks are on disk once it
      // is, so the crash tests whether their receipts were made durable with them, not the race between the acks'
      // write and the crash (an ack lost in that race brings its item back, and its receipt comes anyway).
      await sendOk(ctx, b, b1, alice);
      await ctx.restartServer('crash');
      // An item whose removal was not yet durable comes back; acknowledging it again yields its receipt then.
      await drain(await ctx.connect(b1), 'RCP-5');
      const sender = await ctx.connect(a1);
      const missing = () => ids.filter((id) => !deliveredIds(sender.items.map((r) => r.frame)).includes(id));
      await sender.until(() => (missing().length === 0 ? true : undefined), 'RCP-5', `delivered receipts for all ${ids.length} acknowledged messages after the crash`);
    },
  },
];
