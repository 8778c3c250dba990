// Presence and typing (section 5): ephemeral signals kept in memory only [PRS-17]. A user is online while at least
// one of its devices has a session anywhere in the service [PRS-1]; the session bus (cluster/bus.ts) reports the
// transitions and answers what the current state is, this module fans them out to subscribed sessions of this
// process, answers subscribe/unsubscribe, and forwards typing under the per-session rate limit.
import type { LimitValues } from './config.ts';
import { ProtocolError } from './errors.ts';
import type { DeviceAddress, Store } from './store/store.ts';
import type { PresenceState, SessionBus, TypingState } from './cluster/bus.ts';
import { temporarilyUnavailable } from './delivery/send.ts';
import { StoreUnavailableError } from './store/errors.ts';
import type {
  ClientTypingFrame,
  PresenceFrame,
  ServerFrame,
  SubscribePresenceFrame,
  UnsubscribePresenceFrame,
} from '../spec/index.ts';

/** What presence needs of a session. */
export interface PresenceSession {
  readonly address: DeviceAddress;
  /** False once the session has ended: nothing is registered for it any more. */
  readonly isOpen: boolean;
  /** [PRS-16] A push that may be dropped when the connection is congested. */
  pushEphemeral(frame: ServerFrame): void;
}

export interface SessionLookup<S extends PresenceSession> {
  /** This process's sessions of a user. */
  sessionsOf(userId: string): Iterable<S>;
}

export interface PresenceDeps {
  store: Store;
  limits: LimitValues;
  now: () => number;
  bus: Pick<SessionBus, 'presence' | 'typing'>;
}

/** The rate window of `typingPerMinute` (section 6.5: "per 60 s"). */
const TYPING_WINDOW_MS = 60_000;

/** [PRS-8] lastSeenAt only with offline, and only when recorded. */
export function presenceFrame(state: PresenceState): PresenceFrame {
  if (state.online) return { type: 'presence', userId: state.userId, status: 'online' };
  return state.lastSeenAt === undefined
    ? { type: 'presence', userId: state.userId, status: 'offline' }
    : { type: 'presence', userId: state.userId, status: 'offline', lastSeenAt: state.lastSeenAt };
}

export class PresenceService<S extends PresenceSession> {
  /** userId → sessions subscribed to it. */
  private readonly watchers = new Map<string, Set<S>>();
  /** session → the userIds it is subscribed to. */
  private readonly subscriptions = new Map<S, Set<string>>();
  /** userId (watched here) → the version of the last transition fanned out (or resync reading) for it. */
  private readonly versions = new Map<string, number>();
  /**
   * session → userId → the version of the snapshot its subscription started from, while transitions up to it may
   * still be on their way: those are not sent to that session again (they are in its snapshot already).
   */
  private readonly floors = new Map<S, Map<string, number>>();
  /**
   * Sessions waiting for a snapshot of a subscribe_presence: transitions for them are held here and sent after the
   * snapshot's frames, unless the snapshot already reflects them [PRS-4] [PRS-7].
   */
  private readonly holds = new Map<S, PresenceState[]>();
  /** Times of the typing frames each session had forwarded (or refused as UNKNOWN_USER) in the last 60 s. */
  private readonly typingTimes = new WeakMap<S, number[]>();

  constructor(private readonly deps: PresenceDeps, private readonly lookup: SessionLookup<S>) {}

  // ---------------------------------------------------------------------------------------------------------------
  // Transitions, reported by the session bus

