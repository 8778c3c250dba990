// connections: ramp up N authenticated sessions at a fixed rate (open loop: attempt i is scheduled at i / rate
// seconds whatever happened to the earlier ones), hold them with keepalives (KAL-6) until the duration ends, and
// report how many the server accepted and still held, the connect latency (scheduled attempt to `welcome`) and
// errors by kind.
import { WireError } from '../../reference-client/wire/connection.ts';
import type { Peer } from '../peer.ts';
import { runOpenLoop, Timetable } from '../schedule.ts';
import { until, type Scenario, type WorkerContext } from '../scenario.ts';

async function worker(ctx: WorkerContext): Promise<void> {
  const { assignment, stats } = ctx;
  const users = await ctx.registerUsers(assignment.count, 'c');
  const go = await ctx.barrier('prepared');
  const end = go.at + assignment.options.durationMs;
  const peers: Peer[] = [];
  const attempts: Array<Promise<void>> = [];
  const timetable = new Timetable({ rate: assignment.rate, startAt: go.at, durationMs: assignment.options.durationMs, maxCount: users.length });
  const loop = runOpenLoop(timetable, (i, scheduledAt) => {
    const peer = ctx.peer(users[i]!);
    peers.push(peer);
    stats.attempted++;
    attempts.push(
      peer.connect().then(
        () => {
          stats.accepted++;
          stats.connect.record(performance.now() - scheduledAt);
        },
        (error: unknown) => stats.error(`connect:${error instanceof WireError ? (error.frame?.type === 'error' ? error.frame.code : error.code) : 'ERROR'}`),
      ),
    );
  });
  await loop.done;
  await until(end);
  ctx.figures['held'] = peers.filter((p) => p.isOpen).length;
  ctx.figures['notAttempted'] = users.length - stats.attempted;
  await ctx.barrier('held');
  await Promise.all(peers.map((p) => p.close()));
  await Promise.allSettled(attempts);
}

export const connectionsScenario: Scenario = {
  name: 'connections',
  summary: 'ramp N authenticated idle sessions at --rate per second and hold them for --duration',
  sessionsPerUnit: 1,
  extraSessions: 0,
  worker,
};
