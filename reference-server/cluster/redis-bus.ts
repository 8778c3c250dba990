// The session bus of processes sharing a Redis deployment (key layout and scripts: redis-scripts.ts). Two connections:
// one for commands (no offline queue: while Redis is unreachable a command fails at once, and the request that needed
// it is refused rather than promised), one subscribed to the broadcast channel and to this process's own channel.
//
// - Claims [DLV-34]: CLAIM makes this process the device's holder and names the previous one. If that was another
//   process, a `replace` request goes to its channel and the claim waits for its `replaced` answer (not when PUBLISH
//   reached nobody: the process is gone; at most REPLACE_ACK_TIMEOUT_MS when it does not answer).
// - Presence [PRS-1] [PRS-2] [PRS-6]: transitions are published by the scripts themselves; every process (this one
//   included) hears them on the broadcast channel. Snapshots read the same keys.
// - Liveness: each process holds a lease in tw:bus:procs, renewed every third of its TTL, and records the devices it
//   holds or claims in tw:bus:proc:<P>. Every process reaps, every half TTL, the processes whose lease expired: it
//   releases their claims (their users go offline) and drops their records. So after a SIGKILL the dead process's
//   users stay online for at most about 1.5 × the lease TTL (cluster/constants.ts).
// - Typing, prekeys_low, device removals: delivered locally at once and published for the other processes, which
//   ignore what they published themselves.
// - Redis Cluster (a redis+cluster:// URL, store/redis/url.ts): every script touches one key or the keys of one user
//   (one slot); the commands connection is a Cluster client, the subscriber a plain connection to one node (classic
//   pub/sub reaches every node of a cluster; store/redis/connection.ts). Two things need care there: a PUBLISH
//   answers how many subscribers of ITS node got the message, so whether a process still listens is asked of every
//   node (listeners); and the record of a claimed device is written before the claim, not only sent before it,
//   since the two keys may be on two nodes.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../context.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import { createClient, createSubscriber, isCluster, type RedisClient } from '../store/redis/connection.ts';
import type { DeviceAddress } from '../store/store.ts';
import type { BusHandlers, PresenceState, SessionBus, TypingState } from './bus.ts';
import {
  BUS_COMMAND_TIMEOUT_MS,
  BUS_CONNECT_TIMEOUT_MS,
  BUS_MAX_RECONNECT_DELAY_MS,
  DEFAULT_LEASE_TTL_MS,
  DEVICE_SEEN_RESOLUTION_MS,
  MIN_LEASE_TTL_MS,
  REPLACE_ACK_TIMEOUT_MS,
} from './constants.ts';
import { CLAIM, EXPIRED, LEASE, RAISE_FIELD, RELEASE, SNAPSHOT } from './redis-scripts.ts';

export interface RedisBusOptions {
  now: () => number;
  log: Logger;
  /** See DEFAULT_LEASE_TTL_MS. */
  leaseTtlMs?: number;
  /** Test hook: the id of this process in the service (random by default). */
  processId?: string;
}

const BROADCAST = 'tw:bus';
const PROCS = 'tw:bus:procs';
const channelOf = (processId: string) => `tw:bus:p:${processId}`;
const recordsOf = (processId: string) => `tw:bus:proc:${processId}`;
const ownersKey = (userId: string) => `tw:{${userId}}:bus:owners`;
const presenceKey = (userId: string) => `tw:{${userId}}:bus:presence`;
const deliveredKey = (userId: string) => `tw:{${userId}}:bus:delivered`;
const seenKey = (userId: string) => `tw:{${userId}}:bus:seen`;
const recordField = (device: DeviceAddress) => `${device.userId} ${device.deviceId}`;
/** Processes reaped per round; the next round takes the rest. */
const REAP_BATCH = 16;
/** Devices whose last written authentication time this process remembers (oldest forgotten first). */
const SEEN_WRITTEN_MAX = 100_000;

/** Messages on the channels (JSON). `o` is the publishing process. */
type BusMessage =
  | { k: 'presence'; u: string; on: boolean; at?: string; v: number }
  | { k: 'typing'; o: string; to: string; from: DeviceAddress; state: TypingState }
  | { k: 'prekeys-low'; o: string; device: DeviceAddress; remaining: number }
  | { k: 'device-removed'; o: string; device: DeviceAddress }
  | { k: 'replace'; o: string; rid: string; device: DeviceAddress; claim: number }
  | { k: 'replaced'; rid: string };

function unavailable(error: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`session bus: ${error instanceof Error ? error.message : String(error)}`);
}

