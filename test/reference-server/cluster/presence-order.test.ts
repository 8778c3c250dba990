// Presence when the state is read from elsewhere (cluster/bus.ts): a snapshot can overtake the transitions it includes,
// which still arrive afterwards. A session subscribed earlier gets every transition [PRS-6]; a session that subscribes
// now gets the snapshot [PRS-4] and then only what is newer, so that its last frame shows the current state [PRS-7].
import t from 'tap';
import type { PresenceState } from '../../../reference-server/cluster/bus.ts';
import { defaultLimitValues } from '../../../reference-server/config.ts';
import { PresenceService } from '../../../reference-server/presence.ts';
import type { Store } from '../../../reference-server/store/store.ts';
import type { ServerFrame } from '../../../spec/index.ts';

class Session {
  readonly frames: ServerFrame[] = [];
  isOpen = true;
  constructor(readonly address: { userId: string; deviceId: number }) {}
  pushEphemeral(frame: ServerFrame): void {
    this.frames.push(frame);
  }
  presence(): string[] {
    return this.frames.flatMap((f) => (f.type === 'presence' ? [f.status] : []));
  }
}

t.test('a snapshot that overtakes its transitions [PRS-4] [PRS-6] [PRS-7]', async (t) => {
  let snapshot: PresenceState = { userId: 'u', online: false, version: 5, lastSeenAt: 1 };
  let readSnapshot: (() => void) | undefined;
  const bus = {
    presence: async (userIds: readonly string[]) => {
      await new Promise<void>((resolve) => (readSnapshot = resolve));
      return userIds.map(() => snapshot);
    },
    typing: () => undefined,
  };
  const store = { getAccount: async (userId: string) => ({ userId, username: userId, createdAt: 0, deviceIds: [1] }) } as unknown as Store;
  const presence = new PresenceService<Session>({ store, limits: defaultLimitValues(), now: Date.now, bus }, { sessionsOf: () => [] });
  const answers: unknown[] = [];

  const early = new Session({ userId: 'a', deviceId: 1 });
  const first = presence.subscribe(early, { type: 'subscribe_presence', id: 's1', userIds: ['u'] }, (a) => answers.push(a));
  await new Promise((resolve) => setImmediate(resolve));
  readSnapshot!();
  await first;
  t.same(early.presence(), ['offline'], 'the first snapshot');

  // Two transitions happen (v6 online, v7 offline); a new subscriber reads v7 before this process hears of either.
  snapshot = { userId: 'u', online: false, version: 7, lastSeenAt: 2 };
  const late = new Session({ userId: 'b', deviceId: 1 });
  const second = presence.subscribe(late, { type: 'subscribe_presence', id: 's2', userIds: ['u'] }, (a) => answers.push(a));
  await new Promise((resolve) => setImmediate(resolve));
  readSnapshot!();
  await second;
  presence.transition({ userId: 'u', online: true, version: 6 });
  presence.transition({ userId: 'u', online: false, version: 7, lastSeenAt: 2 });
  t.same(early.presence(), ['offline', 'online', 'offline'], '[PRS-6] the earlier subscriber gets both transitions');
  t.same(late.presence(), ['offline'], '[PRS-7] the new one only its snapshot: nothing stale after it');
  presence.transition({ userId: 'u', online: true, version: 8 });
  t.same(late.presence(), ['offline', 'online'], '[PRS-6] and what comes after it');
  t.same(early.presence(), ['offline', 'online', 'offline', 'online']);

  // A transition that arrives while the snapshot is being read is held and sent after it, unless included in it.
  snapshot = { userId: 'u', online: true, version: 8 };
  const third = new Session({ userId: 'c', deviceId: 1 });
  const pending = presence.subscribe(third, { type: 'subscribe_presence', id: 's3', userIds: ['u'] }, (a) => answers.push(a));
  await new Promise((resolve) => setImmediate(resolve));
  presence.transition({ userId: 'u', online: false, version: 9, lastSeenAt: 3 });
  t.same(third.frames, [], 'nothing before subscribed');
  readSnapshot!();
  await pending;
  t.same(third.frames.map((f) => f.type), ['presence', 'presence'], 'the snapshot, then the held transition');
  t.same(third.presence(), ['online', 'offline']);
  t.same(answers.map((a) => (a as { type: string }).type), ['subscribed', 'subscribed', 'subscribed']);
});
