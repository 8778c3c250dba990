// The sessions of this process: at most one per device [DLV-34], indexed by device and by user. Which session of a
// device wins is decided by its claim (session/claims.ts, cluster/bus.ts): a session registers with the claim number it
// was given, and a registered session with a lower claim is replaced (section 4.12). Presence transitions are the
// bus's business: a user is online while it holds a claim anywhere in the service [PRS-1].
import type { DeviceAddress } from '../store/store.ts';

export interface RegisteredSession {
  readonly address: DeviceAddress;
  /** The session's claim on its device; set before it registers. */
  readonly claim: number | undefined;
  /** [DLV-34] [DLV-35] Ends the session: SESSION_REPLACED and close 4409, no further frame processed or item delivered. */
  replaced(): void;
}

export const deviceKey = (device: DeviceAddress): string => `${device.userId}.${device.deviceId}`;

export class SessionRegistry<S extends RegisteredSession> {
  private readonly byDevice = new Map<string, S>();
  private readonly byUser = new Map<string, Set<S>>();

  get size(): number {
    return this.byDevice.size;
  }

  /**
   * Makes `session` the device's session, ending a registered one with a lower claim first [DLV-34]: the caller sends
   * `welcome` only after this returns true. Returns false, registering nothing, when the device's registered session
   * has a higher claim: `session` lost the race and must end itself.
   */
  claim(session: S): boolean {
    const key = deviceKey(session.address);
    const previous = this.byDevice.get(key);
    if (previous === session) return true;
    if (previous !== undefined && (previous.claim ?? 0) > (session.claim ?? 0)) return false;
    let sessions = this.byUser.get(session.address.userId);
    if (!sessions) this.byUser.set(session.address.userId, (sessions = new Set()));
    if (previous !== undefined) sessions.delete(previous);
    this.byDevice.set(key, session);
    sessions.add(session);
    previous?.replaced();
    return true;
  }

  /** Removes a session that ended; a no-op for a session already replaced. */
  release(session: S): void {
    const key = deviceKey(session.address);
    if (this.byDevice.get(key) !== session) return;
    this.byDevice.delete(key);
    const sessions = this.byUser.get(session.address.userId);
    if (!sessions) return;
    sessions.delete(session);
    if (sessions.size === 0) this.byUser.delete(session.address.userId);
  }

  get(device: DeviceAddress): S | undefined {
    return this.byDevice.get(deviceKey(device));
  }

  /** This process's sessions of the user. */
  sessionsOf(userId: string): Iterable<S> {
    return [...(this.byUser.get(userId) ?? [])];
  }

  all(): S[] {
    return [...this.byDevice.values()];
  }
}