/**
 * `offlineQueue` false: a command issued while Redis is unreachable fails at once (the commands connection); true for
 * the subscriber, whose subscriptions ioredis renews by itself after a reconnection.
 */
function connectionOptions(offlineQueue: boolean): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: offlineQueue,
    maxRetriesPerRequest: 1,
    commandTimeout: BUS_COMMAND_TIMEOUT_MS,
    connectTimeout: BUS_CONNECT_TIMEOUT_MS,
    retryStrategy: (times: number) => Math.min(times * 100, BUS_MAX_RECONNECT_DELAY_MS),
  };
}

export class RedisBus implements SessionBus {
  readonly processId: string;
  private readonly cmd: RedisClient;
  private readonly sub: Redis;
  private handlers: BusHandlers | undefined;
  private readonly leaseTtlMs: number;
  /** Devices this process holds or claims: how many claims of each are not released yet (tw:bus:proc:<P>). */
  private readonly records = new Map<string, number>();
  /** On a cluster: the writes of records still in flight; a claim of the device waits for its record (see claim). */
  private readonly recording = new Map<string, Promise<boolean>>();
  /** Releases that failed (Redis unreachable): retried on every lease renewal. */
  private retries: Array<{ device: DeviceAddress; holder: string; mode: 'exact' | 'prefix' }> = [];
  private readonly waiting = new Map<string, () => void>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private requestCounter = 0;
  private leaseTimer: NodeJS.Timeout | undefined;
  private reapTimer: NodeJS.Timeout | undefined;
  private readyCount = 0;
  /**
   * After a reconnection, or a gap in this process's own renewals (Redis or this process stalled), reaping waits a
   * lease TTL: the other processes were most likely cut off just as long, and must get the chance to renew first.
   */
  private reapNotBefore = 0;
  private lastRenewedAt = 0;
  /** Devices whose delivered mark is being written, with the highest seq to write after it [DLV-10]. */
  private readonly marks = new Map<string, { next?: number }>();
  /** [IDN-23] The authentication time this process last wrote for each device (see deviceSeen). */
  private readonly seenWritten = new Map<string, number>();
  private closed: Promise<void> | undefined;

  constructor(url: string, private readonly options: RedisBusOptions) {
    this.processId = options.processId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.leaseTtlMs = Math.max(MIN_LEASE_TTL_MS, options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS);
    this.cmd = createClient(url, connectionOptions(false));
    this.sub = createSubscriber(url, connectionOptions(true), this.cmd);
    // ioredis reports connection trouble as 'error' events; without a listener they would be thrown.
    this.cmd.on('error', (error: Error) => options.log.debug('bus.redis_error', { connection: 'commands', message: error.message }));
    if (isCluster(this.cmd)) this.cmd.on('node error', (error: Error) => options.log.debug('bus.redis_error', { connection: 'commands', message: error.message }));
    this.sub.on('error', (error: Error) => options.log.debug('bus.redis_error', { connection: 'subscriber', message: error.message }));
    this.sub.on('message', (_channel: string, text: string) => this.onMessage(text));
    this.cmd.on('ready', () => this.onCommandsReady());
    this.sub.on('ready', () => {
      // The first 'ready' is the start; a later one follows a reconnection, during which transitions may have been
      // published and lost [PRS-7].
      if (++this.readyCount > 1) {
        this.options.log.info('bus.reconnected', {});
        this.handlers?.resync();
      }
    });
  }

  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    try {
      await Promise.all([this.cmd.connect(), this.sub.connect()]);
      await this.sub.subscribe(BROADCAST, channelOf(this.processId));
      await LEASE.run(this.cmd, [PROCS], [this.processId, this.leaseTtlMs, 'join']);
      this.lastRenewedAt = Date.now();
    } catch (error) {
      this.cmd.disconnect();
      this.sub.disconnect();
      throw unavailable(error);
    }
    this.leaseTimer = setInterval(() => void this.renew(), Math.floor(this.leaseTtlMs / 3));
    this.leaseTimer.unref();
    this.reapTimer = setInterval(() => void this.reap(), Math.floor(this.leaseTtlMs / 2));
    this.reapTimer.unref();
    this.options.log.info('bus.joined', { processId: this.processId, leaseTtlMs: this.leaseTtlMs });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Claims [DLV-34]

