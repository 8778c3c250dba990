// Section 5 of PROTOCOL.md: presence subscriptions (subscribed, then one presence frame per user; online from welcome
// to the last close; offline with lastSeenAt; UNKNOWN_USER subscribes to nothing; unsubscribe and session end stop
// frames) and typing (forwarded to the peer's sessions except the sending device, never stored).
import type { PresenceFrame, ServerFrame } from '../../spec/index.ts';
import type { ConformanceCase } from '../case.ts';
import type { CaseContext } from '../context.ts';
import { must } from '../expect.ts';
import type { Session } from '../session.ts';

/** How long a case listens for a frame that must not come. */
const QUIET_MS = 400;

function presenceOf(frames: ServerFrame[], userId?: string): PresenceFrame[] {
  return frames.filter((f): f is PresenceFrame => f.type === 'presence' && (userId === undefined || f.userId === userId));
}

async function subscribe(session: Session, userIds: string[], id: string, requirementId = 'PRS-4'): Promise<void> {
  must.equal(await session.request({ type: 'subscribe_presence', id, userIds: userIds as [string, ...string[]] }, requirementId), { type: 'subscribed', id }, requirementId, `answer to subscribe_presence ${id}`);
}

function unknownUserId(ctx: CaseContext): string {
  return `nobody-${ctx.material.rng.int(1, 1e9)}`;
}

