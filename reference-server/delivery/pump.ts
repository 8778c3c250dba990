// The delivery pump of one session: reads the device's queue from a cursor, keeps at most `window` items in flight,
// redelivers what is not acknowledged in time, validates and applies acknowledgements, and sends the session's one
// `queue_empty` (sections 4.5 to 4.8).
//
// State machine (the fill loop; redelivery runs beside it on one timer per session):
//
//   idle ──wake──▶ reading ──(items, room left)──▶ reading
//     ▲               │  └──(buffer above high water)──▶ waiting-drain ──drained──▶ reading
//     └──caught up / window full──┘  └──(store unavailable)──▶ waiting-retry ──timer──▶ reading
//   any ──stop──▶ stopped
import type { LimitValues } from '../config.ts';
import type { MutantName } from '../mutants.ts';
import type { Logger } from '../context.ts';
import { ProtocolError } from '../errors.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import type { DeviceAddress, QueueItem, Store } from '../store/store.ts';
import type { AckFrame, MessageItem, ReceiptItem } from '../../spec/index.ts';
import type { FrameWriter } from '../session/frame-writer.ts';
import type { SessionMetrics } from '../session/session-metrics.ts';
import { redeliveryDelayMs } from './backoff.ts';
import type { DeliveryMemory } from './memory.ts';
import { SeqSet } from './seq-set.ts';

export type PumpState = 'idle' | 'reading' | 'waiting-drain' | 'waiting-retry' | 'stopped';

export interface PumpHost {
  device: DeviceAddress;
  /** The session's advertised window: min(server window, hello.receiveMax) [AUT-14]. */
  window: number;
  limits: LimitValues;
  store: Store;
  writer: FrameWriter;
  memory: DeliveryMemory;
  metrics: SessionMetrics;
  log: Logger;
  now: () => number;
  /** An unexpected failure: the connection ends the session with INTERNAL_ERROR. */
  onFatal: (error: unknown) => void;
  /** FOR TESTING THE CONFORMANCE SUITE ONLY: the mutant of reference-server/mutants.ts to plant, if any. */
  mutant?: MutantName | undefined;
}

interface InFlight {
  item: QueueItem;
  /** When the item was first delivered on this session (for the ack latency metric). */
  firstAt: number;
  /** Deliveries on this session after the first: k of [DLV-21]. */
  redeliveries: number;
  dueAt: number;
}

/** `{"type":"deliver","items":[` + `]}`: the bytes of a deliver frame around its items. */
const FRAME_OVERHEAD = Buffer.byteLength('{"type":"deliver","items":[]}');

export class DeliveryPump {
  private state: PumpState = 'idle';
  /** Every item of the queue with seq <= cursor has been delivered on this session or has left the queue. */
  private cursor = 0;
  /** Highest seq of B, the queue when welcome was sent (section 4.8). */
  private backlogLast = 0;
  private queueEmptySent = false;
  /** In flight [0.5]: delivered on this session, not acknowledged, still queued. Map order is seq order. */
  private readonly inFlight = new Map<number, InFlight>();
  /** Every seq delivered on this session: the ground for judging acks [DLV-12]. */
  private readonly delivered = new SeqSet();
  private wanted = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private retryTimer: NodeJS.Timeout | undefined;
  private redelivering = false;
  private readonly mutant: MutantName | undefined;
  /** mutant: forget-offline-receipts — when this session began. */
  private startedAt = 0;

  constructor(private readonly host: PumpHost) {
    if (!Number.isSafeInteger(host.window) || host.window < 1) throw new RangeError(`window must be >= 1 (got ${host.window})`);
    this.mutant = host.mutant;
    // mutant: forget-offline-receipts
    if (this.mutant === 'forget-offline-receipts') this.startedAt = host.now();
  }

  /** A getter, so that checks after an await are not narrowed away by the compiler. */
  private get stopped(): boolean {
    return this.state === 'stopped';
  }

