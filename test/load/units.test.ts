// Unit tests of the load tool's parts: the HDR histogram against a sorted array, the open-loop timetable, the
// accounting of lost, duplicated and reordered messages, and address ranges.
import t from 'tap';
import { Accounting, messageIdOf, parseMessageId } from '../../load/accounting.ts';
import { parseAddressList, splitAddresses } from '../../load/addresses.ts';
import { LatencyHistogram } from '../../load/histogram.ts';
import { runOpenLoop, Timetable } from '../../load/schedule.ts';
import { decodeBody, encodeBody } from '../../load/peer.ts';
import { seededRandom } from '../lib/seeded-random.ts';

t.test('histogram percentiles match a sorted array within 0.1 %, and merged histograms equal one', async (t) => {
  const seed = 20240607;
  const random = seededRandom(seed);
  const values = Array.from({ length: 20_000 }, () => Math.round(Math.exp(random() * 10) * 1000) / 1000);
  const whole = new LatencyHistogram();
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  values.forEach((v, i) => {
    whole.record(v);
    (i % 2 ? a : b).record(v);
  });
  const sorted = [...values].sort((x, y) => x - y);
  for (const p of [50, 90, 99, 99.9, 100]) {
    const exact = sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
    const got = whole.at(p);
    t.ok(Math.abs(got - exact) <= exact * 0.001 + 0.001, `p${p}: ${got} vs ${exact} (seed ${seed})`);
  }
  const merged = LatencyHistogram.decode(a.encode());
  merged.merge(LatencyHistogram.decode(b.encode()));
  t.same(merged.percentiles(), whole.percentiles());
  t.equal(new LatencyHistogram().percentiles().count, 0);
});

t.test('the timetable fixes send times in advance; the open loop hands each its scheduled time', async (t) => {
  const table = new Timetable({ rate: 100, startAt: 1000, durationMs: 1000 });
  t.equal(table.count, 100);
  t.equal(table.timeOf(0), 1000);
  t.equal(table.timeOf(10), 1100);
  t.equal(table.dueBy(999), 0);
  t.equal(table.dueBy(1000), 1);
  t.equal(table.dueBy(1095), 10);
  t.equal(table.dueBy(5000), 100);
  t.equal(new Timetable({ rate: 100, startAt: 0, durationMs: 1000, maxCount: 7 }).count, 7);
  // A stalled clock: nothing is due, then everything at once, each with its own scheduled time (no omission).
  let now = 0;
  const seen: Array<[number, number]> = [];
  const loop = runOpenLoop(new Timetable({ rate: 1000, startAt: 0, durationMs: 10 }), (i, at) => seen.push([i, at]), () => now);
  now = 50;
  t.equal(await loop.done, 10);
  t.same(seen.map(([i]) => i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.same(seen.map(([, at]) => at), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.throws(() => new Timetable({ rate: 0, startAt: 0, durationMs: 1 }), RangeError);
});

t.test('accounting counts a lost, a duplicated and a reordered message, and missing receipts', async (t) => {
  const sender = new Accounting();
  const recipient = new Accounting();
  for (let n = 0; n < 6; n++) {
    sender.sent(1, n);
    sender.accepted(1, n);
  }
  // n=2 is never delivered (lost); n=4 arrives before n=3 (reordered); n=1 arrives again as another item (duplicated);
  // n=0 is redelivered with its own seq (allowed).
  recipient.delivered(1, 0, 10);
  recipient.delivered(1, 1, 11);
  recipient.delivered(1, 0, 10);
  recipient.delivered(1, 4, 14);
  recipient.delivered(1, 3, 13);
  recipient.delivered(1, 5, 15);
  recipient.delivered(1, 1, 16);
  for (const n of [0, 1, 3, 4]) sender.receipt(1, n);
  const total = new Accounting();
  total.merge(sender.serialize());
  total.merge(recipient.serialize());
  const s = total.summary();
  t.equal(s.lost, 1);
  t.same(s.lostExamples, ['1/2']);
  t.equal(s.duplicated, 1);
  t.equal(s.reordered, 1);
  t.equal(s.redelivered, 1);
  t.equal(s.receiptsMissing, 1, 'n=5 was delivered but has no receipt');
  t.equal(s.accepted, 6);
  t.equal(s.delivered, 5);
  t.notOk(sender.senderComplete());
  t.same(parseMessageId('abcd1234', messageIdOf('abcd1234', 7, 42)), { stream: 7, n: 42 });
  t.equal(parseMessageId('abcd1234', 'other-7-42'), undefined);
  t.match(messageIdOf('abcd1234', 7, 42), /^[A-Za-z0-9_-]{8,64}$/);
});

t.test('a send refused for sure and then delivered is unexpected; one answered TEMPORARILY_UNAVAILABLE is not [MSG-18]', async (t) => {
  const sender = new Accounting();
  const recipient = new Accounting();
  for (let n = 0; n < 4; n++) sender.sent(2, n);
  sender.refused(2, 0); // e.g. RATE_LIMITED: the server did not take it
  sender.refused(2, 1, true); // TEMPORARILY_UNAVAILABLE: it may have
  sender.refused(2, 2, true);
  sender.refused(2, 3);
  recipient.delivered(2, 0, 1);
  recipient.delivered(2, 1, 2);
  const total = new Accounting();
  total.merge(sender.serialize());
  total.merge(recipient.serialize());
  total.merge(recipient.serialize()); // a half merged twice changes nothing but counters it carries (none here)
  const s = total.summary();
  t.equal(s.refused, 4, 'every error answer is a refusal');
  t.equal(s.indeterminate, 2, 'two of them TEMPORARILY_UNAVAILABLE');
  t.equal(s.unexpected, 1, 'only the delivery after a definite refusal is unexpected');
  t.equal(s.lost, 0, 'an indeterminate send that was not delivered is not lost');
  t.equal(s.delivered, 2);
  t.ok(sender.senderComplete(), 'every send was answered');
});

t.test('address ranges and their split over workers; the body carries the scheduled time', async (t) => {
  t.same(parseAddressList('127.0.0.2-127.0.0.4,127.0.1.1'), ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.1.1']);
  t.throws(() => parseAddressList('127.0.0.9-127.0.0.2'), RangeError);
  t.throws(() => parseAddressList('nope'), RangeError);
  t.same(splitAddresses(['a', 'b', 'c', 'd'], 2), [['a', 'b'], ['c', 'd']]);
  t.same(splitAddresses(['a'], 2), [['a'], ['a']]);
  t.equal(decodeBody(encodeBody(1717171717171.125, 64)), 1717171717171.125);
  t.equal(Buffer.from(encodeBody(1, 64), 'base64').length, 64);
});