  async claim(device: DeviceAddress, onNumber: (claim: number) => void): Promise<number> {
    const recorded = this.addRecord(device);
    let claim: number;
    let previous: string;
    try {
      // On a cluster the record and the claim may be on two nodes: the record must be in Redis first, or a crash in
      // between would leave a claim that no reaper finds. (On one Redis, sending it first on the one connection is enough.)
      if (isCluster(this.cmd) && !(await recorded)) throw new Error('the record of the claim could not be written');
      const reply = (await this.track(CLAIM.run(this.cmd, [ownersKey(device.userId), presenceKey(device.userId)], [device.deviceId, this.processId, BROADCAST, device.userId]))) as [number, string];
      claim = Number(reply[0]);
      previous = String(reply[1]);
    } catch (error) {
      throw unavailable(error);
    }
    onNumber(claim);
    if (previous === '') return claim;
    const holder = previous.slice(0, previous.lastIndexOf(' '));
    if (holder === this.processId) await this.started().replace(device, claim);
    else await this.ask(holder, device, claim);
    return claim;
  }

  release(device: DeviceAddress, claim: number | undefined): void {
    const field = recordField(device);
    const left = (this.records.get(field) ?? 1) - 1;
    // With no claim of the device left here, any holder naming this process is stale, whatever its number (also when
    // the number of a failed claim never became known). Otherwise only this claim's own entry goes.
    if (left <= 0) this.records.delete(field);
    else this.records.set(field, left);
    if (left > 0 && claim === undefined) return;
    const holder = left <= 0 ? `${this.processId} ` : `${this.processId} ${claim}`;
    const done = this.releaseHolder(device, holder, left <= 0 ? 'prefix' : 'exact').then((ok) => {
      if (!ok) return;
      if (left <= 0 && !this.records.has(field)) return this.cmd.hdel(recordsOf(this.processId), field);
      return undefined;
    });
    this.track(done).catch(() => undefined);
  }

  private async releaseHolder(device: DeviceAddress, holder: string, mode: 'exact' | 'prefix'): Promise<boolean> {
    try {
      await RELEASE.run(this.cmd, [ownersKey(device.userId), presenceKey(device.userId)], [device.deviceId, holder, mode, BROADCAST, device.userId, this.options.now()]);
      return true;
    } catch (error) {
      this.options.log.warn('bus.release_failed', { userId: device.userId, deviceId: device.deviceId, message: (error as Error).message });
      this.retries.push({ device, holder, mode });
      return false;
    }
  }

  /** Counts a claim of the device; resolves whether its record is (or is being) written to Redis. */
  private addRecord(device: DeviceAddress): Promise<boolean> {
    const field = recordField(device);
    const count = this.records.get(field) ?? 0;
    this.records.set(field, count + 1);
    if (count > 0) return this.recording.get(field) ?? Promise.resolve(true);
    // Sent before the claim on the same connection, so one Redis has the record before the holder entry it covers.
    const written = this.track(this.cmd.hset(recordsOf(this.processId), field, 1)).then(
      () => true,
      () => false,
    );
    this.recording.set(field, written);
    void written.then(() => {
      if (this.recording.get(field) === written) this.recording.delete(field);
    });
    return written;
  }

  /**
   * Whether anybody listens on a channel, after a PUBLISH to it reached `receivers` subscribers. On one Redis that is
   * the answer; on a cluster PUBLISH counts only the subscribers of the node that took it, so every node is asked.
   */
  private async listeners(channel: string, receivers: number): Promise<number> {
    if (receivers > 0 || !isCluster(this.cmd)) return receivers;
    // A node that does not answer counts as nobody (as a process on it could not answer either).
    const counts = await Promise.allSettled(this.cmd.nodes('all').map((node) => node.pubsub('NUMSUB', channel)));
    return counts.reduce<number>((sum, reply) => sum + (reply.status === 'fulfilled' ? Number((reply.value as unknown[])[1] ?? 0) : 0), 0);
  }

