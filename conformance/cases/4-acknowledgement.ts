// Sections 4.6 and 4.7 of PROTOCOL.md: cumulative and selective acks, INVALID_ACK, the ack check order, idempotent
// acks, redelivery on the same session after ackTimeoutMs, and redelivery on a new session.
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { must } from '../expect.ts';
import { sendOk } from '../messaging.ts';
import type { Item } from '../session.ts';

async function backlog(ctx: CaseContext, n: number): Promise<{ alice: User; bob: User; ids: string[]; a: Device; b: Device }> {
  const alice = await ctx.user();
  const bob = await ctx.user();
  const session = await ctx.connect(alice.devices[0]!);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await sendOk(ctx, session, alice.devices[0]!, bob)).messageId);
  await session.close();
  return { alice, bob, ids, a: alice.devices[0]!, b: bob.devices[0]! };
}

const idOf = (item: Item) => (item.kind === 'message' ? item.messageId : `receipt:${item.seq}`);

export const cases: ConformanceCase[] = [
  {
    id: '4.6/ack-upto-acknowledges-delivered',
    requirements: ['DLV-11', 'DLV-15', 'DLV-24'],
    level: 'must',
    title: 'ack {upTo} removes every delivered item up to that seq; a new session delivers only the rest',
    async run(ctx) {
      const { ids, b } = await backlog(ctx, 3);
      const first = await ctx.connect(b);
      const items = await first.takeItems(3, 'DLV-9');
      await first.next('queue_empty', 'DLV-25');
      first.ack({ upTo: items[1]!.seq });
      await first.request({ type: 'ping', id: 'sync' }, 'KAL-1'); // the ack is applied before the ping is answered (TRN-34)
      await first.close();
      const second = await ctx.connect(b);
      const rest = await second.takeItems(1, 'DLV-24');
      must.equal(idOf(rest[0]!), ids[2], 'DLV-11', 'the only item left after ack upTo the second');
      must.equal((await second.next('queue_empty', 'DLV-25')).lastSeq, items[2]!.seq, 'DLV-26', 'lastSeq');
      await second.quiet(150);
      must.equal(second.items.length, 1, 'DLV-15', 'items delivered on the new session');
    },
  },
  {
    id: '4.6/ack-seqs-acknowledges-exactly',
    requirements: ['DLV-11', 'DLV-15', 'DLV-24'],
    level: 'must',
    title: 'ack {seqs} removes exactly the listed items',
    async run(ctx) {
      const { ids, b } = await backlog(ctx, 3);
      const first = await ctx.connect(b);
      const items = await first.takeItems(3, 'DLV-9');
      first.ack({ seqs: [items[1]!.seq] });
      await first.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      await first.close();
      const second = await ctx.connect(b);
      const rest = await second.takeItems(2, 'DLV-24');
      must.equal(rest.map(idOf), [ids[0], ids[2]], 'DLV-11', 'items left after acking the middle one');
      must.hold(rest.every((i) => i.redelivered === true), 'DLV-10', 'redelivered: true on items delivered on an earlier session', rest);
    },
  },
  {
    id: '4.6/invalid-ack',
    requirements: ['DLV-12', 'DLV-40', 'DLV-13', 'ERR-8'],
    level: 'must',
    title: 'an ack beyond what was delivered on the session gets INVALID_ACK and acknowledges nothing of the frame',
    async run(ctx) {
      const { ids, b } = await backlog(ctx, 2);
      const empty = await ctx.user();
      const idle = await ctx.connect(empty.devices[0]!);
      await idle.next('queue_empty', 'DLV-25');
      idle.ack({ id: 'nothing-delivered', upTo: 1 });
      must.errorFrame(await idle.next('error', 'DLV-12'), 'INVALID_ACK', 'DLV-12', 'nothing-delivered', 'ack on a session with nothing delivered');

      const s = await ctx.connect(b);
      const items = await s.takeItems(2, 'DLV-9');
      const high = items[1]!.seq;
      s.ack({ id: 'too-high', upTo: high + 1000 });
      must.errorFrame(await s.next('error', 'DLV-12', (e) => e.id === 'too-high'), 'INVALID_ACK', 'DLV-12', 'too-high');
      s.ack({ id: 'mixed', seqs: [items[0]!.seq, high + 1000] });
      must.errorFrame(await s.next('error', 'DLV-12', (e) => e.id === 'mixed'), 'INVALID_ACK', 'DLV-12', 'mixed');
      const tooMany = Array.from({ length: s.limits.maxAckBatch + 1 }, () => items[0]!.seq);
      s.ack({ id: 'too-many', seqs: tooMany as [number, ...number[]] });
      must.errorFrame(await s.next('error', 'DLV-13', (e) => e.id === 'too-many'), 'INVALID_FRAME', 'DLV-40', 'too-many', 'seqs over maxAckBatch, with valid seqs');
      await s.request({ type: 'ping', id: 'sync' }, 'ERR-8');
      await s.close();
      const again = await ctx.connect(b);
      const still = await again.takeItems(2, 'DLV-24');
      must.equal(still.map(idOf), ids, 'DLV-12', 'both items are still queued after the refused acks');
    },
  },
  {
    id: '4.6/repeated-ack-is-no-op',
    requirements: ['DLV-14', 'RCP-1'],
    level: 'must',
    title: 'acknowledging an item twice is harmless: no error and only one delivered receipt',
    async run(ctx) {
      const { alice, b, ids } = await backlog(ctx, 1);
      const s = await ctx.connect(b);
      const [item] = await s.takeItems(1, 'DLV-9');
      s.ack({ id: 'once', seqs: [item!.seq, item!.seq] });
      s.ack({ id: 'twice', upTo: item!.seq });
      s.ack({ id: 'thrice', seqs: [item!.seq] });
      await s.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      await s.quiet(200);
      const errors = s.received.filter((r) => r.frame.type === 'error').map((r) => r.frame);
      must.equal(errors, [], 'DLV-14', 'errors after repeated acks');
      const a = await ctx.connect(alice.devices[0]!);
      await a.item('RCP-1', (i) => i.kind === 'receipt' && i.messageIds.includes(ids[0]!), 'a delivered receipt');
      await a.next('queue_empty', 'DLV-25');
      await a.quiet(300);
      const receipts = a.items.filter((r) => r.frame.kind === 'receipt' && r.frame.status === 'delivered' && r.frame.messageIds.includes(ids[0]!));
      must.equal(new Set(receipts.map((r) => r.frame.seq)).size, 1, 'DLV-14', 'delivered receipts for one message acknowledged three times');
    },
  },
  {
    id: '4.7/redelivery-after-ack-timeout',
    requirements: ['DLV-21', 'DLV-22', 'DLV-10'],
    level: 'must',
    title: 'an item left unacknowledged is delivered again with redelivered:true, not before ackTimeoutMs',
    async run(ctx) {
      const { b, ids } = await backlog(ctx, 1);
      const s = await ctx.connect(b);
      const { ackTimeoutMs } = s.limits;
      // DLV-23 allows a redelivery up to 1000 ms late; leave that slack and some for the network.
      if (ackTimeoutMs + 1500 > ctx.remaining()) ctx.unsupported(`ackTimeoutMs ${ackTimeoutMs} does not fit the case time left (${Math.round(ctx.remaining())} ms); raise --timeout`);
      const [item] = await s.takeItems(1, 'DLV-9');
      const firstAt = s.items[0]!.at;
      must.hold(item!.redelivered !== true, 'DLV-10', 'no redelivered flag on the first delivery', item);
      const [again] = await s.takeItems(1, 'DLV-21', ackTimeoutMs + 1500);
      const gap = s.items[1]!.at - firstAt;
      must.equal(again!.seq, item!.seq, 'DLV-21', 'seq of the redelivered item');
      must.equal(idOf(again!), ids[0], 'DLV-21', 'the redelivered message');
      must.equal(again!.redelivered, true, 'DLV-10', 'redelivered flag');
      must.hold(gap >= ackTimeoutMs - 50, 'DLV-22', `no redelivery before ackTimeoutMs (${ackTimeoutMs} ms)`, `redelivered after ${Math.round(gap)} ms`);
      s.ack({ upTo: again!.seq });
    },
  },
  {
    id: '4.7/redelivery-within-a-second-of-due',
    requirements: ['DLV-23'],
    level: 'should',
    title: 'a redelivery comes no later than 1000 ms after it is due',
    async run(ctx) {
      const { b } = await backlog(ctx, 1);
      const s = await ctx.connect(b);
      const { ackTimeoutMs } = s.limits;
      if (ackTimeoutMs + 1500 > ctx.remaining()) ctx.unsupported(`ackTimeoutMs ${ackTimeoutMs} does not fit the case time left; raise --timeout`);
      await s.takeItems(1, 'DLV-9');
      await s.takeItems(1, 'DLV-23', ackTimeoutMs + 1500);
      const gap = s.items[1]!.at - s.items[0]!.at;
      must.hold(gap <= ackTimeoutMs + 1000, 'DLV-23', `a redelivery within ${ackTimeoutMs + 1000} ms`, `${Math.round(gap)} ms`);
    },
  },
  {
    id: '4.7/new-session-redelivers-unacknowledged',
    requirements: ['DLV-24', 'DLV-10', 'DLV-7'],
    level: 'must',
    title: 'items delivered but not acknowledged on a closed session are delivered again, in order and flagged',
    async run(ctx) {
      const { b, ids } = await backlog(ctx, 2);
      const first = await ctx.connect(b);
      await first.takeItems(2, 'DLV-9');
      await first.close();
      const second = await ctx.connect(b);
      const items = await second.takeItems(2, 'DLV-24');
      must.equal(items.map(idOf), ids, 'DLV-24', 'items of the new session');
      must.hold(items.every((i) => i.redelivered === true), 'DLV-10', 'redelivered: true on both', items);
    },
  },
];
