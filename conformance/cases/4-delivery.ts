// Sections 4.4, 4.5, 4.8 and 4.10 of PROTOCOL.md: queues and seqs, delivery only when durable (across a crash) and
// only on the device's own session, the shape of deliver frames, delivery order, the window, queue_empty and the
// per-sender FIFO guarantee. Batching is the server's choice: cases look at items, never at how frames group them,
// except where DLV-6 bounds the frames themselves.
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { must } from '../expect.ts';
import { drain, envelopeOf, send, sendOk, sendPipelined } from '../messaging.ts';
import type { Item, Session } from '../session.ts';

/** Sends in flight when the crash of the durability case comes. */
const CRASH_SENDS = 30;
/** Envelopes of maxEnvelopeBytes in the deliver-frame case: together they exceed maxFrameBytes at the reference values. */
const LARGE_ENVELOPES = 4;

/** Sends `n` messages one after another (each waits for its send_ok) and returns their messageIds. */
async function sendMany(ctx: CaseContext, from: Device, to: User, n: number): Promise<string[]> {
  const session = await ctx.connect(from);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await sendOk(ctx, session, from, to)).messageId);
  await session.close();
  return ids;
}

/**
 * The first `n` items delivered on `session` with a seq above `after`, each seq once: a redelivery of an item the case
 * has not acknowledged yet (its ackTimeoutMs ran out meanwhile, DLV-10) may come between them on a slow host.
 */
