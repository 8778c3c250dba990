// Section 5 of PROTOCOL.md: presence subscriptions (subscribed, then one presence frame per user; online from welcome
// to the last close; offline with lastSeenAt; INVALID_FRAME, UNKNOWN_USER and TOO_MANY_SUBSCRIPTIONS subscribe to
// nothing; unsubscribe and session end stop frames; a flapping user ends in its current state) and typing (forwarded to
// the peer's sessions except the sending device, never stored; checked in order, dropped past typingPerMinute).
import type { PresenceFrame, ServerFrame } from '../../spec/index.ts';
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, User } from '../context.ts';
import { must } from '../expect.ts';
import type { Session } from '../session.ts';

/** How long a case listens for a frame that must not come. */
const QUIET_MS = 400;
/** Users the subscription-limit case registers at most (maxPresenceSubscriptions + 1). */
const MAX_SUBSCRIPTION_USERS = 200;
/** Frames per typingPerMinute beyond which the typing cases are UNSUPPORTED rather than slow. */
const MAX_TYPING_PROBE = 500;
/** The rate window of typingPerMinute (section 6.5: per 60 s). */
const TYPING_WINDOW_MS = 60_000;

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
  {
    id: '5.1/subscribe-invalid-frame',
    requirements: ['PRS-3'],
    level: 'must',
    title: 'a subscribe_presence failing its schema or listing more than maxPresenceBatch userIds answers INVALID_FRAME and subscribes to nothing',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const batch = a.limits.maxPresenceBatch;
      // Unknown users in the oversized list: the frame constraint (1) is checked before the users (2).
      const frames: Array<[string, unknown]> = [
        ['sp-big', [bob.userId, ...Array.from({ length: batch }, () => unknownUserId(ctx))]],
        ['sp-empty', []],
        ['sp-bad', [bob.userId, 'not a userId!']],
      ];
      for (const [id, userIds] of frames) {
        a.sendRaw({ type: 'subscribe_presence', id, userIds });
        must.errorFrame(await a.next('error', 'PRS-3', (e) => e.id === id), 'INVALID_FRAME', 'PRS-3', id, `subscribe_presence ${id}`);
      }
      await ctx.connect(bob.devices[0]!);
      must.equal(presenceOf(await a.quiet(QUIET_MS)), [], 'PRS-3', 'presence frames after the refused subscriptions');
    },
  },
  {
    id: '5.1/unsubscribe-invalid-frame',
    requirements: ['PRS-18'],
    level: 'must',
    title: 'an unsubscribe_presence failing its schema or listing more than maxPresenceBatch userIds answers INVALID_FRAME and ends no subscription',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      await subscribe(a, [bob.userId], 'sp');
      await a.next('presence', 'PRS-4');
      const batch = a.limits.maxPresenceBatch;
      const frames: Array<[string, unknown]> = [
        ['us-big', [bob.userId, ...Array.from({ length: batch }, () => unknownUserId(ctx))]],
        ['us-empty', []],
        ['us-bad', [bob.userId, 'not a userId!']],
      ];
      for (const [id, userIds] of frames) {
        a.sendRaw({ type: 'unsubscribe_presence', id, userIds });
        must.errorFrame(await a.next('error', 'PRS-18', (e) => e.id === id), 'INVALID_FRAME', 'PRS-18', id, `unsubscribe_presence ${id}`);
      }
      await ctx.connect(bob.devices[0]!);
      const online = await a.next('presence', 'PRS-18');
      must.equal(online, { type: 'presence', userId: bob.userId, status: 'online' }, 'PRS-18', 'presence after the refused unsubscriptions (the subscription stands)');
    },
  },
  {
    id: '5.1/too-many-subscriptions',
    requirements: ['PRS-3', 'PRS-5'],
    level: 'must',
    title: 'a subscribe_presence that would exceed maxPresenceSubscriptions answers TOO_MANY_SUBSCRIPTIONS and subscribes to nothing; unknown users come first',
    async run(ctx) {
      const watcher = await ctx.user();
      const w = await ctx.connect(watcher.devices[0]!);
      const { maxPresenceSubscriptions: max, maxPresenceBatch: batch } = w.limits;
      if (max + 1 > MAX_SUBSCRIPTION_USERS) ctx.unsupported(`maxPresenceSubscriptions ${max} needs more than ${MAX_SUBSCRIPTION_USERS} users`);
      const users: User[] = [];
      while (users.length < max + 1) users.push(...(await Promise.all(Array.from({ length: Math.min(10, max + 1 - users.length) }, () => ctx.user()))));
      const targets = users.slice(0, max);
      const extra = users[max]!;
      // Exactly maxPresenceSubscriptions distinct users, in batches of at most maxPresenceBatch, are allowed.
      for (let i = 0; i < targets.length; i += batch) await subscribe(w, targets.slice(i, i + batch).map((u) => u.userId), `sp${i}`, 'PRS-3');
      await w.until(() => (presenceOf(w.received.map((r) => r.frame)).length >= max ? true : undefined), 'PRS-4', `${max} presence frames`);
      // Subscribing again to subscribed users adds no subscription (PRS-5).
      const again = w.received.length;
      await subscribe(w, [targets[0]!.userId], 'sp-again', 'PRS-5');
      await w.until(() => presenceOf(w.received.slice(again).map((r) => r.frame), targets[0]!.userId)[0], 'PRS-5', 'a presence frame for the repeated subscription');
      const mark = w.received.length;
      const over = await w.request({ type: 'subscribe_presence', id: 'sp-over', userIds: [targets[0]!.userId, extra.userId] }, 'PRS-3');
      must.errorFrame(over, 'TOO_MANY_SUBSCRIPTIONS', 'PRS-3', 'sp-over', 'one distinct user more than maxPresenceSubscriptions');
      // (2) before (3): an unknown user is reported as such, whatever the count.
      const unknown = await w.request({ type: 'subscribe_presence', id: 'sp-unknown', userIds: [extra.userId, unknownUserId(ctx)] }, 'PRS-3');
      must.errorFrame(unknown, 'UNKNOWN_USER', 'PRS-3', 'sp-unknown', 'an unknown user with a full set of subscriptions');
      await ctx.connect(extra.devices[0]!);
      await w.quiet(QUIET_MS);
      must.equal(presenceOf(w.received.slice(mark).map((r) => r.frame)), [], 'PRS-3', 'presence frames after the refused subscriptions');
      // With one subscription ended, the extra user fits.
      must.equal(await w.request({ type: 'unsubscribe_presence', id: 'us', userIds: [targets[0]!.userId] }, 'PRS-9'), { type: 'unsubscribed', id: 'us' }, 'PRS-9', 'answer to unsubscribe_presence');
      await subscribe(w, [extra.userId], 'sp-fits', 'PRS-3');
      const presence = await w.until(() => presenceOf(w.received.slice(mark).map((r) => r.frame), extra.userId)[0], 'PRS-4', `a presence frame for ${extra.label}`);
      must.equal(presence.status, 'online', 'PRS-4', `${extra.label}, which has a session`);
    },
  },
  {
    id: '5.1/flapping-ends-in-current-state',
    requirements: ['PRS-6', 'PRS-7', 'PRS-8'],
    level: 'must',
    title: 'a user going online and offline in quick succession: transitions may be skipped, but the last presence frame shows the current state',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const b1 = bob.devices[0]!;
      const a = await ctx.connect(alice.devices[0]!);
      await subscribe(a, [bob.userId], 'sp');
      must.equal((await a.next('presence', 'PRS-4')).status, 'offline', 'PRS-4', `${bob.label} before any session`);
      const mark = a.received.length;
      for (let i = 0; i < 3; i++) await (await ctx.connect(b1)).close();
      await a.quiet(QUIET_MS * 2);
      const frames = presenceOf(a.received.slice(mark).map((r) => r.frame), bob.userId);
      // Any of the six transitions may be skipped (PRS-7), but the last frame sent shows the current state: offline
      // (with no frame at all, the last one is the offline frame of the subscription).
      if (frames.length > 0) must.equal(frames.at(-1)!.status, 'offline', 'PRS-7', `the last of ${frames.length} presence frames after the flapping`);
      for (const frame of frames) {
        must.hold(frame.status === 'offline' ? typeof frame.lastSeenAt === 'number' : !('lastSeenAt' in frame), 'PRS-8', 'lastSeenAt with offline, never with online', frame);
      }
      // A lasting transition is never skipped.
      const later = a.received.length;
      await ctx.connect(b1);
      const online = await a.until(() => presenceOf(a.received.slice(later).map((r) => r.frame), bob.userId)[0], 'PRS-6', `a presence frame once ${bob.label} stays online`);
      must.equal(online.status, 'online', 'PRS-6', `${bob.label} with a lasting session`);
    },
  },
  {
    id: '5.2/typing-check-order',
    requirements: ['PRS-13', 'TRN-31'],
    level: 'must',
    title: 'typing: schema first (INVALID_FRAME); past typingPerMinute frames are dropped silently, even to unknown users',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const b = await ctx.connect(bob.devices[0]!);
      const n = a.limits.typingPerMinute;
      if (n > MAX_TYPING_PROBE) ctx.unsupported(`typingPerMinute ${n} is above the ${MAX_TYPING_PROBE} frames this case sends`);
      const errorsOf = () => a.received.map((r) => r.frame).filter((f) => f.type === 'error');
      const typingAtBob = () => b.received.filter((r) => r.frame.type === 'typing').length;
      // (1) A frame failing its schema has no other effect (TRN-26): it does not count.
      a.sendRaw({ type: 'typing', id: 't-bad', to: bob.userId, state: 'dancing' });
      must.errorFrame(await a.next('error', 'PRS-13', (e) => e.id === 't-bad'), 'INVALID_FRAME', 'PRS-13', 't-bad');
      // (2) Up to the limit every frame is forwarded (LIM-8: nothing is refused below N counted frames).
      for (let i = 0; i < n; i++) a.sendRaw({ type: 'typing', id: `t${i}`, to: bob.userId, state: i % 2 === 0 ? 'started' : 'stopped' });
      await b.until(() => (typingAtBob() >= n ? true : undefined), 'PRS-13', `${n} typing frames (typingPerMinute) forwarded`);
      // Past it: dropped silently, also to an unknown user (the limit comes before the user check); the schema check
      // still comes first.
      a.sendRaw({ type: 'typing', id: 'over-bob', to: bob.userId, state: 'started' });
      a.sendRaw({ type: 'typing', id: 'over-unknown', to: unknownUserId(ctx), state: 'started' });
      a.sendRaw({ type: 'typing', id: 'over-bad', to: bob.userId });
      must.errorFrame(await a.next('error', 'PRS-13', (e) => e.id === 'over-bad'), 'INVALID_FRAME', 'PRS-13', 'over-bad', 'an invalid typing frame over the limit');
      await a.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      await b.quiet(QUIET_MS);
      must.equal(errorsOf().map((e) => (e.type === 'error' ? `${e.id} ${e.code}` : '')), ['t-bad INVALID_FRAME', 'over-bad INVALID_FRAME'], 'PRS-13', 'errors for the typing frames');
      must.equal(typingAtBob(), n, 'PRS-13', 'typing frames forwarded in all (none past typingPerMinute)');
    },
  },
  {
    id: '5.2/dropped-typing-not-counted',
    requirements: ['PRS-13', 'LIM-8'],
    level: 'must',
    title: 'typing frames dropped past typingPerMinute do not count: once the counted ones are 60 s old, typing is forwarded again',
    budgetMs: () => TYPING_WINDOW_MS + 20_000,
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const b = await ctx.connect(bob.devices[0]!);
      const n = a.limits.typingPerMinute;
      if (n > MAX_TYPING_PROBE) ctx.unsupported(`typingPerMinute ${n} is above the ${MAX_TYPING_PROBE} frames this case sends`);
      const typingAtBob = () => b.received.filter((r) => r.frame.type === 'typing').length;
      for (let i = 0; i < n; i++) a.sendRaw({ type: 'typing', to: bob.userId, state: 'started' });
      await b.until(() => (typingAtBob() >= n ? true : undefined), 'PRS-13', `${n} typing frames (typingPerMinute) forwarded`);
      const countedAt = performance.now();
      // Ten seconds later, n more: over the limit, dropped, and (if they counted) enough to hold the limit for a minute.
      await ctx.sleep(10_000);
      for (let i = 0; i < n; i++) a.sendRaw({ type: 'typing', to: bob.userId, state: 'stopped' });
      await a.request({ type: 'ping', id: 'sync' }, 'KAL-1');
      await b.quiet(QUIET_MS);
      must.equal(typingAtBob(), n, 'PRS-13', 'typing frames forwarded past typingPerMinute');
      // Two seconds after the counted frames left the 60 s window, the dropped ones are still inside it.
      await ctx.sleep(countedAt + TYPING_WINDOW_MS + 2000 - performance.now());
      a.sendRaw({ type: 'typing', id: 'again', to: bob.userId, state: 'started' });
      await b.until(() => (typingAtBob() > n ? true : undefined), 'PRS-13', 'the typing frame once the counted ones are over 60 s old (dropped frames do not count)', 3000);
    },
  },
];
