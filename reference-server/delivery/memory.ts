// What the server remembers about deliveries beyond one session, in memory only: the highest seq of each device's
// queue that was ever written in a `deliver` frame. Lost on restart, which [DLV-10] allows ("after a crash the server
// may no longer know that it delivered an item before").
//
// One number per device is enough: first deliveries on a session go out in seq order from the head of the queue
// [DLV-7] [DLV-24] and the store makes items visible in seq order [DLV-4], so every item still queued with a seq at or
// below that mark was delivered before, and every item above it was not.
//
// In a service of several processes the mark is shared through the session bus (cluster/bus.ts): every delivery is
// reported to it (`onRecord`), and a session learns the service's mark when it opens, so that an item delivered by
// another process before a reconnection is flagged too.
import type { DeviceAddress } from '../store/store.ts';

const keyOf = (device: DeviceAddress): string => `${device.userId}.${device.deviceId}`;

export class DeliveryMemory {
  private readonly highest = new Map<string, number>();

  /** `onRecord` hears every delivery (the bus shares the marks among processes). */
  constructor(private readonly onRecord?: (device: DeviceAddress, seq: number) => void) {}

  /** [DLV-10] Whether an item of this device's queue was delivered before, on this or an earlier session. */
  deliveredBefore(device: DeviceAddress, seq: number): boolean {
    return seq <= (this.highest.get(keyOf(device)) ?? 0);
  }

  recordDelivery(device: DeviceAddress, seq: number): void {
    if (this.learn(device, seq)) this.onRecord?.(device, seq);
  }

  /** Raises the device's mark to what another process delivered; true when it rose. */
  learn(device: DeviceAddress, seq: number): boolean {
    const key = keyOf(device);
    if (seq <= (this.highest.get(key) ?? 0)) return false;
    this.highest.set(key, seq);
    return true;
  }

  /** The device was deleted: its queue is gone, and so is what we knew about it. */
  forget(device: DeviceAddress): void {
    this.highest.delete(keyOf(device));
  }

  get size(): number {
    return this.highest.size;
  }
}
