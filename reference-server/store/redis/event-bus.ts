// The store's events across processes. A script that commits an enqueue or a device removal also PUBLISHes it on the
// `tw:events` channel, in the same atomic step, so every process sharing the Redis hears of it: Redis sends a
// published message only after the write it follows is in the append-only file (replies and pushes go out after the
// fsync of `appendfsync always`), so a listener that reads the queue on an 'enqueued' event finds the items.
//
// Each process listens on a dedicated subscriber connection. Events of its own writes are delivered to its listeners
// at once when the write's reply comes back (not waiting for the echo, which it ignores by its origin tag), so a local
// session wakes even when pub/sub is slow. While the subscriber connection is down, events of other processes are
// lost; when it is back (subscribed again), `resync` re-announces the state of the devices this process watches.
//
// Wire format, space-separated: "<origin> e <userId> <deviceId> <lastSeq>" or "<origin> r <userId> <deviceId>".
// userIds are base64url and origins hex, so neither holds a space.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DeviceAddress, StoreEvent } from '../store.ts';
import { keys } from './keys.ts';

/** How long to wait before trying a failed resubscription or resync again (the command connection may lag behind). */
const RECOVER_RETRY_MS = 250;

export class EventBus {
  /** Tags this process's messages, so that it can skip their echo. */
  readonly origin = randomBytes(8).toString('hex');
  readonly channel = keys.events;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private subscribedOnce = false;
  private closed = false;
  /** Counts reconnections; a recovery loop gives way to the one of a later reconnection. */
  private generation = 0;

  constructor(
    private readonly subscriber: Redis,
    /** Re-announces what may have been missed while the subscription was down. */
    private readonly resync: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.receive(message);
    });
    // After a reconnect, subscribe again and only then resync, so that nothing falls between the two.
    subscriber.on('ready', () => {
      if (this.subscribedOnce && !this.closed) void this.recover(++this.generation);
    });
  }

  private async recover(generation: number): Promise<void> {
    while (!this.closed && generation === this.generation) {
      try {
        await this.subscribe();
        await this.resync();
        return;
      } catch (error) {
        this.onError(error);
        await new Promise((resolve) => setTimeout(resolve, RECOVER_RETRY_MS));
      }
    }
  }

  /** Subscribes for the first time (the connection is ready). */
  async start(): Promise<void> {
    await this.subscribe();
    this.subscribedOnce = true;
  }

  private async subscribe(): Promise<void> {
    await this.subscriber.subscribe(this.channel);
  }

  /** The event text prefix a script completes with " <deviceId> <lastSeq>". */
  enqueuedPrefix(userId: string): string {
    return `${this.origin} e ${userId}`;
  }

  removedText(device: DeviceAddress): string {
    return `${this.origin} r ${device.userId} ${device.deviceId}`;
  }

  /** Delivers an event to this process's listeners. */
  emit(event: StoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the store's state is already settled.
      }
    }
  }

  listen(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
  }

  private receive(message: string): void {
    const [origin, type, userId, deviceText, seqText] = message.split(' ');
    if (origin === this.origin || userId === undefined || deviceText === undefined) return;
    const device = { userId, deviceId: Number(deviceText) };
    if (type === 'e' && seqText !== undefined) this.emit({ type: 'enqueued', device, lastSeq: Number(seqText) });
    else if (type === 'r') this.emit({ type: 'device-removed', device });
  }
}
