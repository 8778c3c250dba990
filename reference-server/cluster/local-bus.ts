// The session bus of a server that is a service of one process (the default): everything in memory, every event
// delivered to this process at once. It keeps the rules of bus.ts so that the gateway has one code path: claims
// numbered per device, a user online while any device of it holds a claim [PRS-1], last-seen times in memory only and
// lost on restart (section 4.14) [PRS-17].
import type { DeviceAddress } from '../store/store.ts';
import type { BusHandlers, PresenceState, SessionBus, TypingState } from './bus.ts';

interface UserPresence {
  /** deviceId → the claim that holds the device's session. */
  holders: Map<number, number>;
  version: number;
  lastSeenAt?: number;
}

export class LocalBus implements SessionBus {
  readonly processId = 'local';
  private handlers: BusHandlers | undefined;
  /** `userId.deviceId` → the last claim number handed out. */
  private readonly claims = new Map<string, number>();
  private readonly users = new Map<string, UserPresence>();

  constructor(private readonly now: () => number) {}

  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
  }

  private user(userId: string): UserPresence {
    let user = this.users.get(userId);
    if (!user) this.users.set(userId, (user = { holders: new Map(), version: 0 }));
    return user;
  }

  async claim(device: DeviceAddress, onNumber: (claim: number) => void): Promise<number> {
    const handlers = this.started();
    const key = `${device.userId}.${device.deviceId}`;
    const claim = (this.claims.get(key) ?? 0) + 1;
    this.claims.set(key, claim);
    onNumber(claim);
    const user = this.user(device.userId);
    const previous = user.holders.get(device.deviceId);
    const wasOnline = user.holders.size > 0;
    user.holders.set(device.deviceId, claim);
    // [PRS-1] [PRS-6] The user's first session; [DLV-37] a replacement is no transition.
    if (!wasOnline) handlers.presence({ userId: device.userId, online: true, version: ++user.version });
    // [DLV-34] The device's earlier session ends before this one is welcomed.
    if (previous !== undefined) await handlers.replace(device, claim);
    return claim;
  }

  release(device: DeviceAddress, claim: number | undefined): void {
    const user = this.users.get(device.userId);
    if (!user) return;
    const holder = user.holders.get(device.deviceId);
    // A claim whose number is unknown cannot be held here: LocalBus numbers claims synchronously.
    if (holder === undefined || holder !== claim) return;
    user.holders.delete(device.deviceId);
    if (user.holders.size > 0) return;
    // [PRS-2] The user's last session closed.
    user.lastSeenAt = this.now();
    user.version++;
    this.handlers?.presence({ userId: device.userId, online: false, lastSeenAt: user.lastSeenAt, version: user.version });
  }

  async presence(userIds: readonly string[]): Promise<PresenceState[]> {
    return userIds.map((userId) => {
      const user = this.users.get(userId);
      if (!user) return { userId, online: false, version: 0 };
      if (user.holders.size > 0) return { userId, online: true, version: user.version };
      return { userId, online: false, version: user.version, ...(user.lastSeenAt === undefined ? {} : { lastSeenAt: user.lastSeenAt }) };
    });
  }

  typing(to: string, from: DeviceAddress, state: TypingState): void {
    this.handlers?.typing(to, from, state);
  }

  prekeysLow(device: DeviceAddress, remaining: number): void {
    this.handlers?.prekeysLow(device, remaining);
  }

  deviceRemoved(device: DeviceAddress): void {
    this.handlers?.deviceRemoved(device);
  }

  /** One process: its own DeliveryMemory knows everything there is to know. */
  async deliveredMark(): Promise<number> {
    return 0;
  }

  markDelivered(): void {}

  /** One process: the HTTP side's own record (LastSeenBook) is all there is. */
  deviceSeen(): void {}

  async devicesSeen(): Promise<Map<number, number>> {
    return new Map();
  }

  async close(): Promise<void> {
    this.handlers = undefined;
  }

  private started(): BusHandlers {
    if (!this.handlers) throw new Error('LocalBus: start() first');
    return this.handlers;
  }
}
