// The sessions of a server: at most one per device [DLV-34], indexed by device and by user. The registry decides
// replacement (section 4.12) and reports presence transitions: a user is online while it has at least one session
// [PRS-1], and a replacement swaps one session for another without a transition [DLV-37].
import type { DeviceAddress } from '../store/store.ts';

export interface RegisteredSession {
  readonly address: DeviceAddress;
  /** [DLV-34] [DLV-35] Ends the session: SESSION_REPLACED and close 4409, no further frame processed or item delivered. */
  replaced(): void;
}

export interface PresenceTransitions {
  online(userId: string): void;
  offline(userId: string): void;
}

export const deviceKey = (device: DeviceAddress): string => `${device.userId}.${device.deviceId}`;

export class SessionRegistry<S extends RegisteredSession> {
  private readonly byDevice = new Map<string, S>();
  private readonly byUser = new Map<string, Set<S>>();

  constructor(private readonly transitions: PresenceTransitions) {}

  get size(): number {
    return this.byDevice.size;
  }

  /**
   * Makes `session` the device's session. A previous session of the device is ended first [DLV-34]: the caller sends
   * `welcome` only after this returns. The user's presence changes only when it had no session at all [DLV-37].
   */
  claim(session: S): S | undefined {
    const key = deviceKey(session.address);
    const previous = this.byDevice.get(key);
    let sessions = this.byUser.get(session.address.userId);
    const wasOnline = sessions !== undefined && sessions.size > 0;
    if (!sessions) this.byUser.set(session.address.userId, (sessions = new Set()));
    if (previous !== undefined && previous !== session) sessions.delete(previous);
    this.byDevice.set(key, session);
    sessions.add(session);
    if (previous !== undefined && previous !== session) previous.replaced();
    if (!wasOnline) this.transitions.online(session.address.userId);
    return previous === session ? undefined : previous;
  }

  /** Removes a session that ended; a no-op for a session already replaced. */
  release(session: S): void {
    const key = deviceKey(session.address);
    if (this.byDevice.get(key) !== session) return;
    this.byDevice.delete(key);
    const sessions = this.byUser.get(session.address.userId);
    if (!sessions) return;
    sessions.delete(session);
    if (sessions.size === 0) {
      this.byUser.delete(session.address.userId);
      // [PRS-1] [PRS-2] The last session of the user closed.
      this.transitions.offline(session.address.userId);
    }
  }

  get(device: DeviceAddress): S | undefined {
    return this.byDevice.get(deviceKey(device));
  }

  isOnline(userId: string): boolean {
    return (this.byUser.get(userId)?.size ?? 0) > 0;
  }

  sessionsOf(userId: string): Iterable<S> {
    return [...(this.byUser.get(userId) ?? [])];
  }

  all(): S[] {
    return [...this.byDevice.values()];
  }
}
