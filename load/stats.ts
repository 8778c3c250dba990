// What one worker process counts while it runs, and the snapshots it sends to the coordinator: counters, errors by
// kind, and latency histograms (whole-run ones for the report and the progress line, per-interval ones for the
// report's per-second timeline).
import { LatencyHistogram } from './histogram.ts';

export interface StatsSnapshot {
  /** Counters since the worker started. */
  open: number;
  attempted: number;
  accepted: number;
  sent: number;
  acked: number;
  delivered: number;
  receipts: number;
  keepalives: number;
  registered: number;
  errors: Record<string, number>;
  /** The whole-run histograms, encoded, or '' when unchanged since the previous snapshot (progress line). */
  sendToAck: string;
  sendToDelivery: string;
  connect: string;
  /** The stats second this snapshot closes (load/timeline.ts): it covers the events since the previous snapshot. */
  tick: number;
  /** The latencies recorded since the previous snapshot, encoded, or '' when there were none (the timeline). */
  intervalAck: string;
  intervalDelivery: string;
}

export class WorkerStats {
  open = 0;
  attempted = 0;
  accepted = 0;
  sent = 0;
  acked = 0;
  delivered = 0;
  receipts = 0;
  keepalives = 0;
  registered = 0;
  readonly errors = new Map<string, number>();
  readonly sendToAck = new LatencyHistogram();
  readonly sendToDelivery = new LatencyHistogram();
  readonly connect = new LatencyHistogram();
  /** Extra histograms a scenario keeps (the drain times of the offline scenario). */
  readonly extra = new Map<string, LatencyHistogram>();
  /** The latencies since the previous snapshot, reset by each: one per kind, for the per-second timeline. */
  private readonly interval = { sendToAck: new LatencyHistogram(), sendToDelivery: new LatencyHistogram() };
  private marks = { sendToAck: 0, sendToDelivery: 0, connect: 0 };

  /** Records a send → send_ok latency (ms from the scheduled time) in the run's and the interval's histogram. */
  recordAck(ms: number): void {
    this.sendToAck.record(ms);
    this.interval.sendToAck.record(ms);
  }

  /** Records a send → delivery latency (ms from the scheduled time) in the run's and the interval's histogram. */
  recordDelivery(ms: number): void {
    this.sendToDelivery.record(ms);
    this.interval.sendToDelivery.record(ms);
  }

  error(kind: string): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  get errorCount(): number {
    let n = 0;
    for (const v of this.errors.values()) n += v;
    return n;
  }

  histogram(name: string): LatencyHistogram {
    let h = this.extra.get(name);
    if (!h) this.extra.set(name, (h = new LatencyHistogram()));
    return h;
  }

  /**
   * A snapshot for the progress line and the timeline, closing stats second `tick`; a whole-run histogram travels
   * only when it changed since the previous snapshot, and the interval histograms start afresh.
   */
  snapshot(tick: number): StatsSnapshot {
    const changed = (name: 'sendToAck' | 'sendToDelivery' | 'connect') => {
      const h = this[name];
      if (h.count === this.marks[name]) return '';
      this.marks[name] = h.count;
      return h.encode();
    };
    const drain = (h: LatencyHistogram) => {
      if (h.count === 0) return '';
      const text = h.encode();
      h.reset();
      return text;
    };
    return {
      open: this.open,
      attempted: this.attempted,
      accepted: this.accepted,
      sent: this.sent,
      acked: this.acked,
      delivered: this.delivered,
      receipts: this.receipts,
      keepalives: this.keepalives,
      registered: this.registered,
      errors: Object.fromEntries(this.errors),
      sendToAck: changed('sendToAck'),
      sendToDelivery: changed('sendToDelivery'),
      connect: changed('connect'),
      tick,
      intervalAck: drain(this.interval.sendToAck),
      intervalDelivery: drain(this.interval.sendToDelivery),
    };
  }
}
