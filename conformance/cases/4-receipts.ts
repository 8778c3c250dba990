// Section 4.13 of PROTOCOL.md: delivered receipts generated on ack, read receipts submitted by the recipient, to
// online and offline senders, their checks and what must not generate a receipt.
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { must } from '../expect.ts';
import { sendOk, type Sent } from '../messaging.ts';
import type { Session } from '../session.ts';

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
];
