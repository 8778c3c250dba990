// The per-second timeline of a load run: what was sent, accepted and delivered in each second, how many sessions
// were open at its end, and the latency percentiles of that second alone.
//
// Both halves count seconds on one clock: the coordinator's start (an epoch time every process on the machine
// shares). A worker snapshots its stats at the end of each second k of that clock (StatsTicker) and tags the
// snapshot with k; its counters are cumulative and its interval histograms hold the latencies since the previous
// snapshot. The coordinator (Timeline) adds the workers' snapshots of second k into one entry, and closes the entry
// once every worker still running has reported k or later. A worker whose event loop stalls past a second skips
// the ticks it missed, so its next snapshot covers several seconds and the skipped entries count nothing of it:
// the timeline shows what the tool saw, when it saw it. A worker's final snapshot (its result) closes the second
// in progress, so the counts of all entries add up to the run's totals.
import { LatencyHistogram } from './histogram.ts';
import type { StatsSnapshot } from './stats.ts';

/** The length of one timeline entry, and the period of the workers' stats snapshots. */
export const TIMELINE_INTERVAL_MS = 1000;

/** One second of a run (the report's `timeline`; load/README.md). */
export interface TimelineEntry {
  /** The end of the second, in ms since the run started (the last entry may cover less than a second). */
  t: number;
  /** Sessions open at the end of the second. */
  open: number;
  /** Messages sent, accepted (send_ok) and delivered (first delivery) in the second. */
  sent: number;
  accepted: number;
  delivered: number;
  /** Errors of every kind in the second. */
  errors: number;
  /** Percentiles (ms, from the scheduled time) of the send → send_ok and send → delivery latencies recorded in the
   *  second; null when there were none. */
  ackP50: number | null;
  ackP99: number | null;
  deliveryP50: number | null;
  deliveryP99: number | null;
}

/**
 * The worker half: calls `onTick(k)` at the end of each second k (1, 2, …) of the coordinator's clock, never twice
 * for one k; `finalTick()` names the second in progress, for the last snapshot.
 */
export class StatsTicker {
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The coordinator's start on this process's performance.now() scale. */
  private readonly origin: number;

  constructor(
    originEpoch: number,
    private readonly onTick: (tick: number) => void,
  ) {
    this.origin = originEpoch - performance.timeOrigin;
  }

  start(): void {
    const next = this.finalTick();
    this.timer = setTimeout(
      () => {
        this.last = next;
        this.onTick(next);
        this.start();
      },
      Math.max(0, this.origin + next * TIMELINE_INTERVAL_MS - performance.now()),
    );
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The second in progress: the one the next snapshot closes. */
  finalTick(): number {
    return Math.max(this.last + 1, Math.floor((performance.now() - this.origin) / TIMELINE_INTERVAL_MS) + 1);
  }
}

interface Bucket {
  sent: number;
  accepted: number;
  delivered: number;
  errors: number;
  /** Sessions open per worker, from the workers that reported this second. */
  open: Map<number, number>;
  ack: LatencyHistogram;
  delivery: LatencyHistogram;
}

interface Counters {
  sent: number;
  acked: number;
  delivered: number;
  errors: number;
}

function errorCount(snapshot: StatsSnapshot): number {
  let n = 0;
  for (const v of Object.values(snapshot.errors)) n += v;
  return n;
}

function percentile(h: LatencyHistogram, p: number): number | null {
  return h.count === 0 ? null : Math.round(h.at(p) * 1000) / 1000;
}

/** The coordinator half: adds the workers' snapshots up, second by second. */
export class Timeline {
  readonly entries: TimelineEntry[] = [];
  /** Per worker: the counters of its previous snapshot, its latest tick, whether it is done. */
  private readonly previous: Counters[];
  private readonly latestTick: number[];
  private readonly done: boolean[];
  /** Sessions open per worker as of the last closed second (carried over seconds a worker did not report). */
  private readonly open: number[];
  private readonly pending = new Map<number, Bucket>();
  private closedUpTo = 0;

  constructor(workers: number) {
    this.previous = Array.from({ length: workers }, () => ({ sent: 0, acked: 0, delivered: 0, errors: 0 }));
    this.latestTick = new Array<number>(workers).fill(0);
    this.done = new Array<boolean>(workers).fill(false);
    this.open = new Array<number>(workers).fill(0);
  }

  /** A snapshot of worker `w` (a stats message, or the stats of its result). */
  add(w: number, snapshot: StatsSnapshot): void {
    if (w < 0 || w >= this.previous.length) throw new RangeError(`no worker ${w} in this run`);
    // A second already closed (it cannot happen while workers keep their ticks in order) counts in the next one.
    const tick = Math.max(snapshot.tick, this.closedUpTo + 1, this.latestTick[w]!);
    let bucket = this.pending.get(tick);
    if (!bucket) this.pending.set(tick, (bucket = { sent: 0, accepted: 0, delivered: 0, errors: 0, open: new Map(), ack: new LatencyHistogram(), delivery: new LatencyHistogram() }));
    const before = this.previous[w]!;
    const now: Counters = { sent: snapshot.sent, acked: snapshot.acked, delivered: snapshot.delivered, errors: errorCount(snapshot) };
    bucket.sent += now.sent - before.sent;
    bucket.accepted += now.acked - before.acked;
    bucket.delivered += now.delivered - before.delivered;
    bucket.errors += now.errors - before.errors;
    bucket.open.set(w, snapshot.open);
    if (snapshot.intervalAck) bucket.ack.merge(LatencyHistogram.decode(snapshot.intervalAck));
    if (snapshot.intervalDelivery) bucket.delivery.merge(LatencyHistogram.decode(snapshot.intervalDelivery));
    this.previous[w] = now;
    this.latestTick[w] = tick;
    this.closeReady();
  }

  /** Worker `w` sends nothing more (its result is in, or it failed): it holds no second open any longer. */
  finish(w: number): void {
    this.done[w] = true;
    this.closeReady();
  }

  /** Closes every second still open (the end of the run) and returns the timeline. */
  close(): TimelineEntry[] {
    const last = Math.max(this.closedUpTo, ...this.pending.keys());
    this.closeThrough(last);
    return this.entries;
  }

  private closeReady(): void {
    let ready = Infinity;
    for (let w = 0; w < this.done.length; w++) if (!this.done[w]) ready = Math.min(ready, this.latestTick[w]!);
    this.closeThrough(ready === Infinity ? Math.max(this.closedUpTo, ...this.pending.keys()) : ready);
  }

  private closeThrough(tick: number): void {
    for (let k = this.closedUpTo + 1; k <= tick; k++) {
      const bucket = this.pending.get(k);
      this.pending.delete(k);
      if (bucket) for (const [w, n] of bucket.open) this.open[w] = n;
      this.entries.push({
        t: k * TIMELINE_INTERVAL_MS,
        open: this.open.reduce((a, b) => a + b, 0),
        sent: bucket?.sent ?? 0,
        accepted: bucket?.accepted ?? 0,
        delivered: bucket?.delivered ?? 0,
        errors: bucket?.errors ?? 0,
        ackP50: bucket ? percentile(bucket.ack, 50) : null,
        ackP99: bucket ? percentile(bucket.ack, 99) : null,
        deliveryP50: bucket ? percentile(bucket.delivery, 50) : null,
        deliveryP99: bucket ? percentile(bucket.delivery, 99) : null,
      });
      this.closedUpTo = k;
    }
  }
}
