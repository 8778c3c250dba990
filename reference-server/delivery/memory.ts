// What the server remembers about deliveries beyond one session, in memory only: the highest seq of each device's
// queue that was ever written in a `deliver` frame. Lost on restart, which [DLV-10] allows ("after a crash the server
// may no longer know that it delivered an item before").
//
// One number per device is enough: first deliveries on a session go out in seq order from the head of the queue
// [DLV-7] [DLV-24] and the store makes items visible in seq order [DLV-4], so every item still queued with a seq at or
// below that mark was delivered before, and every item above it was not.
import type { DeviceAddress } from '../store/store.ts';

const keyOf = (device: DeviceAddress): string => `${device.userId}.${device.deviceId}`;

export class DeliveryMemory {
  private readonly highest = new Map<string, number>();

  /** [DLV-10] Whether an item of this device's queue was delivered before, on this or an earlier session. */
  deliveredBefore(device: DeviceAddress, seq: number): boolean {
    return seq <= (this.highest.get(keyOf(device)) ?? 0);
  }

  recordDelivery(device: DeviceAddress, seq: number): void {
    const key = keyOf(device);
    if (seq > (this.highest.get(key) ?? 0)) this.highest.set(key, seq);
  }

  /** The device was deleted: its queue is gone, and so is what we knew about it. */
  forget(device: DeviceAddress): void {
    this.highest.delete(keyOf(device));
  }

  get size(): number {
    return this.highest.size;
  }
}
