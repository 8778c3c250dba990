// Presence and typing (section 5): ephemeral signals kept in memory only [PRS-17]. A user is online while at least
// one of its devices has a session [PRS-1]; the session registry reports the transitions, this module fans them out
// to subscribed sessions, answers subscribe/unsubscribe, and forwards typing under the per-session rate limit.
import type { LimitValues } from './config.ts';
import { ProtocolError } from './errors.ts';
import type { DeviceAddress, Store } from './store/store.ts';
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
  isOnline(userId: string): boolean;
  sessionsOf(userId: string): Iterable<S>;
}

export interface PresenceDeps {
  store: Store;
  limits: LimitValues;
  now: () => number;
}

/** The rate window of `typingPerMinute` (section 6.5: "per 60 s"). */
const TYPING_WINDOW_MS = 60_000;

export class PresenceService<S extends PresenceSession> {
  /** userId → sessions subscribed to it. */
  private readonly watchers = new Map<string, Set<S>>();
  /** session → the userIds it is subscribed to. */
  private readonly subscriptions = new Map<S, Set<string>>();
  /** [PRS-2] The moment each user's last session closed (in memory; lost on restart, section 4.14). */
  private readonly lastSeen = new Map<string, number>();
  /** Times of the typing frames each session had forwarded (or refused as UNKNOWN_USER) in the last 60 s. */
  private readonly typingTimes = new WeakMap<S, number[]>();

  constructor(private readonly deps: PresenceDeps, private readonly lookup: SessionLookup<S>) {}

  // ---------------------------------------------------------------------------------------------------------------
  // Transitions, reported by the session registry

  /** [PRS-1] [PRS-6] The user's first session was sent welcome. */
  userOnline(userId: string): void {
    this.broadcast({ type: 'presence', userId, status: 'online' });
  }

  /** [PRS-2] [PRS-6] The user's last session closed. */
  userOffline(userId: string): void {
    const at = this.deps.now();
    this.lastSeen.set(userId, at);
    this.broadcast({ type: 'presence', userId, status: 'offline', lastSeenAt: at });
  }

  private broadcast(frame: PresenceFrame): void {
    const watchers = this.watchers.get(frame.userId);
    if (!watchers) return;
    for (const session of watchers) session.pushEphemeral(frame);
  }

  /** [PRS-8] lastSeenAt only with offline, and only when recorded. */
  current(userId: string): PresenceFrame {
    if (this.lookup.isOnline(userId)) return { type: 'presence', userId, status: 'online' };
    const at = this.lastSeen.get(userId);
    return at === undefined ? { type: 'presence', userId, status: 'offline' } : { type: 'presence', userId, status: 'offline', lastSeenAt: at };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Requests

  /**
   * [PRS-3] Checks in order, subscribing to nothing on failure; on success answers `subscribed` and then one presence
   * frame per distinct userId in order of first appearance [PRS-4] [PRS-5]. `answer` is called synchronously with
   * the registration, so no transition can slip between the snapshot and the subscription.
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
    answer({ type: 'subscribed', id: frame.id });
    for (const userId of distinct) session.pushEphemeral(this.current(userId));
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
    const watchers = this.watchers.get(userId);
    if (!watchers) return;
    watchers.delete(session);
    if (watchers.size === 0) this.watchers.delete(userId);
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
    const from = { userId: session.address.userId, deviceId: session.address.deviceId };
    for (const target of this.lookup.sessionsOf(frame.to)) {
      if (target === session || (target.address.userId === from.userId && target.address.deviceId === from.deviceId)) continue;
      target.pushEphemeral({ type: 'typing', from, state: frame.state });
    }
    return undefined;
  }
}