  get currentState(): PumpState {
    return this.state;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Starts delivery; `backlogLast` is the queue's last seq read before welcome was sent (0: B is empty). */
  start(backlogLast: number): void {
    this.backlogLast = backlogLast;
    // [DLV-28] When B is empty, queue_empty comes before any deliver frame of the session.
    if (backlogLast === 0) this.sendQueueEmpty();
    this.wake();
  }

  /**
   * Something may be deliverable: items were enqueued, or acknowledgements freed the window. [DLV-9] Delivery needs
   * no further client action. `lastSeq` (from an 'enqueued' event) lets the pump ignore what it already has.
   */
  wake(lastSeq?: number): void {
    if (this.stopped) return;
    if (lastSeq !== undefined && lastSeq <= this.cursor) return;
    if (this.state !== 'idle') {
      this.wanted = true;
      return;
    }
    void this.fill();
  }

  stop(): void {
    this.state = 'stopped';
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.retryTimer = undefined;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // First deliveries

  private async fill(): Promise<void> {
    try {
      for (;;) {
        if (this.stopped) return;
        let room = this.host.window - this.inFlight.size;
        // mutant: ignore-window — as if nothing were in flight, whatever the window.
        if (this.mutant === 'ignore-window') room = this.host.limits.maxDeliverBatch;
        // [DLV-8] Never more than `window` items in flight.
        if (room <= 0) break;
        if (this.host.writer.congested) {
          // Flow control (section 6.4): no deliver frame while the socket's buffer is above high water.
          this.state = 'waiting-drain';
          await this.host.writer.whenDrained();
          continue;
        }
        this.state = 'reading';
        this.wanted = false;
        const want = Math.min(room, this.host.limits.maxDeliverBatch);
        // [DLV-4] The store shows only durable items, in seq order, so reading above the cursor never skips one.
        const items = await this.host.store.readQueue(this.host.device, this.cursor, want);
        if (this.stopped) return;
        this.deliverFirst(items);
        if (items.length < want && !this.wanted) break;
      }
    } catch (error) {
      if (this.stopped) return;
      if (error instanceof StoreUnavailableError) {
        this.host.log.warn('delivery.read_failed', { userId: this.host.device.userId, deviceId: this.host.device.deviceId, error });
        this.state = 'waiting-retry';
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          if (this.state !== 'waiting-retry') return;
          this.state = 'idle';
          this.wake();
        }, this.host.limits.ackTimeoutMs);
        return;
      }
      this.stop();
      this.host.onFatal(error);
      return;
    }
    if (this.stopped) return;
    this.state = 'idle';
    if (this.wanted) {
      this.wanted = false;
      this.wake();
    }
  }

  private deliverFirst(items: QueueItem[]): void {
    if (items.length === 0) {
      // Nothing above the cursor: every item of B has been delivered or has left the queue [DLV-27].
      if (!this.queueEmptySent) this.sendQueueEmpty();
      return;
    }
    // [DLV-27] Items of B that left the queue before being delivered (expiry) are not waited for.
    if (!this.queueEmptySent && items[0]!.seq > this.backlogLast) this.sendQueueEmpty();
    // Flow control (section 6.4): no more than the writer's budget of bytes at once (always at least one item). The
    // rest stay above the cursor and are read again once the buffer has drained.
    items = withinBudget(items, this.host.writer.deliverBudget);
    const now = this.host.now();
    const entries: InFlight[] = [];
    const flags: boolean[] = [];
    for (const item of items) {
      // [DLV-7] First deliveries in seq order: readQueue answers ascending seqs above the cursor.
      if (item.seq <= this.cursor) throw new RangeError(`store returned seq ${item.seq} at or below the cursor ${this.cursor}`);
      this.cursor = item.seq;
      // mutant: forget-offline-receipts — a receipt made while the device had no session is dropped, not delivered.
      if (this.mutant === 'forget-offline-receipts' && item.kind === 'receipt' && item.at <= this.startedAt) {
        this.host.store.acknowledge(this.host.device, [item.seq], now).catch(() => undefined);
        continue;
      }
      // [DLV-10] redelivered when delivered before on this or an earlier session, as far as the server knows.
      flags.push(this.host.memory.deliveredBefore(this.host.device, item.seq));
      this.host.memory.recordDelivery(this.host.device, item.seq);
      this.delivered.add(item.seq);
      const entry: InFlight = { item, firstAt: now, redeliveries: 0, dueAt: now + redeliveryDelayMs(1, this.host.limits) };
      if (item.kind === 'message' && !flags[flags.length - 1]) this.host.metrics.deliveryLatency.observe(Math.max(0, now - item.serverTime) / 1000);
      this.inFlight.set(item.seq, entry);
      entries.push(entry);
    }
    // mutant: deliver-out-of-order — the batch goes out newest first, one item per frame.
    if (this.mutant === 'deliver-out-of-order') for (let i = entries.length - 1; i >= 0; i--) this.writeDeliver([entries[i]!], [flags[i]!]);
    else this.writeDeliver(entries, flags);
    // mutant: delete-before-ack — the items leave the queue now, as if the recipient had acknowledged them.
    if (this.mutant === 'delete-before-ack') {
      this.host.store.acknowledge(this.host.device, entries.map((entry) => entry.item.seq), now, this.host.limits.maxReceiptIds).catch(() => undefined);
    }
    // [DLV-27] queue_empty as soon as every item of B still queued has been delivered.
    if (!this.queueEmptySent && this.cursor >= this.backlogLast) this.sendQueueEmpty();
    this.armTimer();
  }

