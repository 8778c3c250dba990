// The Redis-backed store: the same Store as the embedded log (store.ts), kept in Redis so that several server processes
// and hosts share it. Key layout: keys.ts (a hash tag per user, ready for Redis Cluster); scripts: scripts.ts; events
// across processes: event-bus.ts.
//
// DURABILITY. A promise of this store resolves only after Redis has answered the write, and Redis answers a write
// (and sends anything that depends on it: a read of it, a published event) only after it is in its append-only file.
// What that file is worth depends on how Redis is configured:
//   appendonly yes, appendfsync always    every answered write is fsynced first: send_ok, an acknowledgement, a
//                                         taken one-time prekey survive a crash of Redis or of its host. This is the
//                                         setting that keeps the spec's promises [MSG-12] [DLV-39] [RCP-5] [PKY].
//   appendonly yes, appendfsync everysec  Redis fsyncs once a second: a crash of the host (not of Redis alone) loses up
//                                         to about a second of ACKed messages and acknowledgements, and a one-time
//                                         prekey handed out in that second may be handed out again.
//   appendonly no (RDB snapshots or none) a restart of Redis loses everything since the last snapshot, or everything.
// Replicas are asynchronous: a failover to a replica can lose ACKed writes whatever the fsync setting.
// openRedisStore logs a warning when the server it connects to is not on `appendonly yes` + `appendfsync always`.
//
// ATOMICITY. Every change of ONE user's data is one Lua script (atomic, keys declared in KEYS, one hash tag). Three
// operations span users, and are ordered, idempotent steps instead of one script, so that they work unchanged on a
// Redis Cluster, where keys of two users may be on two shards. This store always runs them in steps, single node
// or not: one code path, tested as it runs in a cluster, at the cost of one extra round trip (and fsync) per send.
//
//   A send (sender S.D, messageId m, recipient R) [MSG-2] [MSG-12] [MSG-14] [MSG-17]:
//     1. CLAIM_SEND in S's slot writes the deduplication claim (S, D, m) → (to R, serverTime, lease deadline).
//        If a live claim names R too, it is shared (its lease extended); if it names another recipient R', see below.
//     2. ENQUEUE_MESSAGE in R's slot checks the acceptance marker (S, D, m), the recipient, its devices and queues,
//        and then appends every item AND writes the marker, in one script. It refuses after the claim's lease deadline.
//     send_ok follows step 2: the claim (durable since step 1) and the marker together are the deduplication record.
//   Why nothing is lost or doubled: the items and the marker are one atomic write, so "the send was accepted" and
//   "the marker exists" are the same fact; a retry of step 2 (a resend after a crash, or a resend racing its original
//   on another process) finds the marker and answers duplicate with the original serverTime, only once it is durable.
//   A resend to ANOTHER recipient R' finds the claim naming R: the store answers duplicate if R's marker exists; else
//   the original may still be in flight, so it waits a little and answers StoreUnavailableError (TEMPORARILY_UNAVAILABLE,
//   which promises nothing) until the claim's lease is over. Only then, when step 2 of the original can no longer
//   succeed (it checks the deadline inside the script) and R's marker is still absent, does it take the claim over
//   (compare-and-set) for R'. Clocks: the deadline is set by S's Redis and checked by R's; the takeover waits
//   CLOCK_SKEW_MS more, which assumes the Redis servers' clocks agree within that. A refused send deletes its claim
//   (only if it created it and nobody shared it since); a claim left by a crash expires with the deduplication window.
//
//   An acknowledgement by device U.D producing delivered receipts for senders S1, S2 ... [RCP-1] [RCP-2] [RCP-5]:
//     1. ACK_ITEMS in U's slot removes the items AND records the receipts they owe in U's receipt outbox, in one
//        script: the items leave the queue at once (a capacity check that follows sees the room, as store.ts
//        requires), and the receipts are durable no later than the removal.
//     2. ENQUEUE_RECEIPTS in each sender's slot appends the receipts (at most maxReceiptIds messageIds each).
//     3. The outbox entry is deleted.
//   A failure after step 1 leaves the entry in the outbox: this process tries it again a few times, and the retention
//   sweep (expire(), run once a minute by one process of the service) delivers every entry older than
//   OUTBOX_STALE_MS, which also covers a process that crashed. A receipt can be enqueued twice (a failure between 2
//   and 3; RCP-5 allows that), never lost.
//
//   Registration: the user's data is written first (under a fresh random userId nobody knows yet), then the username
//   is claimed with SET NX; a lost race deletes the new data. A crash in between leaves data no one can reach.
//   Link codes: the code lives in its user's slot (so that removing the device that obtained it deletes it in the
//   same script) and a global pointer codeHash → userId, written after it, finds it.
//
// ORDER [TRN-34]. Commands on one connection run in the order they are sent. The step of a send, an acknowledgement
// or a read receipt that applies its effect is sent in the order the operations were called for the acting device
// (a line per device, turns.ts), even though earlier steps of a later call may finish first. On a Redis Cluster the
// effects of two calls may go to two nodes, over two connections, so there the next call's effect is sent only once
// the previous one has been answered (passAfter): one round trip per effect and device, the price of the order.
//
// REDIS CLUSTER. The URL may name a cluster (url.ts, connection.ts). Every script and every multi-key command touches
// the keys of one user, so of one slot; commands over many users (the retention sweep, resync) are sent one by one
// there, since a cluster pipeline may only hold keys of one node (batch). Events use classic pub/sub, which a cluster
// broadcasts to every node (event-bus.ts).
//
// AVAILABILITY. While Redis is unreachable or does not answer, every operation rejects with StoreUnavailableError
// within about commandTimeoutMs per round trip (connection.ts); the connections come back by themselves.
//
// STATS. stats() answers from memory: approximate counters shared through Redis, read back every STATS_REFRESH_MS
// (stats.ts).
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { PreKey, SignedPreKey } from '../../../spec/index.ts';
import type { Logger } from '../../context.ts';
import { StoreUnavailableError } from '../errors.ts';
import type {
  AccountRecord,
  AckResult,
  BundleEntry,
  DeviceAddress,
  DeviceRecord,
  EnqueueMessageInput,
  EnqueueMessageResult,
  NewDevice,
  QueueItem,
  ReceiptItemRecord,
  Store,
  StoreEvent,
  StoreStats,
} from '../store.ts';
import {
  asArray,
  asNumber,
  asNumbers,
  asString,
  deviceJson,
  deviceRecord,
  messageJson,
  preKeyArgs,
  preKeyRange,
  queueItems,
  receiptJson,
  seqOfId,
  signedPreKeyJson,
} from './codec.ts';
import {
  close,
  connect,
  connectSubscriber,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_OPEN_TIMEOUT_MS,
  defineScripts,
  isCluster,
  masters,
  open,
  runScript,
  unavailable,
  type RedisClient,
} from './connection.ts';
import { EventBus } from './event-bus.ts';
import { owedFromReply, parseOutboxEntry, receiptGroups, type Owed } from './outbox.ts';
import { StatsCounters } from './stats.ts';
import { Turns, type Turn } from './turns.ts';
import { accountKeys, keys } from './keys.ts';
import * as scripts from './scripts.ts';
import type { LuaScript } from './scripts.ts';