export const cases: ConformanceCase[] = [
  {
    id: '5.1/subscribe-then-presence-per-user',
    requirements: ['PRS-4', 'PRS-5', 'PRS-1', 'PRS-8'],
    level: 'must',
    title: 'subscribe_presence answers subscribed, then one presence frame per distinct user in order of first appearance',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const carol = await ctx.user();
      await ctx.connect(carol.devices[0]!);
      const a = await ctx.connect(alice.devices[0]!);
      const mark = a.received.length;
      await subscribe(a, [bob.userId, carol.userId, bob.userId], 'sp1');
      await a.until(() => (presenceOf(a.received.slice(mark).map((r) => r.frame)).length >= 2 ? true : undefined), 'PRS-4', 'two presence frames');
      await a.quiet(QUIET_MS);
      const frames = a.received.slice(mark).map((r) => r.frame).filter((f) => f.type === 'presence' || f.type === 'subscribed');
      must.equal(frames[0]?.type, 'subscribed', 'PRS-4', 'the first of subscribed and presence frames');
      const presence = presenceOf(frames);
      must.equal(presence.map((p) => [p.userId, p.status]), [[bob.userId, 'offline'], [carol.userId, 'online']], 'PRS-5', 'presence frames after subscribed');
      must.hold(!('lastSeenAt' in presence[1]!), 'PRS-8', 'no lastSeenAt with status online', presence[1]);
      // Subscribing again to a subscribed user is one subscription that still gets its presence frame (PRS-5).
      const again = a.received.length;
      await subscribe(a, [carol.userId], 'sp2');
      await a.until(() => presenceOf(a.received.slice(again).map((r) => r.frame), carol.userId)[0], 'PRS-5', 'a presence frame for the repeated subscription');
    },
  },
  {
    id: '5.1/online-until-last-session-closes',
    requirements: ['PRS-1', 'PRS-2', 'PRS-6', 'PRS-8'],
    level: 'must',
    title: 'a subscriber sees online at the first welcome, nothing while another session stays, offline with lastSeenAt at the last close',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 2 });
      const a = await ctx.connect(alice.devices[0]!);
      await subscribe(a, [bob.userId], 'sp');
      must.equal((await a.next('presence', 'PRS-4')).status, 'offline', 'PRS-1', 'bob before any session');
      const b1 = await ctx.connect(bob.devices[0]!);
      const online = await a.next('presence', 'PRS-6');
      must.equal(online, { type: 'presence', userId: bob.userId, status: 'online' }, 'PRS-6', 'presence when the first device connects');
      const b2 = await ctx.connect(bob.devices[1]!);
      await b1.close();
      must.equal(presenceOf(await a.quiet(QUIET_MS)), [], 'PRS-1', 'presence frames while another session of bob is open');
      const closedAt = Date.now();
      await b2.close();
      const offline = await a.next('presence', 'PRS-6');
      must.equal(offline.status, 'offline', 'PRS-6', 'presence when the last session closes');
      const lastSeenAt = offline.lastSeenAt;
      must.hold(typeof lastSeenAt === 'number', 'PRS-8', 'lastSeenAt with status offline', offline);
      must.hold(lastSeenAt! >= b1.welcome!.serverTime && Math.abs(lastSeenAt! - closedAt) < 5000, 'PRS-2', `lastSeenAt near the last close (${closedAt})`, lastSeenAt);
    },
  },
  {
    id: '5.1/unknown-user-subscribes-nothing',
    requirements: ['PRS-3'],
    level: 'must',
    title: 'a subscribe_presence naming an unknown user answers UNKNOWN_USER and subscribes to none of its users',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const answer = await a.request({ type: 'subscribe_presence', id: 'sp-bad', userIds: [bob.userId, unknownUserId(ctx)] }, 'PRS-3');
      must.errorFrame(answer, 'UNKNOWN_USER', 'PRS-3', 'sp-bad');
      await ctx.connect(bob.devices[0]!);
      must.equal(presenceOf(await a.quiet(QUIET_MS)), [], 'PRS-3', 'presence frames after the failed subscription');
    },
  },
  {
    id: '5.1/unsubscribe-stops-frames',
    requirements: ['PRS-9'],
    level: 'must',
    title: 'unsubscribe_presence answers unsubscribed (unknown userIds ignored) and no presence frame follows for those users',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      await subscribe(a, [bob.userId], 'sp');
      await a.next('presence', 'PRS-4');
      must.equal(await a.request({ type: 'unsubscribe_presence', id: 'us', userIds: [bob.userId, unknownUserId(ctx)] }, 'PRS-9'), { type: 'unsubscribed', id: 'us' }, 'PRS-9', 'answer to unsubscribe_presence');
      const mark = a.received.length;
      const b = await ctx.connect(bob.devices[0]!);
      await b.close();
      await a.quiet(QUIET_MS);
      must.equal(presenceOf(a.received.slice(mark).map((r) => r.frame)), [], 'PRS-9', 'presence frames after unsubscribed');
    },
  },
  {
    id: '5.1/subscriptions-end-with-session',
    requirements: ['PRS-10'],
    level: 'must',
    title: "a session's subscriptions are not carried over to the device's next session",
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const first = await ctx.connect(alice.devices[0]!);
      await subscribe(first, [bob.userId], 'sp');
      await first.next('presence', 'PRS-4');
      await first.close();
      const second = await ctx.connect(alice.devices[0]!);
      await ctx.connect(bob.devices[0]!);
      must.equal(presenceOf(await second.quiet(QUIET_MS)), [], 'PRS-10', 'presence frames on the next session');
    },
  },
  {
    id: '5.2/typing-forwarded-to-peer-sessions',
    requirements: ['PRS-11'],
    level: 'must',
    title: "typing reaches every session of the to user with from set to the sender, never the sending device itself",
    async run(ctx) {
      const alice = await ctx.user({ devices: 2 });
      const bob = await ctx.user({ devices: 2 });
      const [a1, a2] = alice.devices as [typeof alice.devices[0], typeof alice.devices[0]];
      const sa1 = await ctx.connect(a1);
      const sa2 = await ctx.connect(a2);
      const bs = [await ctx.connect(bob.devices[0]!), await ctx.connect(bob.devices[1]!)];
      const from = { userId: a1.userId, deviceId: a1.deviceId };
      sa1.sendRaw({ type: 'typing', to: bob.userId, state: 'started' });
      for (const b of bs) must.equal(await b.next('typing', 'PRS-11'), { type: 'typing', from, state: 'started' }, 'PRS-11', `typing at ${b.label}`);
      // To its own user: the other device gets it, the sending device does not.
      sa1.sendRaw({ type: 'typing', to: alice.userId, state: 'stopped' });
      must.equal(await sa2.next('typing', 'PRS-11'), { type: 'typing', from, state: 'stopped' }, 'PRS-11', `typing at ${a2.label}`);
      await sa1.quiet(QUIET_MS);
      must.equal(sa1.received.filter((r) => r.frame.type === 'typing').map((r) => r.frame), [], 'PRS-11', 'typing frames at the sending device');
    },
  },
  {
    id: '5.2/typing-unknown-user',
    requirements: ['PRS-12'],
    level: 'must',
    title: 'typing to an unknown user answers UNKNOWN_USER echoing its id',
    async run(ctx) {
      const alice = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      a.sendRaw({ type: 'typing', id: 'ty-1', to: unknownUserId(ctx), state: 'started' });
      must.errorFrame(await a.next('error', 'PRS-12', (f) => f.id === 'ty-1'), 'UNKNOWN_USER', 'PRS-12', 'ty-1');
    },
  },
  {
    id: '5.2/typing-not-stored',
    requirements: ['PRS-14'],
    level: 'must',
    title: 'a device without a session when typing is forwarded never receives it',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 2 });
      const a = await ctx.connect(alice.devices[0]!);
      const online = await ctx.connect(bob.devices[0]!);
      a.sendRaw({ type: 'typing', to: bob.userId, state: 'started' });
      await online.next('typing', 'PRS-11');
      const later = await ctx.connect(bob.devices[1]!);
      await later.quiet(QUIET_MS);
      must.equal(later.received.filter((r) => r.frame.type === 'typing').map((r) => r.frame), [], 'PRS-14', 'typing frames at the device that connected later');
    },
  },
];