  /** [PRS-6] A user went online [PRS-1] or offline [PRS-2], on whichever process. */
  transition(state: PresenceState): void {
    const watchers = this.watchers.get(state.userId);
    if (!watchers) return;
    // Transitions of one user arrive in version order; one already fanned out (a resync reading) is not sent again.
    if (state.version <= (this.versions.get(state.userId) ?? 0)) return;
    this.versions.set(state.userId, state.version);
    const frame = presenceFrame(state);
    for (const session of watchers) {
      const hold = this.holds.get(session);
      if (hold) {
        hold.push(state);
        continue;
      }
      const floors = this.floors.get(session);
      const floor = floors?.get(state.userId);
      if (floor !== undefined) {
        if (state.version <= floor) continue;
        floors!.delete(state.userId);
        if (floors!.size === 0) this.floors.delete(session);
      }
      session.pushEphemeral(frame);
    }
  }

  /** Transitions may have been missed (the bus reconnected): read the watched users again and send what changed. */
  async resync(): Promise<void> {
    const userIds = [...this.watchers.keys()];
    if (userIds.length === 0) return;
    const states = await this.deps.bus.presence(userIds);
    for (const state of states) this.transition(state);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Requests

  /**
   * [PRS-3] Checks in order, subscribing to nothing on failure; on success answers `subscribed` and then one presence
   * frame per distinct userId in order of first appearance [PRS-4] [PRS-5]. The subscription is registered before
   * the state is read, and transitions that arrive meanwhile are held back and sent after the snapshot's frames unless
   * the snapshot already includes them, so none slips between the snapshot and the subscription [PRS-6] [PRS-7].
   */
  async subscribe(session: S, frame: SubscribePresenceFrame, answer: (frame: ServerFrame | ProtocolError) => void): Promise<void> {
    // (1) frame constraints
    if (frame.userIds.length > this.deps.limits.maxPresenceBatch) {
      answer(new ProtocolError('INVALID_FRAME', `userIds has ${frame.userIds.length} entries, more than maxPresenceBatch (${this.deps.limits.maxPresenceBatch})`));
      return;
    }
    const distinct = [...new Set(frame.userIds)];
    // (2) every userId must name a user
    const accounts = await Promise.all(distinct.map((userId) => this.deps.store.getAccount(userId)));
    const unknown = distinct.filter((_, i) => accounts[i] === undefined);
    if (unknown.length > 0) {
      answer(new ProtocolError('UNKNOWN_USER', `${unknown.length} of the userIds name no user`));
      return;
    }
    if (!session.isOpen) return;
    // (3) distinct subscriptions of the session after this request
    const mine = this.subscriptions.get(session) ?? new Set<string>();
    const added = distinct.filter((userId) => !mine.has(userId));
    if (mine.size + added.length > this.deps.limits.maxPresenceSubscriptions) {
      answer(new ProtocolError('TOO_MANY_SUBSCRIPTIONS', `more than maxPresenceSubscriptions (${this.deps.limits.maxPresenceSubscriptions})`));
      return;
    }
    this.subscriptions.set(session, mine);
    for (const userId of added) {
      mine.add(userId);
      let watchers = this.watchers.get(userId);
      if (!watchers) this.watchers.set(userId, (watchers = new Set()));
      watchers.add(session);
    }
    const held: PresenceState[] = [];
    this.holds.set(session, held);
    let states: PresenceState[];
    try {
      states = await this.deps.bus.presence(distinct);
    } catch (error) {
      // Nothing subscribed after all; what was held for earlier subscriptions still goes out.
      for (const userId of added) this.unwatch(session, mine, userId);
      this.release(session, held, new Map());
      if (!(error instanceof StoreUnavailableError)) throw error;
      answer(temporarilyUnavailable(this.deps.limits));
      return;
    }
    if (!session.isOpen) return;
    answer({ type: 'subscribed', id: frame.id });
    const snapshot = new Map<string, number>();
    for (const state of states) {
      snapshot.set(state.userId, state.version);
      session.pushEphemeral(presenceFrame(state));
      // Transitions the snapshot includes but this process has not fanned out yet must not reach this session again.
      if (state.version > (this.versions.get(state.userId) ?? 0)) {
        let floors = this.floors.get(session);
        if (!floors) this.floors.set(session, (floors = new Map()));
        floors.set(state.userId, state.version);
      }
    }
    this.release(session, held, snapshot);
  }

  /** Ends a hold: sends the held transitions the snapshot does not already include, in order. */
  private release(session: S, held: PresenceState[], snapshot: Map<string, number>): void {
    if (this.holds.get(session) !== held) return;
    this.holds.delete(session);
    for (const state of held) {
      if (state.version <= (snapshot.get(state.userId) ?? 0)) continue;
      if (this.subscriptions.get(session)?.has(state.userId)) session.pushEphemeral(presenceFrame(state));
    }
  }

  /**
   * [PRS-9] Ends the listed subscriptions (ignoring unknown ones) and answers `unsubscribed`; [PRS-18] a frame over
   * maxPresenceBatch ends none.
   */
  unsubscribe(session: S, frame: UnsubscribePresenceFrame): ServerFrame | ProtocolError {
    if (frame.userIds.length > this.deps.limits.maxPresenceBatch) {
      return new ProtocolError('INVALID_FRAME', `userIds has ${frame.userIds.length} entries, more than maxPresenceBatch (${this.deps.limits.maxPresenceBatch})`);
    }
    const mine = this.subscriptions.get(session);
    if (mine) for (const userId of frame.userIds) this.unwatch(session, mine, userId);
    return { type: 'unsubscribed', id: frame.id };
  }

  /** [PRS-10] A session's subscriptions end with it. */
  dropSession(session: S): void {
    this.holds.delete(session);
    this.floors.delete(session);
    const mine = this.subscriptions.get(session);
    if (!mine) return;
    for (const userId of [...mine]) this.unwatch(session, mine, userId);
    this.subscriptions.delete(session);
  }

  subscriptionCount(session: S): number {
    return this.subscriptions.get(session)?.size ?? 0;
  }

  private unwatch(session: S, mine: Set<string>, userId: string): void {
    mine.delete(userId);
    this.floors.get(session)?.delete(userId);
    const watchers = this.watchers.get(userId);
    if (!watchers) return;
    watchers.delete(session);
    if (watchers.size === 0) {
      this.watchers.delete(userId);
      this.versions.delete(userId);
    }
  }

  /**
   * [PRS-13] Checks a typing frame that passed its schema: (2) the session's typingPerMinute limit, where a frame
   * over it is dropped silently and does not count; (3) the `to` user [PRS-12]. Then [PRS-11] forwards it to every
   * device of `to` with a session except the sender itself, with `from` the sender [AUT-9]. Never stored [PRS-14].
   */
  async typing(session: S, frame: ClientTypingFrame): Promise<ProtocolError | undefined> {
    const now = this.deps.now();
    let times = this.typingTimes.get(session);
    if (!times) this.typingTimes.set(session, (times = []));
    while (times.length > 0 && times[0]! <= now - TYPING_WINDOW_MS) times.shift();
    // [LIM-8] Never refuse while fewer than N counted frames were made in the preceding 60 s.
    if (times.length >= this.deps.limits.typingPerMinute) return undefined;
    times.push(now);
    const account = await this.deps.store.getAccount(frame.to);
    if (!account) return new ProtocolError('UNKNOWN_USER', 'typing names no user');
    // Every process forwards it to its own sessions of `to` (deliverTyping), this one included.
    this.deps.bus.typing(frame.to, { userId: session.address.userId, deviceId: session.address.deviceId }, frame.state);
    return undefined;
  }

  /** [PRS-11] Forwards a typing signal to this process's sessions of `to`, except the sending device itself. */
  deliverTyping(to: string, from: DeviceAddress, state: TypingState): void {
    const sender = { userId: from.userId, deviceId: from.deviceId };
    for (const target of this.lookup.sessionsOf(to)) {
      if (target.address.userId === sender.userId && target.address.deviceId === sender.deviceId) continue;
      target.pushEphemeral({ type: 'typing', from: sender, state });
    }
  }
}
