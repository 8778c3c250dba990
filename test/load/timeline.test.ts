// The per-second timeline of a load run (load/timeline.ts), fed by hand-made worker snapshots: seconds are added up
// across workers, closed only once every running worker reported them, skipped seconds count nothing, the open
// sessions of a worker that skipped a second carry over, and the counts add up to the last snapshots' totals.
import t from 'tap';
import { LatencyHistogram } from '../../load/histogram.ts';
import type { StatsSnapshot } from '../../load/stats.ts';
import { Timeline } from '../../load/timeline.ts';

function snapshot(tick: number, counts: { open?: number; sent?: number; acked?: number; delivered?: number; errors?: Record<string, number> }, ack: number[] = [], delivery: number[] = []): StatsSnapshot {
  const encode = (values: number[]) => {
    if (values.length === 0) return '';
    const h = new LatencyHistogram();
    for (const v of values) h.record(v);
    return h.encode();
  };
  return {
    open: counts.open ?? 0,
    attempted: 0,
    accepted: 0,
    sent: counts.sent ?? 0,
    acked: counts.acked ?? 0,
    delivered: counts.delivered ?? 0,
    receipts: 0,
    keepalives: 0,
    registered: 0,
    errors: counts.errors ?? {},
    sendToAck: '',
    sendToDelivery: '',
    connect: '',
    tick,
    intervalAck: encode(ack),
    intervalDelivery: encode(delivery),
  };
}

t.test('two workers: seconds close when both reported, add up, and carry open sessions over a skipped second', async (t) => {
  const timeline = new Timeline(2);
  timeline.add(0, snapshot(1, { open: 5, sent: 10, acked: 9, delivered: 8 }, [1, 2, 3], [4]));
  t.equal(timeline.entries.length, 0, 'second 1 waits for worker 1');
  timeline.add(1, snapshot(1, { open: 7, sent: 20, acked: 20, delivered: 20 }, [10], [20]));
  t.equal(timeline.entries.length, 1);
  t.match(timeline.entries[0], { t: 1000, open: 12, sent: 30, accepted: 29, delivered: 28, errors: 0 });
  t.equal(timeline.entries[0]!.ackP50, 2, 'p50 of 1, 2, 3, 10');
  t.ok(Math.abs(timeline.entries[0]!.ackP99! - 10) <= 0.01, "p99 is 10 ms within the histogram's 3 significant digits");
  // Worker 1 stalls through second 2 and reports 3; worker 0 reports 2 and 3.
  timeline.add(1, snapshot(3, { open: 6, sent: 50, acked: 50, delivered: 50, errors: { 'send:X': 2 } }));
  t.equal(timeline.entries.length, 1, 'second 2 waits for worker 0');
  timeline.add(0, snapshot(2, { open: 5, sent: 15, acked: 15, delivered: 15 }));
  t.equal(timeline.entries.length, 2);
  t.match(timeline.entries[1], { t: 2000, open: 12, sent: 5, accepted: 6, delivered: 7, errors: 0, ackP50: null, deliveryP99: null }, 'worker 1 counted nothing in second 2, its open sessions carried over');
  timeline.add(0, snapshot(3, { open: 0, sent: 15, acked: 15, delivered: 15 }));
  t.match(timeline.entries[2], { t: 3000, open: 6, sent: 30, accepted: 30, delivered: 30, errors: 2 });
  // Worker 0 is done; worker 1's result closes second 4.
  timeline.finish(0);
  timeline.add(1, snapshot(4, { open: 0, sent: 60, acked: 60, delivered: 60, errors: { 'send:X': 2 } }));
  timeline.finish(1);
  const entries = timeline.close();
  t.same(entries.map((e) => e.t), [1000, 2000, 3000, 4000]);
  const sum = (key: 'sent' | 'accepted' | 'delivered' | 'errors') => entries.reduce((n, e) => n + e[key], 0);
  t.equal(sum('sent'), 15 + 60);
  t.equal(sum('accepted'), 15 + 60);
  t.equal(sum('delivered'), 15 + 60);
  t.equal(sum('errors'), 2);
  t.equal(entries[3]!.open, 0);
});

t.test('a worker that fails holds no second open; a late snapshot counts in the next open second', async (t) => {
  const timeline = new Timeline(2);
  timeline.add(0, snapshot(1, { sent: 1 }));
  timeline.add(0, snapshot(2, { sent: 2 }));
  timeline.finish(1);
  t.same(timeline.entries.map((e) => e.sent), [1, 1]);
  const late = new Timeline(1);
  late.add(0, snapshot(2, { sent: 4 }));
  late.add(0, snapshot(1, { sent: 5 }));
  t.same(late.close().map((e) => [e.t, e.sent]), [[1000, 0], [2000, 4], [3000, 1]]);
  t.throws(() => late.add(3, snapshot(1, {})), RangeError);
});
