// One device's queue in memory: items in seq order, each pointing at the log record that holds it.
//
// An item is visible to readers only once it is durable [DLV-4]: items are staged as `pending` when their record is
// handed to the log and made visible when the append resolves. Because the log makes records durable in append
// order, and seqs are assigned in append order, the visible items always form a prefix of the staged ones; a reader
// stops at the first pending item.
import type { EnvelopeType } from '../../../spec/index.ts';
import type { DeviceAddress, QueueItem } from '../store.ts';
import type { Lsn } from './segment-log.ts';

export interface StoredMessage {
  kind: 'message';
  seq: number;
  messageId: string;
  from: DeviceAddress;
  envelopeType: EnvelopeType;
  /** The base64 body when held in memory; undefined when evicted (read back from `lsn`). */
  body: string | undefined;
  bodyLength: number;
  serverTime: number;
  /** The log record that holds the envelope, for reading an evicted body back and for segment reclamation. */
  lsn: Lsn;
  size: number;
  pending: boolean;
  removed: boolean;
}

export interface StoredReceipt {
  kind: 'receipt';
  seq: number;
  status: 'delivered' | 'read';
  from: DeviceAddress;
  messageIds: string[];
  at: number;
  /** When the receipt was enqueued, for retention. */
  enqueuedAt: number;
  pending: boolean;
  removed: boolean;
}

export type StoredItem = StoredMessage | StoredReceipt;

export const enqueuedAtOf = (item: StoredItem): number => (item.kind === 'message' ? item.serverTime : item.enqueuedAt);

export class DeviceQueue {
  /** Items in ascending seq order; entries before `head` are all removed. */
  private items: StoredItem[] = [];
  private head = 0;
  private readonly bySeq = new Map<number, StoredItem>();
  /** The next seq to assign; never decreases, so a seq is never reused [DLV-3]. */
  nextSeq = 1;
  /** Items staged or visible and not removed: what counts against maxQueueItems. */
  private live = 0;

  get size(): number {
    return this.live;
  }

  /** Adds an item with the next seq. The caller sets `pending` and later calls `settle`. */
  push(item: StoredItem): void {
    if (item.seq < this.nextSeq) throw new RangeError(`seq ${item.seq} is not above ${this.nextSeq - 1}`);
    this.nextSeq = item.seq + 1;
    this.items.push(item);
    this.bySeq.set(item.seq, item);
    this.live++;
  }

  get(seq: number): StoredItem | undefined {
    return this.bySeq.get(seq);
  }

  /** Removes an item (acknowledged, expired, or rolled back). Returns it, or undefined when it was not there. */
  remove(seq: number): StoredItem | undefined {
    const item = this.bySeq.get(seq);
    if (!item) return undefined;
    this.bySeq.delete(seq);
    item.removed = true;
    this.live--;
    this.compact();
    return item;
  }

  /** Puts back an item removed by an acknowledgement whose record could not be made durable. */
  restore(item: StoredItem): void {
    if (this.bySeq.has(item.seq)) return;
    item.removed = false;
    this.bySeq.set(item.seq, item);
    this.live++;
    const index = this.indexAfter(item.seq - 1);
    if (this.items[index] !== item) this.items.splice(index, 0, item);
    if (index < this.head) this.head = index;
  }

  private compact(): void {
    while (this.head < this.items.length && this.items[this.head]!.removed) this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first entry with seq > afterSeq (binary search over the ascending array). */
  private indexAfter(afterSeq: number): number {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Visible items with seq > afterSeq, ascending, at most `limit`; stops at the first pending item. */
  visibleAfter(afterSeq: number, limit: number): StoredItem[] {
    const out: StoredItem[] = [];
    for (let i = this.indexAfter(afterSeq); i < this.items.length && out.length < limit; i++) {
      const item = this.items[i]!;
      if (item.removed) continue;
      if (item.pending) break;
      out.push(item);
    }
    return out;
  }

  /** The highest visible seq, 0 when no item is visible. */
  lastVisibleSeq(): number {
    let last = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      if (item.removed) continue;
      if (item.pending) break;
      last = item.seq;
    }
    return last;
  }

  /** Every item not removed, ascending (pending ones included). */
  *all(): IterableIterator<StoredItem> {
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      if (!item.removed) yield item;
    }
  }
}

export function toQueueItem(item: StoredItem, body: string): QueueItem {
  if (item.kind === 'message') {
    return {
      kind: 'message',
      seq: item.seq,
      messageId: item.messageId,
      from: { ...item.from },
      envelope: { type: item.envelopeType, body },
      serverTime: item.serverTime,
    };
  }
  return { kind: 'receipt', seq: item.seq, status: item.status, from: { ...item.from }, messageIds: [...item.messageIds], at: item.at };
}
