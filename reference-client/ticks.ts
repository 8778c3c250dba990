// The ticks of messages this device sent: pending (in the outbox) → sent (send_ok) → delivered (a delivered
// receipt) → read (a read receipt). Ticks only move forward; a read receipt implies delivery, and receipts are applied
// idempotently, ignoring messageIds we do not know [RCP-15]. Persisted as an append-only log, bounded (MAX_TICKS).
import type { Tick } from './client-api.ts';
import { LOG_COMPACTION_FACTOR, MAX_TICKS } from './constants.ts';
import { AppendLog } from './state/atomic-file.ts';

const RANK: Record<Tick, number> = { pending: 0, sent: 1, delivered: 2, read: 3 };
const isTick = (value: unknown): value is Tick => typeof value === 'string' && value in RANK;

export class TickStore {
  private readonly ticks = new Map<string, Tick>();
  private readonly log: AppendLog;

  constructor(
    file: string,
    private readonly max = MAX_TICKS,
  ) {
    this.log = new AppendLog(file);
    for (const entry of this.log.load()) {
      if (Array.isArray(entry) && typeof entry[0] === 'string' && isTick(entry[1])) this.set(entry[0], entry[1]);
    }
  }

  get(messageId: string): Tick | undefined {
    return this.ticks.get(messageId);
  }

  /** Moves a known message's tick forward (or records a new message as pending); true when it changed. */
  advance(messageId: string, tick: Tick): boolean {
    const current = this.ticks.get(messageId);
    if (current === undefined && tick !== 'pending') return false; // not ours, or forgotten [RCP-15]
    if (current !== undefined && RANK[current] >= RANK[tick]) return false;
    this.log.append([messageId, tick]);
    this.set(messageId, tick);
    if (this.log.length > this.max * LOG_COMPACTION_FACTOR) this.log.rewrite([...this.ticks]);
    return true;
  }

  private set(messageId: string, tick: Tick): void {
    const current = this.ticks.get(messageId);
    if (current !== undefined && RANK[current] >= RANK[tick]) return;
    this.ticks.set(messageId, tick);
    while (this.ticks.size > this.max) this.ticks.delete(this.ticks.keys().next().value as string);
  }

  close(): void {
    this.log.close();
  }
}