  private sendQueueEmpty(): void {
    // [DLV-25] Exactly one per session; [DLV-26] lastSeq is the highest seq of B, 0 when B was empty.
    this.queueEmptySent = true;
    // mutant: skip-queue-empty — the marker is never sent.
    if (this.mutant === 'skip-queue-empty') return;
    this.host.writer.send({ type: 'queue_empty', lastSeq: this.backlogLast });
  }

  /** Writes entries as deliver frames of at most maxDeliverBatch items and maxFrameBytes bytes [DLV-6]. */
  private writeDeliver(entries: InFlight[], redelivered: boolean[]): void {
    const { maxDeliverBatch, maxFrameBytes } = this.host.limits;
    let batch: string[] = [];
    let bytes = FRAME_OVERHEAD;
    const flush = () => {
      if (batch.length === 0) return;
      this.host.writer.sendText('deliver', `{"type":"deliver","items":[${batch.join(',')}]}`);
      this.host.metrics.deliverBatch.observe(batch.length);
      batch = [];
      bytes = FRAME_OVERHEAD;
    };
    // Counted per frame rather than per item: the metric's label handling would otherwise cost more than the item.
    const counts = new Map<string, { kind: string; redelivered: string; n: number }>();
    for (let index = 0; index < entries.length; index++) {
      const entry = entries[index]!;
      const flag = redelivered[index] ?? false;
      const text = JSON.stringify(toWire(entry.item, flag));
      const length = text.length; // JSON.stringify escapes nothing outside ASCII in these items: base64, ids, numbers
      const size = (length === Buffer.byteLength(text) ? length : Buffer.byteLength(text)) + (batch.length > 0 ? 1 : 0);
      if (batch.length >= maxDeliverBatch || (batch.length > 0 && bytes + size > maxFrameBytes)) flush();
      // [LIM-3] guarantees that one item of the largest envelope fits a frame; anything else would be a store fault.
      if (batch.length === 0 && FRAME_OVERHEAD + size > maxFrameBytes) {
        this.host.log.error('delivery.item_too_large', { seq: entry.item.seq, bytes: size });
      }
      bytes += batch.length > 0 ? size : size;
      batch.push(text);
      const key = `${entry.item.kind}/${flag}`;
      const count = counts.get(key);
      if (count) count.n++;
      else counts.set(key, { kind: entry.item.kind, redelivered: String(flag), n: 1 });
    }
    flush();
    for (const { kind, redelivered: flag, n } of counts.values()) this.host.metrics.itemsDelivered.inc({ kind, redelivered: flag }, n);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Redelivery [DLV-21] [DLV-22] [DLV-23]: one timer per session, armed for the earliest due item.

  private armTimer(): void {
    if (this.stopped) return;
    // mutant: no-redelivery — no item is ever due again on this session.
    if (this.mutant === 'no-redelivery') return;
    let next = Infinity;
    for (const entry of this.inFlight.values()) if (entry.dueAt < next) next = entry.dueAt;
    if (next === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      void this.redeliverDue();
    }, Math.max(0, next - this.host.now()));
  }

