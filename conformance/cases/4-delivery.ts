// Sections 4.4, 4.5, 4.8 and 4.10 of PROTOCOL.md: queues and seqs, delivery order, the window, queue_empty and the
// per-sender FIFO guarantee. Batching is the server's choice: cases look at items, never at how frames group them.
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { must } from '../expect.ts';
import { sendOk } from '../messaging.ts';

/** Sends `n` messages one after another (each waits for its send_ok) and returns their messageIds. */
async function sendMany(ctx: CaseContext, from: Device, to: User, n: number): Promise<string[]> {
  const session = await ctx.connect(from);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await sendOk(ctx, session, from, to)).messageId);
  await session.close();
  return ids;
}

export const cases: ConformanceCase[] = [
  {
    id: '4.8/queue-empty-first-when-backlog-empty',
    requirements: ['DLV-25', 'DLV-26', 'DLV-28'],
    level: 'must',
    title: 'with an empty queue, queue_empty {lastSeq: 0} comes before any deliver, once per session',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const b = await ctx.connect(bob.devices[0]!);
      const empty = await b.next('queue_empty', 'DLV-25');
      must.equal(empty.lastSeq, 0, 'DLV-26');
      const a = await ctx.connect(alice.devices[0]!);
      await sendOk(ctx, a, alice.devices[0]!, bob);
      await b.takeItems(1, 'DLV-9');
      const order = b.received.map((r) => r.frame.type).filter((t) => t === 'queue_empty' || t === 'deliver');
      must.equal(order[0], 'queue_empty', 'DLV-28', 'first of queue_empty/deliver');
      await b.quiet(200);
      must.equal(b.received.filter((r) => r.frame.type === 'queue_empty').length, 1, 'DLV-25', 'queue_empty frames on the session');
    },
  },
  {
    id: '4.5/offline-backlog-drains-in-order',
    requirements: ['DLV-7', 'DLV-31', 'DLV-2', 'DLV-26', 'DLV-27', 'DLV-25'],
    level: 'must',
    title: 'a backlog is delivered on connect in send order with increasing seqs, then queue_empty with the highest seq',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const ids = await sendMany(ctx, alice.devices[0]!, bob, 6);
      const b = await ctx.connect(bob.devices[0]!);
      const items = await b.takeItems(6, 'DLV-9');
      must.equal(items.map((i) => (i.kind === 'message' ? i.messageId : i.kind)), ids, 'DLV-31', 'order of delivery');
      const seqs = items.map((i) => i.seq);
      must.hold(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'DLV-2', 'strictly increasing seqs', seqs);
      const empty = await b.next('queue_empty', 'DLV-27');
      must.equal(empty.lastSeq, seqs.at(-1), 'DLV-26', 'lastSeq');
      const emptyAt = b.received.find((r) => r.frame === empty)!.at;
      const lastItemAt = b.items[5]!.at;
      must.hold(emptyAt >= lastItemAt, 'DLV-27', 'queue_empty after every backlog item', `queue_empty at ${emptyAt} ms, last item at ${lastItemAt} ms`);
      await b.quiet(200);
      must.equal(b.received.filter((r) => r.frame.type === 'queue_empty').length, 1, 'DLV-25', 'queue_empty frames on the session');
    },
  },
  {
    id: '4.5/window-honoured',
    requirements: ['DLV-8', 'DLV-9', 'DLV-15', 'DLV-27', 'AUT-14'],
    level: 'must',
    title: 'no more than window items are in flight; each ack frees a slot at once; queue_empty waits for the backlog',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const ids = await sendMany(ctx, alice.devices[0]!, bob, 5);
      const b = await ctx.connect(bob.devices[0]!, { receiveMax: 2 });
      must.equal(b.limits.window, 2, 'AUT-14', 'window with receiveMax 2');
      const firstTwo = await b.takeItems(2, 'DLV-9');
      await b.quiet(300);
      const distinct = () => new Set(b.items.map((r) => r.frame.seq)).size;
      must.equal(distinct(), 2, 'DLV-8', 'distinct items delivered with a window of 2 and no ack');
      must.hold(!b.received.some((r) => r.frame.type === 'queue_empty'), 'DLV-27', 'no queue_empty while backlog items wait behind the window', b.received.map((r) => r.frame.type));
      b.ack({ seqs: [firstTwo[0]!.seq] });
      const [third] = await b.takeItems(1, 'DLV-15');
      must.equal(third!.kind === 'message' ? third!.messageId : undefined, ids[2], 'DLV-7', 'the next item after one ack');
      await b.quiet(200);
      must.equal(distinct(), 3, 'DLV-8', 'distinct items delivered after one ack');
      b.ack({ upTo: third!.seq });
      const rest = await b.takeItems(2, 'DLV-9');
      must.equal(rest.map((i) => (i.kind === 'message' ? i.messageId : i.kind)), ids.slice(3), 'DLV-7', 'the last two items');
      must.equal((await b.next('queue_empty', 'DLV-27')).lastSeq, rest[1]!.seq, 'DLV-26', 'lastSeq');
    },
  },
  {
    id: '4.10/fifo-per-sender-across-devices',
    requirements: ['DLV-31', 'DLV-1'],
    level: 'must',
    title: "each sender device's messages reach each recipient device in send order; receipts share the seq space",
    async run(ctx) {
      const alice = await ctx.user({ devices: 2 });
      const bob = await ctx.user({ devices: 2 });
      const [a1, a2] = alice.devices as [Device, Device];
      const s1 = await ctx.connect(a1);
      const s2 = await ctx.connect(a2);
      const from1: string[] = [];
      const from2: string[] = [];
      for (let i = 0; i < 4; i++) {
        const [x, y] = await Promise.all([sendOk(ctx, s1, a1, bob), sendOk(ctx, s2, a2, bob)]);
        from1.push(x.messageId);
        from2.push(y.messageId);
      }
      for (const device of bob.devices) {
        const b = await ctx.connect(device);
        const items = await b.takeItems(8, 'DLV-9');
        const of = (sender: Device) => items.filter((i) => i.kind === 'message' && i.from.deviceId === sender.deviceId).map((i) => (i.kind === 'message' ? i.messageId : ''));
        must.equal(of(a1), from1, 'DLV-31', `order of ${a1.label}'s messages at ${device.label}`);
        must.equal(of(a2), from2, 'DLV-31', `order of ${a2.label}'s messages at ${device.label}`);
        await b.close();
      }
    },
  },
];
