// fanin: many senders, one recipient device. Worker 0 registers the recipient and holds its session; every worker's
// senders send to it at their share of the total rate (open loop, as in pairs.ts). The recipient's single window
// (section 6.4) bounds the delivery rate, which is what this scenario measures.
import type { Credentials } from '../../reference-client/wire/connection.ts';
import type { Peer } from '../peer.ts';
import type { Scenario, WorkerContext } from '../scenario.ts';
import { connectAll, runMessaging } from './pairs.ts';

async function worker(ctx: WorkerContext): Promise<void> {
  const senders = (await ctx.registerUsers(ctx.assignment.count, 'f')).map((c) => ctx.peer(c));
  let recipient: Peer | undefined;
  if (ctx.assignment.worker === 0) {
    const [credentials] = await ctx.registerUsers(1, 'r');
    if (!credentials) throw new Error('cannot register the fan-in recipient');
    recipient = ctx.peer(credentials);
  }
  const go = await ctx.barrier('prepared', recipient ? { recipient: { userId: recipient.credentials.userId, deviceId: recipient.credentials.deviceId, secret: '' } } : {});
  const target = go.imports['recipient'] as Credentials | undefined;
  if (!target) throw new Error('worker 0 exported no fan-in recipient');
  await connectAll(ctx, recipient ? [recipient, ...senders] : senders);
  await runMessaging(ctx, senders, () => target);
  await Promise.all([...senders, ...(recipient ? [recipient] : [])].map((p) => p.close()));
}

export const faninScenario: Scenario = {
  name: 'fanin',
  summary: 'N senders send to one recipient device at a fixed total --rate (open loop)',
  sessionsPerUnit: 1,
  extraSessions: 1,
  worker,
};
