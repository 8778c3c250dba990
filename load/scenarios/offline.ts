// offline: fill the queues of offline devices, then connect them all at once and time the drain. N pairs; each
// sender (online) sends its share of --messages to its recipient, which has never connected, at the total --rate
// (open loop). Once every send is answered, all recipients connect at one instant; the drain time of a device runs
// from that instant to its queue_empty (DLV-27) and to its last message; the run's drain time is the longest.
import { runOpenLoop, Timetable } from '../schedule.ts';
import { until, waitUntil, type Scenario, type WorkerContext } from '../scenario.ts';
import { connectAll } from './pairs.ts';

async function worker(ctx: WorkerContext): Promise<void> {
  const { assignment, stats } = ctx;
  const users = await ctx.registerUsers(2 * assignment.count, 'o');
  const pairs = Math.floor(users.length / 2);
  const senders = Array.from({ length: pairs }, (_, k) => ctx.peer(users[2 * k]!));
  const recipients = Array.from({ length: pairs }, (_, k) => ctx.peer(users[2 * k + 1]!));
  await ctx.barrier('prepared');
  await connectAll(ctx, senders);
  const fill = await ctx.barrier('connected');
  const counters = new Array<number>(pairs).fill(0);
  // The fill is bounded by the message count; its rate may stretch it past --duration, the setup deadline bounds it.
  const timetable = new Timetable({ rate: assignment.rate, startAt: fill.at, durationMs: Math.max(assignment.options.durationMs, (assignment.messages / assignment.rate) * 1000 + 1), maxCount: pairs > 0 ? assignment.messages : 0 });
  const loop = runOpenLoop(timetable, (i, scheduledAt) => {
    const k = i % pairs;
    const to = recipients[k]!.credentials;
    senders[k]!.send(assignment.first + k, counters[k]!++, scheduledAt, { userId: to.userId, deviceId: to.deviceId });
  });
  await loop.done;
  await waitUntil(() => senders.every((s) => s.outstanding === 0), fill.at + assignment.options.durationMs + assignment.options.drainTimeoutMs);
  ctx.figures['queued'] = stats.acked;
  const drain = await ctx.barrier('filled');
  // Every worker connects its recipients at the same instant, the one the coordinator set.
  await until(drain.at);
  const deadline = drain.at + assignment.options.drainTimeoutMs;
  const drainHistogram = stats.histogram('drain');
  await Promise.all(
    recipients.map(async (peer) => {
      stats.attempted++;
      try {
        await peer.connect();
        stats.accepted++;
        stats.connect.record(performance.now() - drain.at);
        await peer.queueEmpty();
        if (peer.queueEmptyAt !== undefined) drainHistogram.record(peer.queueEmptyAt - drain.at);
      } catch (error) {
        stats.error(`connect:${(error as { code?: string }).code ?? 'ERROR'}`);
      }
    }),
  );
  const delivered = await waitUntil(() => ctx.accounting.deliveredAll(), deadline);
  ctx.figures['maxDrainMs'] = Math.round(performance.now() - drain.at);
  await waitUntil(() => ctx.accounting.senderComplete(), deadline);
  ctx.figures['drainTimedOut'] = delivered ? 0 : 1;
  await ctx.barrier('drained');
  await Promise.all([...senders, ...recipients].map((p) => p.close()));
}

export const offlineScenario: Scenario = {
  name: 'offline',
  summary: 'fill the queues of N offline devices with --messages, then connect them at once and time the drain',
  sessionsPerUnit: 2,
  extraSessions: 0,
  worker,
};
