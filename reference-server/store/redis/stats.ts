// The numbers behind stats(), kept cheap because metric gauges read them synchronously. accounts, devices and
// queuedItems are counters in the `tw:stats` hash that every process changes after each of its committed changes
// (not in the same atomic step, which would put a global key into every user's script: a crash or a Redis failure in
// between leaves a counter off by that change, so they are approximate) and reads back periodically. maxQueueDepth is
// the longest queue this process has seen in its own enqueues and acknowledgements; cachedItems is 0, since message
// bodies stay in Redis.
import type { DeviceAddress, StoreStats } from '../store.ts';
import type { RedisClient } from './connection.ts';
import { keys } from './keys.ts';

/** Queue depths remembered at most (the oldest entries go first). */
const DEPTHS_MAX = 100_000;

export type CounterName = 'accounts' | 'devices' | 'queuedItems';

export class StatsCounters {
  private readonly counters: Record<CounterName, number> = { accounts: 0, devices: 0, queuedItems: 0 };
  private readonly depths = new Map<string, number>();
  private maxDepth = 0;

  constructor(private readonly redis: RedisClient) {}

  /** Adjusts a counter here at once and in Redis after the fact. */
  bump(name: CounterName, delta: number): void {
    if (delta === 0) return;
    this.counters[name] += delta;
    this.redis.hincrby(keys.stats, name, delta).catch(() => undefined);
  }

  /** Records the length a device's queue had after one of this process's changes (0 once it is gone). */
  noteDepth(device: DeviceAddress, depth: number): void {
    const key = `${device.userId}.${device.deviceId}`;
    this.depths.delete(key);
    if (depth > 0) {
      this.depths.set(key, depth);
      if (this.depths.size > DEPTHS_MAX) this.depths.delete(this.depths.keys().next().value!);
    }
    if (depth > this.maxDepth) this.maxDepth = depth;
  }

  /** Reads the shared counters back from Redis. */
  async refresh(): Promise<void> {
    const values = await this.redis.hgetall(keys.stats);
    this.counters.accounts = Number(values['accounts'] ?? 0);
    this.counters.devices = Number(values['devices'] ?? 0);
    this.counters.queuedItems = Number(values['queuedItems'] ?? 0);
    let max = 0;
    for (const depth of this.depths.values()) if (depth > max) max = depth;
    this.maxDepth = max;
  }

  snapshot(): StoreStats {
    return {
      accounts: Math.max(0, this.counters.accounts),
      devices: Math.max(0, this.counters.devices),
      queuedItems: Math.max(0, this.counters.queuedItems),
      maxQueueDepth: this.maxDepth,
      cachedItems: 0,
    };
  }
}
