// What one worker process counts while it runs, and the snapshots it sends to the coordinator: counters, errors by
// kind, and latency histograms (whole-run ones for the report, per-interval ones for the progress line).
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
  private marks = { sendToAck: 0, sendToDelivery: 0, connect: 0 };

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

  /** A snapshot for the progress line; a histogram travels only when it changed since the previous snapshot. */
  snapshot(): StatsSnapshot {
    const changed = (name: 'sendToAck' | 'sendToDelivery' | 'connect') => {
      const h = this[name];
      if (h.count === this.marks[name]) return '';
      this.marks[name] = h.count;
      return h.encode();
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
    };
  }
}