/** How long a send's claim keeps a resend to another recipient waiting, and after which the original's step 2 refuses. */
export const SEND_LEASE_MS = 10_000;
/** How far the clocks of two Redis servers may disagree; a claim is taken over only this long after its lease. */
export const CLOCK_SKEW_MS = 2_000;
/** A resend to another recipient polls the original's marker this often, this many times, before giving up. */
const OTHER_RECIPIENT_POLL_MS = 100;
const OTHER_RECIPIENT_POLLS = 5;
/** Deduplication records live this much longer in Redis than their window, for clocks that disagree a little. */
const DEDUPE_TTL_SLACK_MS = 60_000;
/** Expired link codes of a user are dropped at most this often (by the callers' clock), as the log store does. */
const LINK_CODE_SWEEP_MS = 60_000;
/** The global pointer to a link code outlives the code by this much; without a `now`, it lives this long. */
const LINK_POINTER_SLACK_MS = 60_000;
const LINK_POINTER_DEFAULT_TTL_MS = 3_600_000;
/** How often stats() counters are read back from Redis. */
export const STATS_REFRESH_MS = 5_000;
/** Retention sweep: users per SSCAN page, items per script call, and how long one process holds the sweep. */
const EXPIRE_USERS_PAGE = 200;
const EXPIRE_ITEMS_BATCH = 1_000;
const EXPIRE_LOCK_MS = 55_000;
/** Devices whose state is re-announced after the event subscription was down (the ones this process reads). */
const WATCHED_DEVICES_MAX = 100_000;
/** A failed receipt delivery is tried again after 1, 2, 4 and 8 s; after that the retention sweep takes it. */
const OUTBOX_RETRY_MS = 1_000;
const OUTBOX_RETRIES = 4;
/** The retention sweep delivers outbox entries this old: their acknowledgement has certainly given up by then. */
export const OUTBOX_STALE_MS = 30_000;
/** Connection errors are logged at most this often (they repeat on every reconnection attempt while Redis is down). */
const ERROR_LOG_INTERVAL_MS = 10_000;

export interface RedisStoreOptions {
  /** A command that takes longer fails with StoreUnavailableError. Default DEFAULT_COMMAND_TIMEOUT_MS (1 s). */
  commandTimeoutMs?: number;
  /** How long openRedisStore waits for Redis. Default DEFAULT_OPEN_TIMEOUT_MS (5 s). */
  openTimeoutMs?: number;
  log?: Logger;
  /** SEND_LEASE_MS; tests shorten it. */
  sendLeaseMs?: number;
  /** CLOCK_SKEW_MS; tests shorten it. */
  clockSkewMs?: number;
  /** STATS_REFRESH_MS; tests shorten it. */
  statsRefreshMs?: number;
  /** OUTBOX_STALE_MS; tests shorten it. */
  outboxStaleMs?: number;
}

/** What Redis reports of its persistence settings, if it lets us ask (CONFIG may be disabled). */
export interface RedisPersistence {
  appendonly: string;
  appendfsync: string;
}

const ALL_SCRIPTS = Object.values(scripts).filter((value): value is LuaScript => typeof value === 'object' && value !== null && 'lua' in value);