  private async redeliverDue(): Promise<void> {
    if (this.state === 'stopped' || this.redelivering) return;
    this.redelivering = true;
    try {
      // Flow control: a redelivery waits for the buffer to drain (late, which DLV-23 tolerates, never early).
      if (this.host.writer.congested) await this.host.writer.whenDrained();
      if (this.stopped) return;
      const now = this.host.now();
      // [DLV-22] Only items whose redelivery is due; a timer that fires early finds none and re-arms.
      const due = [...this.inFlight.values()].filter((entry) => entry.dueAt <= now).sort((a, b) => a.item.seq - b.item.seq);
      for (const entry of due) {
        entry.redeliveries += 1;
        entry.dueAt = now + redeliveryDelayMs(entry.redeliveries + 1, this.host.limits);
      }
      // [DLV-10] Every redelivery carries redelivered: true.
      if (due.length > 0) this.writeDeliver(due, due.map(() => true));
    } finally {
      this.redelivering = false;
      this.armTimer();
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Acknowledgement (section 4.6)

  /**
   * Applies an ack frame that passed its schema. Resolves the non-fatal error to answer, or undefined. Rejects with
   * the store's error when the removal could not be made (the caller maps StoreUnavailableError).
   */
  /**
   * Validates and applies an `ack`. The answer (an error, or undefined) is known at once; the store's removal is
   * issued at once, so later frames see its effect [TRN-34], and becomes durable in the background [DLV-16]: the
   * next frame does not wait for the disk. `onStoreFailure` hears of a removal that could not be made durable.
   */
  acknowledge(frame: AckFrame, onStoreFailure: (error: unknown) => void): ProtocolError | undefined {
    const seqs = frame.seqs ?? [];
    // [DLV-40] (1) frame constraints: [DLV-13] more than maxAckBatch seqs is INVALID_FRAME.
    if (seqs.length > this.host.limits.maxAckBatch) {
      return new ProtocolError('INVALID_FRAME', `seqs has ${seqs.length} elements, more than maxAckBatch (${this.host.limits.maxAckBatch})`);
    }
    // [DLV-40] (2) [DLV-12] upTo above the highest seq delivered on this session, or nothing delivered yet.
    if (frame.upTo !== undefined && (this.delivered.isEmpty || frame.upTo > this.delivered.max)) {
      return new ProtocolError('INVALID_ACK', `upTo ${frame.upTo} is above the highest seq delivered on this session`);
    }
    // [DLV-12] Seqs are judged per session: a seq of any other queue, or not delivered here, acknowledges nothing.
    const undelivered = seqs.find((seq) => !this.delivered.has(seq));
    if (undelivered !== undefined) return new ProtocolError('INVALID_ACK', `seq ${undelivered} was not delivered on this session`);

    const listed = new Set(seqs);
    const targets: InFlight[] = [];
    // [DLV-11] upTo: every item still in flight up to it; seqs: exactly the listed ones. [DLV-14] Items already
    // acknowledged or expired are not in flight any more: a no-op, and repeated seqs count once.
    for (const [seq, entry] of this.inFlight) {
      if ((frame.upTo !== undefined && seq <= frame.upTo) || listed.has(seq)) targets.push(entry);
    }
    if (targets.length === 0) return undefined;
    // [DLV-15] The window slots free at once; the removal becomes durable when the store resolves.
    for (const entry of targets) this.inFlight.delete(entry.item.seq);
    this.armTimer();
    this.wake();
    const now = this.host.now();
    for (const entry of targets) this.host.metrics.ackLatency.observe(Math.max(0, now - entry.firstAt) / 1000);
    this.host.store.acknowledge(this.host.device, targets.map((entry) => entry.item.seq), now, this.host.limits.maxReceiptIds).catch((error: unknown) => {
      // Nothing was removed: the items are in flight again. The window can be exceeded by what was delivered in the
      // meantime, only on this failure path; no new item goes out until acks bring it back under [DLV-8].
      if (!this.stopped) {
        for (const entry of targets) this.inFlight.set(entry.item.seq, entry);
        this.armTimer();
      }
      onStoreFailure(error);
    });
    return undefined;
  }
}

/** The wire shape of a queue item [MSG-13] (section 4.5); `redelivered` is omitted on a first delivery [DLV-10]. */
function toWire(item: QueueItem, redelivered: boolean): MessageItem | ReceiptItem {
  const flag = redelivered ? { redelivered: true } : {};
  if (item.kind === 'message') {
    return {
      seq: item.seq,
      kind: 'message',
      messageId: item.messageId,
      from: { userId: item.from.userId, deviceId: item.from.deviceId },
      envelope: { type: item.envelope.type, body: item.envelope.body },
      serverTime: item.serverTime,
      ...flag,
    };
  }
  return {
    seq: item.seq,
    kind: 'receipt',
    status: item.status,
    from: { userId: item.from.userId, deviceId: item.from.deviceId },
    messageIds: item.messageIds as ReceiptItem['messageIds'],
    at: item.at,
    ...flag,
  };
}

/** Roughly the bytes an item takes in a deliver frame: its envelope or messageIds plus the members around them. */
function wireSizeEstimate(item: QueueItem): number {
  return item.kind === 'message' ? item.envelope.body.length + 256 : 256 + item.messageIds.reduce((n, id) => n + id.length + 3, 0);
}

/** The leading items whose estimated wire size fits `budget` bytes; at least the first. */
function withinBudget(items: QueueItem[], budget: number): QueueItem[] {
  let left = budget;
  for (let i = 0; i < items.length; i++) {
    left -= wireSizeEstimate(items[i]!);
    if (left < 0) return items.slice(0, Math.max(1, i));
  }
  return items;
}