function newItems(session: Session, after: number, n: number, requirementId: string): Promise<Item[]> {
  return session.until(
    () => {
      const fresh = new Map<number, Item>();
      for (const { frame } of session.items) if (frame.seq > after && !fresh.has(frame.seq)) fresh.set(frame.seq, frame);
      return fresh.size >= n ? [...fresh.values()].slice(0, n) : undefined;
    },
    requirementId,
    `${n} delivered item(s) after seq ${after}`,
  );
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
      const firstTwo = await newItems(b, 0, 2, 'DLV-9');
      await b.quiet(300);
      const distinct = () => new Set(b.items.map((r) => r.frame.seq)).size;
      must.equal(distinct(), 2, 'DLV-8', 'distinct items delivered with a window of 2 and no ack');
      must.hold(!b.received.some((r) => r.frame.type === 'queue_empty'), 'DLV-27', 'no queue_empty while backlog items wait behind the window', b.received.map((r) => r.frame.type));
      b.ack({ seqs: [firstTwo[0]!.seq] });
      const [third] = await newItems(b, firstTwo[1]!.seq, 1, 'DLV-15');
      must.equal(third!.kind === 'message' ? third!.messageId : undefined, ids[2], 'DLV-7', 'the next item after one ack');
      await b.quiet(200);
      must.equal(distinct(), 3, 'DLV-8', 'distinct items delivered after one ack');
      b.ack({ upTo: third!.seq });
      const rest = await newItems(b, third!.seq, 2, 'DLV-9');
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
  {
    id: '4.5/items-only-on-own-device-session',
    requirements: ['DLV-5', 'MSG-13'],
    level: 'must',
    title: "a device's items reach only its own session: not its sibling's, not another user's device with the same deviceId, not the sender's",
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 2 });
      const carol = await ctx.user();
      const a1 = alice.devices[0]!;
      const sender = await ctx.connect(a1);
      const recipients: Array<[Device, Session]> = [];
      for (const device of [...bob.devices, carol.devices[0]!]) recipients.push([device, await ctx.connect(device)]);
      for (const [, session] of recipients) await session.next('queue_empty', 'DLV-25');
      const toBob = await sendOk(ctx, sender, a1, bob);
      const toCarol = await sendOk(ctx, sender, a1, carol);
      for (const [device, session] of recipients) {
        const sent = device.userId === bob.userId ? toBob : toCarol;
        await session.item('DLV-9', (i) => i.kind === 'message' && i.messageId === sent.messageId, `message ${sent.messageId} at ${device.label}`);
      }
      await sender.quiet(300);
      for (const [device, session] of recipients) {
        const sent = device.userId === bob.userId ? toBob : toCarol;
        const messages = session.items.flatMap((r) => (r.frame.kind === 'message' ? [{ messageId: r.frame.messageId, envelope: r.frame.envelope }] : []));
        must.equal(messages, [{ messageId: sent.messageId, envelope: envelopeOf(sent, device) }], 'DLV-5', `messages delivered on the session of ${device.label}`);
      }
      must.equal(sender.items.map((r) => r.frame), [], 'DLV-5', `items delivered on the session of the sender ${a1.label}`);
    },
  },
  {
    id: '4.5/deliver-frames-within-limits',
    requirements: ['DLV-6'],
    level: 'must',
    title: 'every deliver frame carries 1 to maxDeliverBatch items in ascending seq order and fits maxFrameBytes, also for a backlog of large envelopes',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const a = await ctx.connect(a1);
      const { maxDeliverBatch, maxEnvelopeBytes, maxFrameBytes } = a.limits;
      // More small items than one frame may carry, then envelopes of the largest size, which cannot all share a frame.
      const small = maxDeliverBatch + 2;
      await sendPipelined(ctx, a, a1, bob, small, { bytes: 16 });
      await sendPipelined(ctx, a, a1, bob, LARGE_ENVELOPES, { bytes: maxEnvelopeBytes, inFlight: 1 });
      // The recipient measures every data message from before its hello on.
      const b = await ctx.open({ label: b1.label });
      const frames: Array<{ bytes: number; seqs: number[] }> = [];
      b.conn.socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        if (isBinary) return;
        let frame: { type?: unknown; items?: Array<{ seq?: unknown }> };
        try {
          frame = JSON.parse(bytes.toString('utf8')) as typeof frame;
        } catch {
          return; // the session's own checks report a frame that is not JSON (TRN-19)
        }
        if (frame.type === 'deliver' && Array.isArray(frame.items)) frames.push({ bytes: bytes.length, seqs: frame.items.map((i) => Number(i.seq)) });
      });
      must.frameType(await b.hello(b1), 'welcome', 'AUT-13', `hello of ${b1.label}`);
      const items = await drain(b, 'DLV-9');
      must.equal(items.length, small + LARGE_ENVELOPES, 'DLV-9', 'items delivered');
      for (const [i, frame] of frames.entries()) {
        const what = `deliver frame ${i + 1} of ${frames.length} (seqs ${frame.seqs.join(', ')})`;
        must.hold(frame.seqs.length >= 1 && frame.seqs.length <= maxDeliverBatch, 'DLV-6', `1 to maxDeliverBatch (${maxDeliverBatch}) items`, `${frame.seqs.length} items`, what);
        must.hold(frame.seqs.every((seq, j) => j === 0 || seq > frame.seqs[j - 1]!), 'DLV-6', 'items in ascending seq order', frame.seqs, what);
        must.hold(frame.bytes <= maxFrameBytes, 'DLV-6', `at most maxFrameBytes (${maxFrameBytes}) bytes`, `${frame.bytes} bytes`, what);
      }
    },
  },
  {
    id: '4.4/delivered-only-when-durable',
    requirements: ['DLV-4', 'DLV-3', 'DLV-39'],
    level: 'must',
    needs: ['restart'],
    title: 'every item an online recipient was delivered before a crash, and every send answered send_ok, is in its queue after the restart under the same seq',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const a = await ctx.connect(a1);
      const b = await ctx.connect(b1);
      await b.next('queue_empty', 'DLV-25');
      // Pipelined sends; the crash comes as soon as the first item reaches the recipient, with others in flight. The
      // connection dies with the server, so the answers still missing then resolve to undefined.
      const sends = Array.from({ length: CRASH_SENDS }, () => send(ctx, a, a1, bob).catch(() => undefined));
      await b.takeItems(1, 'DLV-9');
      await ctx.restartServer('crash');
      await b.conn.closed;
      const seen = new Map<number, Item>(b.items.map((r) => [r.frame.seq, r.frame]));
      const acknowledged = (await Promise.all(sends)).flatMap((s) => (s?.answer.type === 'send_ok' ? [s.messageId] : []));
      ctx.note(`before the crash: ${seen.size} item(s) delivered, ${acknowledged.length} send(s) answered send_ok`);
      const after = await ctx.connect(b1);
      const items = await drain(after, 'DLV-39');
      const idOf = (item: Item | undefined) => (item?.kind === 'message' ? item.messageId : item?.kind);
      for (const [seq, item] of seen) {
        const again = items.find((i) => i.seq === seq);
        must.hold(again !== undefined, 'DLV-4', `seq ${seq} (delivered before the crash) still queued`, 'absent after the restart');
        must.equal(idOf(again), idOf(item), 'DLV-3', `the item of seq ${seq} after the restart`);
      }
      for (const messageId of acknowledged) {
        must.hold(items.some((i) => idOf(i) === messageId), 'DLV-39', `message ${messageId} (answered send_ok) still queued`, 'absent after the restart');
      }
    },
  },
];