const deviceKey = (d: DeviceAddress) => `${d.userId}.${d.deviceId}`;
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class RedisStore implements Store {
  /** Redis's persistence settings when the store opened (undefined when CONFIG GET is not allowed). */
  persistence: RedisPersistence | undefined;
  private readonly turns = new Turns();
  private readonly counters: StatsCounters;
  private readonly watched = new Map<string, DeviceAddress>();
  private statsTimer: NodeJS.Timeout | undefined;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  private readonly sendLeaseMs: number;
  private readonly clockSkewMs: number;
  private readonly outboxStaleMs: number;
  /** On a Redis Cluster: the order of effects needs answers, not only the order of sending (see the header). */
  private readonly clustered: boolean;

  private constructor(
    private readonly redis: RedisClient,
    private readonly subscriber: Redis,
    private readonly bus: EventBus,
    options: RedisStoreOptions,
  ) {
    this.sendLeaseMs = options.sendLeaseMs ?? SEND_LEASE_MS;
    this.clockSkewMs = options.clockSkewMs ?? CLOCK_SKEW_MS;
    this.outboxStaleMs = options.outboxStaleMs ?? OUTBOX_STALE_MS;
    this.clustered = isCluster(redis);
    this.counters = new StatsCounters(redis);
  }

  static async open(url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const log = options.log;
    let lastLogged = -Infinity;
    const onError = (error: unknown) => {
      if (!log || Date.now() - lastLogged < ERROR_LOG_INTERVAL_MS) return;
      lastLogged = Date.now();
      log.warn('store.redis_error', { error: error instanceof Error ? error.message : String(error) });
    };
    const redis = connect(url, 'tickwire-store', { commandTimeoutMs, onError });
    const subscriber = connectSubscriber(url, 'tickwire-events', { commandTimeoutMs, onError }, redis);
    defineScripts(redis, ALL_SCRIPTS);
    let store: RedisStore | undefined;
    const bus = new EventBus(subscriber, () => store?.resync() ?? Promise.resolve(), onError);
    store = new RedisStore(redis, subscriber, bus, options);
    try {
      const openTimeoutMs = options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
      await Promise.all([open(redis, openTimeoutMs), open(subscriber, openTimeoutMs)]);
      await bus.start();
      await store.counters.refresh();
    } catch (error) {
      redis.disconnect();
      subscriber.disconnect();
      throw unavailable(error);
    }
    store.persistence = await store.readPersistence();
    const p = store.persistence;
    if (log && (!p || p.appendonly !== 'yes' || p.appendfsync !== 'always')) {
      log.warn('store.redis_not_durable', {
        ...(p ?? { appendonly: 'unknown', appendfsync: 'unknown' }),
        note: 'send_ok promises durability only with appendonly yes and appendfsync always (reference-server/README.md)',
      });
    }
    store.statsTimer = setInterval(() => void store.counters.refresh().catch(() => undefined), options.statsRefreshMs ?? STATS_REFRESH_MS);
    store.statsTimer.unref();
    return store;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Plumbing

  /** Runs one operation: refuses after close(), and counts it so that close() lets it finish. */
  private async op<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    this.inflight++;
    try {
      return await run();
    } finally {
      this.inflight--;
      if (this.inflight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private script(script: LuaScript, keyList: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    return runScript(this.redis, script, keyList, args).catch((error: unknown) => {
      throw unavailable(error);
    });
  }

  private call<T>(command: Promise<T>): Promise<T> {
    return command.catch((error: unknown) => {
      throw unavailable(error);
    });
  }

  /**
   * Commands over the keys of many users, all sent at once: one pipeline on one Redis; on a cluster, where a pipeline
   * may only hold keys of one node, each command on its own. Their replies in order, or StoreUnavailableError if any
   * of them failed.
   */
  private async batch(commands: Array<[command: string, ...args: Array<string | number>]>): Promise<unknown[]> {
    if (this.clustered) return this.call(Promise.all(commands.map(([command, ...args]) => this.redis.call(command, ...args))));
    const results = await this.call(this.redis.pipeline(commands).exec());
    if (!results) throw new StoreUnavailableError('Redis: the pipeline was aborted');
    return results.map(([error, value]) => {
      if (error) throw unavailable(error);
      return value;
    });
  }

  private watch(device: DeviceAddress): void {
    const key = deviceKey(device);
    this.watched.delete(key);
    this.watched.set(key, { userId: device.userId, deviceId: device.deviceId });
    if (this.watched.size > WATCHED_DEVICES_MAX) this.watched.delete(this.watched.keys().next().value!);
  }

  /** The persistence settings of the Redis, or on a cluster those of the first master that is not durable (else any). */
  private async readPersistence(): Promise<RedisPersistence | undefined> {
    try {
      const value = (reply: unknown) => (Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : 'unknown');
      const settings = await Promise.all(
        masters(this.redis).map(async (node) => {
          const [aof, fsync] = await Promise.all([node.config('GET', 'appendonly'), node.config('GET', 'appendfsync')]);
          return { appendonly: value(aof), appendfsync: value(fsync) };
        }),
      );
      return settings.find((p) => p.appendonly !== 'yes' || p.appendfsync !== 'always') ?? settings[0];
    } catch {
      return undefined;
    }
  }

  /**
   * Lets the next operation of a device's line go [TRN-34]: at once, now that its effect step is sent, on one Redis
   * (one connection keeps the order); once that step is answered on a cluster, where the next may go to another node.
   */
  private passAfter(turn: Turn, step: Promise<unknown>): void {
    if (this.clustered) void step.then(turn.pass, turn.pass);
    else turn.pass();
  }

  /**
   * After the event subscription was down: announces the last seq of every watched device (a session's pump ignores
   * what it already has) and the removal of watched devices that are gone.
   */
  private async resync(): Promise<void> {
    const devices = [...this.watched.values()];
    for (let i = 0; i < devices.length; i += 500) {
      const page = devices.slice(i, i + 500);
      const results = await this.batch(
        page.flatMap((d): Array<[string, ...string[]]> => [
          ['xrevrange', keys.queue(d), '+', '-', 'COUNT', '1'],
          ['hexists', keys.devices(d.userId), String(d.deviceId)],
        ]),
      );
      page.forEach((device, n) => {
        const last = results[2 * n] as Array<[string, string[]]>;
        if (results[2 * n + 1] === 0) {
          this.watched.delete(deviceKey(device));
          this.bus.emit({ type: 'device-removed', device });
        } else if (last[0]) {
          this.bus.emit({ type: 'enqueued', device, lastSeq: seqOfId(last[0][0]) });
        }
      });
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Accounts and devices

  createAccount(username: string, device: NewDevice, now: number): Promise<{ userId: string; deviceId: number } | undefined> {
    return this.op(async () => {
      if ((await this.call(this.redis.exists(keys.username(username)))) === 1) return undefined;
      let userId: string;
      for (;;) {
        userId = randomBytes(16).toString('base64url');
        // Listed, so that the retention sweep finds every user whose data exists (a listed id without data is
        // skipped); both commands are sent together, and the account becomes reachable (its username) only once both
        // are answered. (One Redis applies them in this order; a cluster may not, which leaves at worst, when the
        // listing fails, data that nobody can reach.)
        const listed = this.call(this.redis.sadd(keys.users, userId));
        const created = this.script(scripts.CREATE_USER, accountKeys(userId), [
          username,
          now,
          deviceJson(device, now),
          signedPreKeyJson(device.signedPreKey),
          ...preKeyArgs(device.oneTimePreKeys),
        ]);
        const [, fresh] = await Promise.all([listed, created]);
        if (fresh === 1) break; // a userId collision (2^-128) tries another one
      }
      const won = await this.call(this.redis.set(keys.username(username), userId, 'NX'));
      if (won !== 'OK') {
        // Another registration of the name won; nobody knows this userId, so its data can simply go.
        await this.forgetUser(userId).catch(() => undefined);
        return undefined;
      }
      this.counters.bump('accounts', 1);
      this.counters.bump('devices', 1);
      return { userId, deviceId: 1 };
    });
  }

  private async forgetUser(userId: string): Promise<void> {
    const first = { userId, deviceId: 1 };
    await this.redis.del(...accountKeys(userId), keys.linkCodes(userId), keys.seqs(userId), keys.queue(first), keys.enqueuedAt(first));
    await this.redis.srem(keys.users, userId);
  }

  createLinkCode(userId: string, codeHash: string, expiresAt: number, byDeviceId = 0, now?: number): Promise<void> {
    return this.op(async () => {
      const stored = await this.script(scripts.CREATE_LINK_CODE, [keys.user(userId), keys.linkCodes(userId)], [codeHash, byDeviceId, expiresAt, now ?? '', LINK_CODE_SWEEP_MS]);
      if (stored !== 1) return;
      const ttl = now === undefined ? LINK_POINTER_DEFAULT_TTL_MS : Math.max(1, expiresAt - now) + LINK_POINTER_SLACK_MS;
      await this.call(this.redis.set(keys.linkCode(codeHash), userId, 'PX', ttl));
    });
  }

  linkDevice(codeHash: string, device: NewDevice, now: number, maxDevices: number): Promise<{ userId: string; deviceId: number } | 'invalid-code' | 'too-many-devices'> {
    return this.op(async () => {
      const userId = await this.call(this.redis.get(keys.linkCode(codeHash)));
      if (userId === null) return 'invalid-code';
      const reply = asArray(
        await this.script(scripts.LINK_DEVICE, [...accountKeys(userId), keys.linkCodes(userId)], [
          codeHash,
          now,
          maxDevices,
          deviceJson(device, now),
          signedPreKeyJson(device.signedPreKey),
          ...preKeyArgs(device.oneTimePreKeys),
        ]),
        'link-device',
      );
      const status = asString(reply[0], 'link-device');
      if (status === 'too-many-devices') return 'too-many-devices';
      // The code is used or dead: its pointer can go (if this fails, it expires on its own).
      this.redis.del(keys.linkCode(codeHash)).catch(() => undefined);
      if (status !== 'linked') return 'invalid-code';
      this.counters.bump('devices', 1);
      return { userId, deviceId: asNumber(reply[1], 'link-device') };
    });
  }

  removeDevice(address: DeviceAddress): Promise<'removed' | 'unknown-device' | 'last-device'> {
    return this.op(async () => {
      const { userId } = address;
      const reply = asArray(
        await this.script(
          scripts.REMOVE_DEVICE,
          [...accountKeys(userId), keys.linkCodes(userId), keys.seqs(userId), keys.queue(address), keys.enqueuedAt(address)],
          [address.deviceId, this.bus.channel, this.bus.removedText(address)],
        ),
        'remove-device',
      );
      const status = asString(reply[0], 'remove-device');
      if (status === 'unknown-device' || status === 'last-device') return status;
      this.counters.bump('devices', -1);
      this.counters.bump('queuedItems', -asNumber(reply[1], 'remove-device'));
      this.watched.delete(deviceKey(address));
      this.counters.noteDepth(address, 0);
      this.bus.emit({ type: 'device-removed', device: { userId, deviceId: address.deviceId } });
      return 'removed';
    });
  }

  getDevice(address: DeviceAddress): Promise<DeviceRecord | undefined> {
    return this.op(async () => {
      const [record, signedPreKey] = asArray(
        await this.script(scripts.GET_DEVICE, [keys.devices(address.userId), keys.signedPreKeys(address.userId)], [address.deviceId]),
        'get-device',
      );
      if (typeof record !== 'string' || typeof signedPreKey !== 'string') return undefined;
      return deviceRecord(address.userId, address.deviceId, record, signedPreKey);
    });
  }

  getAccount(userId: string): Promise<AccountRecord | undefined> {
    return this.op(() => this.account(userId));
  }

  private async account(userId: string): Promise<AccountRecord | undefined> {
    const reply = await this.script(scripts.GET_ACCOUNT, [keys.user(userId), keys.devices(userId)], []);
    if (reply === null) return undefined;
    const [username, createdAt, deviceIds] = asArray(reply, 'get-account');
    return {
      userId,
      username: asString(username, 'get-account'),
      createdAt: asNumber(createdAt, 'get-account'),
      deviceIds: asNumbers(deviceIds, 'get-account').sort((a, b) => a - b),
    };
  }

  findUserByUsername(username: string): Promise<AccountRecord | undefined> {
    return this.op(async () => {
      const userId = await this.call(this.redis.get(keys.username(username)));
      return userId === null ? undefined : this.account(userId);
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Prekeys

  setSignedPreKey(address: DeviceAddress, key: SignedPreKey): Promise<void> {
    return this.op(async () => {
      const set = await this.script(scripts.SET_SIGNED_PREKEY, [keys.devices(address.userId), keys.signedPreKeys(address.userId)], [address.deviceId, signedPreKeyJson(key)]);
      if (set !== 1) throw new RangeError('unknown device');
    });
  }

  addOneTimePreKeys(address: DeviceAddress, preKeys: PreKey[], maxStored: number): Promise<number | { duplicateKeyIds: number[] } | 'too-many'> {
    return this.op(async () => {
      const { userId } = address;
      const reply = asArray(
        await this.script(scripts.ADD_PREKEYS, [keys.user(userId), keys.devices(userId), keys.preKeys(userId), keys.preKeyOrder(userId)], [
          address.deviceId,
          maxStored,
          ...preKeyArgs(preKeys),
        ]),
        'add-prekeys',
      );
      switch (asString(reply[0], 'add-prekeys')) {
        case 'unknown-device':
          throw new RangeError('unknown device');
        case 'duplicate':
          return { duplicateKeyIds: asNumbers(reply[1], 'add-prekeys') };
        case 'too-many':
          return 'too-many';
        default:
          return asNumber(reply[1], 'add-prekeys');
      }
    });
  }

  countOneTimePreKeys(address: DeviceAddress): Promise<number> {
    return this.op(async () => {
      const [low, high] = preKeyRange(address.deviceId);
      return this.call(this.redis.zlexcount(keys.preKeyOrder(address.userId), low, high));
    });
  }

  takeBundles(userId: string, deviceId?: number, excludeDeviceId?: number): Promise<BundleEntry[] | 'unknown-user' | 'unknown-device'> {
    return this.op(async () => {
      const reply = asArray(
        await this.script(scripts.TAKE_BUNDLES, accountKeys(userId), [deviceId ?? '', excludeDeviceId ?? '']),
        'take-bundles',
      );
      const status = asString(reply[0], 'take-bundles');
      if (status === 'unknown-user' || status === 'unknown-device') return status;
      return reply.slice(1).map((entry): BundleEntry => {
        const [id, record, signedPreKey, keyId, publicKey, remaining] = asArray(entry, 'take-bundles');
        const device = deviceRecord(userId, asNumber(id, 'take-bundles'), asString(record, 'take-bundles'), asString(signedPreKey, 'take-bundles'));
        const oneTimePreKey = typeof keyId === 'string' && typeof publicKey === 'string' ? { keyId: Number(keyId), publicKey } : undefined;
        return { device, ...(oneTimePreKey ? { oneTimePreKey } : {}), remaining: asNumber(remaining, 'take-bundles') };
      });
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Queues

  enqueueMessage(input: EnqueueMessageInput, dedupeWindowMs: number, maxQueueItems: number): Promise<EnqueueMessageResult> {
    // The place in the sender's line is taken now, at the call [TRN-34].
    const turn = this.turns.take(deviceKey(input.from));
    return this.op(() => this.send(input, dedupeWindowMs, maxQueueItems, turn)).finally(turn.pass);
  }

  /** The send protocol of the header comment: claim in the sender's slot, then enqueue in the recipient's. */
  private async send(input: EnqueueMessageInput, dedupeWindowMs: number, maxQueueItems: number, turn: Turn): Promise<EnqueueMessageResult> {
    const claimKey = keys.dedupeClaim(input.from, input.messageId);
    const forgetAfter = input.serverTime + dedupeWindowMs;
    // Redis forgets the claim and the marker by its own clock, a little after the window by the callers' clock ends.
    const ttlMs = Math.max(0, dedupeWindowMs) + DEDUPE_TTL_SLACK_MS;
    let replace = '';
    let claim: { value: string; leaseUntil: number; fresh: boolean } | undefined;
    for (let polls = 0; !claim; ) {
      const reply = asArray(
        await this.script(scripts.CLAIM_SEND, [claimKey], [input.to, input.serverTime, forgetAfter, ttlMs, this.sendLeaseMs, replace]),
        'claim-send',
      );
      if (asString(reply[0], 'claim-send') === 'claimed') {
        claim = { value: asString(reply[1], 'claim-send'), leaseUntil: asNumber(reply[2], 'claim-send'), fresh: reply[3] === 1 };
        break;
      }
      // A live claim of this messageId names another recipient [MSG-14]: this is a resend of that send if it was
      // accepted (its marker exists; the marker is read after the claim, so a decision below is never stale).
      const [, value, otherTo, leaseUntil, redisNow] = reply;
      const original = await this.acceptance(asString(otherTo, 'claim-send'), input.from, input.messageId, input.serverTime);
      if (original) return { status: 'duplicate', serverTime: original.serverTime };
      if (asNumber(redisNow, 'claim-send') < asNumber(leaseUntil, 'claim-send') + this.clockSkewMs) {
        // The original may still be accepted: never answer before it is decided [MSG-17].
        if (++polls > OTHER_RECIPIENT_POLLS) throw new StoreUnavailableError('a send with this messageId to another recipient is still in progress');
        await delay(OTHER_RECIPIENT_POLL_MS);
        continue;
      }
      // The lease is over, so the original can no longer be accepted, and it was not: take the claim over.
      replace = asString(value, 'claim-send');
    }

    if (turn.ahead) await turn.ahead;
    const envelopeArgs: string[] = [];
    const queueKeys: string[] = [];
    for (const envelope of input.envelopes) {
      const device = { userId: input.to, deviceId: envelope.deviceId };
      queueKeys.push(keys.queue(device), keys.enqueuedAt(device));
      envelopeArgs.push(String(envelope.deviceId), messageJson(input.messageId, input.from, envelope.type, envelope.body, input.serverTime));
    }
    const enqueued = this.script(
      scripts.ENQUEUE_MESSAGE,
      [keys.user(input.to), keys.devices(input.to), keys.seqs(input.to), keys.acceptance(input.to, input.from, input.messageId), ...queueKeys],
      [
        input.from.userId,
        input.from.deviceId,
        input.to,
        input.serverTime,
        forgetAfter,
        ttlMs,
        claim.leaseUntil,
        maxQueueItems,
        this.bus.channel,
        this.bus.enqueuedPrefix(input.to),
        input.envelopes.length,
        ...envelopeArgs,
      ],
    );
    this.passAfter(turn, enqueued);
    const reply = asArray(await enqueued, 'enqueue-message');
    const status = asString(reply[0], 'enqueue-message');
    switch (status) {
      case 'duplicate':
        return { status: 'duplicate', serverTime: asNumber(reply[1], 'enqueue-message') };
      case 'accepted': {
        const seqs: Array<{ deviceId: number; seq: number }> = [];
        for (let i = 1; i + 2 < reply.length; i += 3) {
          const device = { userId: input.to, deviceId: asNumber(reply[i], 'enqueue-message') };
          const seq = asNumber(reply[i + 1], 'enqueue-message');
          seqs.push({ deviceId: device.deviceId, seq });
          this.counters.noteDepth(device, asNumber(reply[i + 2], 'enqueue-message'));
        }
        this.counters.bump('queuedItems', seqs.length);
        for (const { deviceId, seq } of seqs) this.bus.emit({ type: 'enqueued', device: { userId: input.to, deviceId }, lastSeq: seq });
        return { status: 'accepted', serverTime: input.serverTime, seqs };
      }
      case 'lease-expired':
        throw new StoreUnavailableError('the send took longer than its lease');
    }
    // Refused: nothing was enqueued, so the claim goes, unless another call shares it by now (it is then theirs).
    if (claim.fresh) await this.script(scripts.DELETE_IF, [claimKey], [claim.value]).catch(() => undefined);
    switch (status) {
      case 'unknown-user':
        return { status: 'unknown-user' };
      case 'stale-devices':
        return { status: 'stale-devices', missing: asNumbers(reply[1], 'enqueue-message'), extra: asNumbers(reply[2], 'enqueue-message') };
      case 'queue-full':
        return { status: 'queue-full', deviceIds: asNumbers(reply[1], 'enqueue-message') };
      default:
        throw new TypeError(`unexpected enqueue-message status '${status}'`);
    }
  }

  /** The acceptance marker of (from, messageId) in `to`'s slot, if it is still within its window at `now`. */
  private async acceptance(to: string, from: DeviceAddress, messageId: string, now: number): Promise<{ serverTime: number } | undefined> {
    const marker = await this.call(this.redis.get(keys.acceptance(to, from, messageId)));
    if (marker === null) return undefined;
    const [serverTime, forgetAfter] = marker.split('|').map(Number);
    return forgetAfter !== undefined && forgetAfter > now && serverTime !== undefined ? { serverTime } : undefined;
  }

  findDuplicate(from: DeviceAddress, messageId: string, now: number): Promise<{ serverTime: number } | undefined> {
    return this.op(async () => {
      const claim = await this.call(this.redis.get(keys.dedupeClaim(from, messageId)));
      if (claim === null) return undefined;
      const parts = claim.split('|');
      if (Number(parts[1]) <= now) return undefined;
      // [MSG-17] A duplicate only once the original is durable: its marker exists.
      return this.acceptance(parts.slice(3).join('|'), from, messageId, now);
    });
  }

  enqueueReceipt(
    to: DeviceAddress,
    receipt: Omit<ReceiptItemRecord, 'seq'>,
    maxQueueItems: number,
  ): Promise<{ status: 'accepted'; seq: number } | { status: 'unknown-user' } | { status: 'unknown-device' } | { status: 'queue-full' }> {
    const turn = this.turns.take(deviceKey(receipt.from));
    return this.op(async () => {
      if (turn.ahead) await turn.ahead;
      const enqueued = this.enqueueReceipts(to, [receiptJson(receipt)], receipt.at, maxQueueItems);
      this.passAfter(turn, enqueued);
      const result = await enqueued;
      if (result.status !== 'accepted') return { status: result.status };
      return { status: 'accepted' as const, seq: result.seqs[0]! };
    }).finally(turn.pass);
  }

  /** Appends receipt items to one device's queue (maxQueueItems undefined: exempt [RCP-9]) and announces them. */
  private async enqueueReceipts(
    to: DeviceAddress,
    items: string[],
    enqueuedAt: number,
    maxQueueItems: number | undefined,
  ): Promise<{ status: 'accepted'; seqs: number[] } | { status: 'unknown-user' | 'unknown-device' | 'queue-full' }> {
    const reply = asArray(
      await this.script(
        scripts.ENQUEUE_RECEIPTS,
        [keys.user(to.userId), keys.devices(to.userId), keys.seqs(to.userId), keys.queue(to), keys.enqueuedAt(to)],
        [to.deviceId, maxQueueItems ?? '', enqueuedAt, this.bus.channel, this.bus.enqueuedPrefix(to.userId), items.length, ...items],
      ),
      'enqueue-receipts',
    );
    const status = asString(reply[0], 'enqueue-receipts');
    if (status === 'unknown-user' || status === 'unknown-device' || status === 'queue-full') return { status };
    const seqs = asNumbers(reply[2], 'enqueue-receipts');
    this.counters.noteDepth(to, asNumber(reply[1], 'enqueue-receipts'));
    this.counters.bump('queuedItems', seqs.length);
    this.bus.emit({ type: 'enqueued', device: { userId: to.userId, deviceId: to.deviceId }, lastSeq: seqs[seqs.length - 1]! });
    return { status: 'accepted', seqs };
  }

  readQueue(address: DeviceAddress, afterSeq: number, limit: number): Promise<QueueItem[]> {
    return this.op(async () => {
      this.watch(address);
      if (limit <= 0) return [];
      // [DLV-4] Redis answers a read only after the writes it sees are in the append-only file.
      const reply = await this.call(this.redis.xrange(keys.queue(address), `${Math.max(0, Math.floor(afterSeq)) + 1}-0`, '+', 'COUNT', limit));
      return queueItems(reply);
    });
  }

  lastSeq(address: DeviceAddress): Promise<number> {
    return this.op(async () => {
      this.watch(address);
      const reply = await this.call(this.redis.xrevrange(keys.queue(address), '+', '-', 'COUNT', 1));
      return reply[0] ? seqOfId(reply[0][0]) : 0;
    });
  }

  acknowledge(address: DeviceAddress, seqs: number[], now: number, maxReceiptIds = 100): Promise<AckResult> {
    const turn = this.turns.take(deviceKey(address));
    return this.op(() => this.ack(address, seqs, now, maxReceiptIds, turn)).finally(turn.pass);
  }

  /** The acknowledgement protocol of the header comment: remove and owe, enqueue the receipts, settle the debt. */
  private async ack(address: DeviceAddress, seqs: number[], now: number, maxReceiptIds: number, turn: Turn): Promise<AckResult> {
    const unique = [...new Set(seqs)].filter((seq) => Number.isSafeInteger(seq) && seq > 0);
    if (unique.length === 0) return { removed: [], receipts: [] };
    if (turn.ahead) await turn.ahead;
    const { userId } = address;
    const reply = asArray(
      await this.script(scripts.ACK_ITEMS, [keys.user(userId), keys.queue(address), keys.enqueuedAt(address), keys.receiptOutbox(userId)], [
        address.deviceId,
        now,
        maxReceiptIds,
        ...unique,
      ]),
      'ack-items',
    );
    const removed = asNumbers(reply[1], 'ack-items');
    this.counters.noteDepth(address, asNumber(reply[0], 'ack-items'));
    this.counters.bump('queuedItems', -removed.length);
    const entryId = asString(reply[2], 'ack-items');
    if (entryId === '') return { removed, receipts: [] };
    // Issued before the turn passes, so that the receipts precede what this device does next [TRN-34].
    const delivered = this.deliverOwed({ userId, deviceId: address.deviceId }, entryId, owedFromReply(reply[3]), now, maxReceiptIds);
    this.passAfter(turn, delivered);
    // The removal and the debt are durable already: a failure here only delays the receipts (see the header).
    const receipts = await delivered.catch(() => {
      this.retryOutboxEntry(userId, entryId, 1);
      return [];
    });
    return { removed, receipts };
  }

  /** Enqueues the receipts an outbox entry owes (sending them at once), then deletes the entry. */
  private deliverOwed(acker: DeviceAddress, entryId: string, owed: Owed[], at: number, maxReceiptIds: number): Promise<AckResult['receipts']> {
    const me = { userId: acker.userId, deviceId: acker.deviceId };
    const sent = receiptGroups(owed, maxReceiptIds).map(({ to, chunks }) => {
      const items = chunks.map((messageIds) => receiptJson({ status: 'delivered', from: me, messageIds, at }));
      return this.enqueueReceipts(to, items, at, undefined).then((result) => ({ to, chunks, result }));
    });
    return Promise.all(sent).then(async (done) => {
      const receipts: AckResult['receipts'] = [];
      for (const { to, chunks, result } of done) {
        if (result.status !== 'accepted') continue; // the sender device is gone [RCP-8]
        chunks.forEach((messageIds, i) => {
          receipts.push({ to, item: { kind: 'receipt', seq: result.seqs[i]!, status: 'delivered', from: { ...me }, messageIds, at } });
        });
      }
      // If this fails, the sweep enqueues the receipts once more: a duplicate, which RCP-5 allows.
      await this.redis.hdel(keys.receiptOutbox(acker.userId), entryId).catch(() => undefined);
      return receipts;
    });
  }

  private retryOutboxEntry(userId: string, entryId: string, attempt: number): void {
    if (this.closed || attempt > OUTBOX_RETRIES) return; // the retention sweep takes it from here
    const timer = setTimeout(() => {
      if (this.closed) return;
      this.deliverOutboxEntry(userId, entryId).catch(() => this.retryOutboxEntry(userId, entryId, attempt + 1));
    }, OUTBOX_RETRY_MS * 2 ** (attempt - 1));
    timer.unref();
  }

  private async deliverOutboxEntry(userId: string, entryId: string): Promise<void> {
    const json = await this.call(this.redis.hget(keys.receiptOutbox(userId), entryId));
    if (json === null) return;
    const entry = parseOutboxEntry(json);
    await this.deliverOwed({ userId, deviceId: entry.deviceId }, entryId, entry.owed, entry.at, entry.maxReceiptIds);
  }

  /** Delivers the outbox entries of `userIds` written before `before` (Redis time): their acknowledgement gave up. */
  private async drainOutboxes(userIds: string[], before: number): Promise<void> {
    const sizes = await this.batch(userIds.map((userId) => ['hlen', keys.receiptOutbox(userId)]));
    for (const [i, userId] of userIds.entries()) {
      if (sizes[i] === 0) continue;
      const entries = await this.call(this.redis.hgetall(keys.receiptOutbox(userId)));
      for (const [entryId, json] of Object.entries(entries)) {
        const entry = parseOutboxEntry(json);
        if (entry.writtenAt >= before) continue;
        await this.deliverOwed({ userId, deviceId: entry.deviceId }, entryId, entry.owed, entry.at, entry.maxReceiptIds);
      }
    }
  }

  expire(olderThan: number): Promise<number> {
    return this.op(async () => {
      // One process sweeps at a time; the others find the lock taken and leave it to that one. The sweep also
      // delivers stale receipt outbox entries (see the header).
      const token = `${this.bus.origin}.${randomBytes(4).toString('hex')}`;
      if ((await this.call(this.redis.set(keys.expireLock, token, 'PX', EXPIRE_LOCK_MS, 'NX'))) !== 'OK') return 0;
      let total = 0;
      try {
        const [seconds, micros] = await this.call(this.redis.time());
        const staleBefore = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - this.outboxStaleMs;
        let cursor = '0';
        do {
          const [next, userIds] = await this.call(this.redis.sscan(keys.users, cursor, 'COUNT', EXPIRE_USERS_PAGE));
          cursor = next;
          // Receipts owed by acknowledgements that gave up (or whose process crashed) are enqueued now [RCP-5].
          await this.drainOutboxes(userIds, staleBefore);
          const deviceLists = await this.batch(userIds.map((userId) => ['hkeys', keys.devices(userId)]));
          const devices = userIds.flatMap((userId, i) => (deviceLists[i] as string[]).map((id) => ({ userId, deviceId: Number(id) })));
          const counts = await this.batch(devices.map((device) => ['zcount', keys.enqueuedAt(device), '-inf', `(${olderThan}`]));
          for (const [i, device] of devices.entries()) {
            if (counts[i] === 0) continue;
            for (;;) {
              const [removed, looked] = asNumbers(await this.script(scripts.EXPIRE_ITEMS, [keys.queue(device), keys.enqueuedAt(device)], [olderThan, EXPIRE_ITEMS_BATCH]), 'expire-items');
              total += removed!;
              if (looked! < EXPIRE_ITEMS_BATCH) break;
            }
          }
        } while (cursor !== '0');
      } finally {
        await this.script(scripts.DELETE_IF, [keys.expireLock], [token]).catch(() => undefined);
        this.counters.bump('queuedItems', -total);
      }
      return total;
    });
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.bus.listen(listener);
  }

  stats(): StoreStats {
    return this.counters.snapshot();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.statsTimer);
    // Operations already started finish (each within its command timeouts) before the connections go.
    while (this.inflight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.bus.close();
    await Promise.all([close(this.redis), close(this.subscriber)]);
  }
}

export function openRedisStore(url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
  return RedisStore.open(url, options);
}
