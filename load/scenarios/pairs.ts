// pairs: many sender/recipient pairs exchanging messages at a fixed total rate, open loop: message i of a worker is
// due at i / rate seconds and goes to pair i mod P. Both devices of a pair live in the same worker. Latency runs
// from the scheduled time to send_ok (send-to-ACK) and to the recipient's first delivery (send-to-delivery). After
// the duration the run drains: it waits, up to --drain-timeout, for every accepted message's delivered receipt.
// fanin (fanin.ts) is the same loop with one recipient device for all senders.
import type { Credentials } from '../../reference-client/wire/connection.ts';
import type { Peer } from '../peer.ts';
import { runOpenLoop, Timetable } from '../schedule.ts';
import { waitUntil, type Scenario, type WorkerContext } from '../scenario.ts';

/** Opens the sessions of `peers` (at most 64 handshakes at once) and waits for their queue_empty (DLV-25). */
export async function connectAll(ctx: WorkerContext, peers: Peer[]): Promise<Peer[]> {
  const open: Peer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(64, peers.length) }, async () => {
      while (next < peers.length) {
        const peer = peers[next++]!;
        ctx.stats.attempted++;
        const started = performance.now();
        try {
          await peer.connect();
          ctx.stats.accepted++;
          ctx.stats.connect.record(performance.now() - started);
          open.push(peer);
        } catch (error) {
          ctx.stats.error(`connect:${(error as { code?: string }).code ?? 'ERROR'}`);
        }
      }
    }),
  );
  await Promise.all(open.map((p) => p.queueEmpty()));
  return open;
}

/**
 * Runs the open loop: senders[k] sends to recipients[k] (or the one recipient of a fan-in); the stream of sender k
 * is the run-wide unit index first + k.
 */
export async function runMessaging(ctx: WorkerContext, senders: Peer[], recipientOf: (k: number) => Credentials): Promise<void> {
  const { assignment } = ctx;
  const go = await ctx.barrier('connected');
  const counters = new Array<number>(senders.length).fill(0);
  const timetable = new Timetable({ rate: assignment.rate, startAt: go.at, durationMs: assignment.options.durationMs });
  const loop = runOpenLoop(timetable, (i, scheduledAt) => {
    const k = i % senders.length;
    const to = recipientOf(k);
    senders[k]!.send(assignment.first + k, counters[k]!++, scheduledAt, { userId: to.userId, deviceId: to.deviceId });
  });
  await loop.done;
  const drained = await ctx.barrier('loaded');
  const deadline = drained.at + assignment.options.drainTimeoutMs;
  const complete = await waitUntil(() => senders.every((s) => s.outstanding === 0) && ctx.accounting.senderComplete(), deadline);
  ctx.figures['drainTimedOut'] = complete ? 0 : 1;
  ctx.figures['maxDrainMs'] = Math.round(performance.now() - drained.at);
  await ctx.barrier('drained');
}

async function worker(ctx: WorkerContext): Promise<void> {
  const n = ctx.assignment.count;
  const users = await ctx.registerUsers(2 * n, 'p');
  const pairs = Math.floor(users.length / 2);
  const senders = Array.from({ length: pairs }, (_, k) => ctx.peer(users[2 * k]!));
  const recipients = Array.from({ length: pairs }, (_, k) => ctx.peer(users[2 * k + 1]!));
  await ctx.barrier('prepared');
  await connectAll(ctx, [...recipients, ...senders]);
  await runMessaging(ctx, senders, (k) => recipients[k]!.credentials);
  await Promise.all([...senders, ...recipients].map((p) => p.close()));
}

export const pairsScenario: Scenario = {
  name: 'pairs',
  summary: 'N sender/recipient pairs exchange messages at a fixed total --rate (open loop)',
  sessionsPerUnit: 2,
  extraSessions: 0,
  worker,
};