  /** Sends a request to another process and waits for its answer (not when nobody received it; bounded). */
  private async ask(processId: string, device: DeviceAddress, claim: number): Promise<void> {
    const rid = `${this.processId}/${++this.requestCounter}`;
    const message: BusMessage = { k: 'replace', o: this.processId, rid, device, claim };
    const answered = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rid);
        this.options.log.warn('bus.replace_unanswered', { processId, userId: device.userId, deviceId: device.deviceId });
        resolve();
      }, REPLACE_ACK_TIMEOUT_MS);
      this.waiting.set(rid, () => {
        clearTimeout(timer);
        this.waiting.delete(rid);
        resolve();
      });
    });
    let receivers: number;
    try {
      receivers = await this.listeners(channelOf(processId), await this.cmd.publish(channelOf(processId), JSON.stringify(message)));
    } catch (error) {
      this.waiting.get(rid)?.();
      throw unavailable(error);
    }
    // Nobody subscribed to its channel: the process is gone, and its sessions with it.
    if (receivers === 0) this.waiting.get(rid)?.();
    await answered;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Presence, typing, hub events

  async presence(userIds: readonly string[]): Promise<PresenceState[]> {
    try {
      const replies = await this.track(Promise.all(userIds.map((userId) => SNAPSHOT.run(this.cmd, [ownersKey(userId), presenceKey(userId)], []))));
      return replies.map((reply, index) => {
        const [holders, version, seen] = reply as [number, string, string];
        const userId = userIds[index]!;
        if (Number(holders) > 0) return { userId, online: true, version: Number(version) };
        return { userId, online: false, version: Number(version), ...(seen === '' ? {} : { lastSeenAt: Number(seen) }) };
      });
    } catch (error) {
      throw unavailable(error);
    }
  }

  typing(to: string, from: DeviceAddress, state: TypingState): void {
    this.handlers?.typing(to, from, state);
    this.broadcast({ k: 'typing', o: this.processId, to, from, state });
  }

  prekeysLow(device: DeviceAddress, remaining: number): void {
    this.handlers?.prekeysLow(device, remaining);
    this.broadcast({ k: 'prekeys-low', o: this.processId, device, remaining });
  }

  deviceRemoved(device: DeviceAddress): void {
    this.handlers?.deviceRemoved(device);
    this.broadcast({ k: 'device-removed', o: this.processId, device });
  }

  private broadcast(message: BusMessage): void {
    // [PRS-16] Ephemeral: a signal that cannot be published now is dropped.
    this.cmd.publish(BROADCAST, JSON.stringify(message)).catch((error: Error) => this.options.log.debug('bus.publish_failed', { message: error.message }));
  }

  async deliveredMark(device: DeviceAddress): Promise<number> {
    try {
      return Number((await this.cmd.hget(deliveredKey(device.userId), String(device.deviceId))) ?? 0);
    } catch {
      // [DLV-10] The flag is a hint; without Redis the process's own memory decides.
      return 0;
    }
  }

  markDelivered(device: DeviceAddress, seq: number): void {
    // Written at once (before a replacement's answer leaves this process on the same connection, so the next session
    // reads it); while a write of the device is in flight, only the highest seq waits for the next one.
    const key = recordField(device);
    const mark = this.marks.get(key);
    if (mark) {
      mark.next = Math.max(mark.next ?? 0, seq);
      return;
    }
    this.marks.set(key, {});
    this.writeMark(key, device, seq);
  }

  private writeMark(key: string, device: DeviceAddress, seq: number): void {
    const written = RAISE_FIELD.run(this.cmd, [deliveredKey(device.userId)], [device.deviceId, seq]).catch(() => undefined);
    void this.track(written).then(() => {
      const next = this.marks.get(key)?.next;
      if (next === undefined) this.marks.delete(key);
      else {
        this.marks.set(key, {});
        this.writeMark(key, device, next);
      }
    });
  }

  deviceSeen(device: DeviceAddress, at: number): void {
    // Written at once, so that a device list on another process right after this answer shows it; but at most once a
    // DEVICE_SEEN_RESOLUTION_MS per device from this process, so that busy devices do not cost a write per request.
    const key = recordField(device);
    if (at - (this.seenWritten.get(key) ?? -Infinity) < DEVICE_SEEN_RESOLUTION_MS) return;
    this.seenWritten.set(key, at);
    if (this.seenWritten.size > SEEN_WRITTEN_MAX) this.seenWritten.delete(this.seenWritten.keys().next().value!);
    this.track(RAISE_FIELD.run(this.cmd, [seenKey(device.userId)], [device.deviceId, at])).catch(() => this.seenWritten.delete(key));
  }

  async devicesSeen(userId: string): Promise<Map<number, number>> {
    try {
      const all = await this.cmd.hgetall(seenKey(userId));
      return new Map(Object.entries(all).map(([deviceId, at]) => [Number(deviceId), Number(at)]));
    } catch {
      return new Map();
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Messages

  private onMessage(text: string): void {
    let message: BusMessage;
    try {
      message = JSON.parse(text) as BusMessage;
    } catch {
      this.options.log.warn('bus.bad_message', { bytes: text.length });
      return;
    }
    const handlers = this.handlers;
    if (!handlers) return;
    switch (message.k) {
      case 'presence':
        handlers.presence({ userId: message.u, online: message.on, version: Number(message.v), ...(message.at === undefined ? {} : { lastSeenAt: Number(message.at) }) });
        return;
      case 'typing':
        if (message.o !== this.processId) handlers.typing(message.to, message.from, message.state);
        return;
      case 'prekeys-low':
        if (message.o !== this.processId) handlers.prekeysLow(message.device, message.remaining);
        return;
      case 'device-removed':
        if (message.o !== this.processId) handlers.deviceRemoved(message.device);
        return;
      case 'replace':
        // [DLV-34] Ends this process's older sessions of the device, then answers.
        void handlers
          .replace(message.device, message.claim)
          .catch((error: unknown) => this.options.log.error('bus.replace_failed', { error }))
          .then(() => this.cmd.publish(channelOf(message.o), JSON.stringify({ k: 'replaced', rid: message.rid })))
          .catch((error: Error) => this.options.log.warn('bus.answer_failed', { message: error.message }));
        return;
      case 'replaced':
        this.waiting.get(message.rid)?.();
        return;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Liveness

  private onCommandsReady(): void {
    if (this.leaseTimer === undefined) return; // still starting
    this.reapNotBefore = Date.now() + this.leaseTtlMs;
    void this.renew();
  }

  private async renew(): Promise<void> {
    try {
      const renewed = Number(await LEASE.run(this.cmd, [PROCS], [this.processId, this.leaseTtlMs, 'renew']));
      if (renewed === 0) {
        // Declared dead while alive (a stall longer than the lease): the others released this process's claims.
        this.options.log.warn('bus.lease_lost', { processId: this.processId });
        await LEASE.run(this.cmd, [PROCS], [this.processId, this.leaseTtlMs, 'join']);
        if (this.records.size > 0) await this.cmd.hset(recordsOf(this.processId), Object.fromEntries([...this.records.keys()].map((field) => [field, 1])));
        this.handlers?.lost();
      }
      const now = Date.now();
      if (now - this.lastRenewedAt > this.leaseTtlMs / 2) this.reapNotBefore = now + this.leaseTtlMs;
      this.lastRenewedAt = now;
    } catch (error) {
      this.options.log.debug('bus.renew_failed', { message: (error as Error).message });
      return;
    }
    const retries = this.retries;
    this.retries = [];
    for (const retry of retries) await this.releaseHolder(retry.device, retry.holder, retry.mode);
  }

  /** Releases the claims of processes whose lease expired, and forgets them. */
  private async reap(): Promise<void> {
    if (Date.now() < this.reapNotBefore) return;
    try {
      const expired = ((await EXPIRED.run(this.cmd, [PROCS], [REAP_BATCH])) as string[]).filter((id) => id !== this.processId);
      for (const processId of expired) {
        const fields = await this.cmd.hkeys(recordsOf(processId));
        for (const field of fields) {
          const space = field.lastIndexOf(' ');
          const device = { userId: field.slice(0, space), deviceId: Number(field.slice(space + 1)) };
          await RELEASE.run(this.cmd, [ownersKey(device.userId), presenceKey(device.userId)], [device.deviceId, `${processId} `, 'prefix', BROADCAST, device.userId, this.options.now()]);
        }
        await this.cmd.del(recordsOf(processId));
        await this.cmd.zrem(PROCS, processId);
        this.options.log.info('bus.reaped', { processId, devices: fields.length });
      }
    } catch (error) {
      this.options.log.debug('bus.reap_failed', { message: (error as Error).message });
    }
  }

  // ---------------------------------------------------------------------------------------------------------------

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    const forget = () => this.inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  private started(): BusHandlers {
    if (!this.handlers) throw new Error('RedisBus: start() first');
    return this.handlers;
  }

  async close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.leaseTimer);
      clearInterval(this.reapTimer);
      await Promise.allSettled([...this.inFlight]);
      for (const retry of this.retries.splice(0)) await this.releaseHolder(retry.device, retry.holder, retry.mode);
      // Leaving cleanly: nothing of this process is left to reap. If some release failed the lease stays, and the
      // others reap this process's claims when it expires.
      if (this.retries.length === 0 && this.records.size === 0) {
        await Promise.allSettled([this.cmd.zrem(PROCS, this.processId), this.cmd.del(recordsOf(this.processId))]);
      }
      this.handlers = undefined;
      this.sub.disconnect();
      await this.cmd.quit().catch(() => this.cmd.disconnect());
      this.options.log.info('bus.left', { processId: this.processId });
    })();
    return this.closed;
  }
}
