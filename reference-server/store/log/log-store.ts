// The embedded store: all state in memory, every change a record in the segmented log, checkpoints for fast start.
//
// A mutation is checked against the in-memory state, staged there (reserving what concurrent calls must not take:
// a username, a one-time prekey, seqs), appended to the log, and becomes visible or resolves only once the log says
// the record is durable. If the append fails, the staging is undone and the caller gets StoreUnavailableError.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { PreKey, SignedPreKey } from '../../../spec/index.ts';
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
import { readCheckpoint, writeCheckpoint, type Checkpoint, type CheckpointUser } from './checkpoint.ts';
import { DeviceQueue, enqueuedAtOf, toQueueItem, type StoredItem, type StoredMessage, type StoredReceipt } from './device-queue.ts';
import {
  decodePayload,
  encodePayload,
  RecordType,
  type AckRecord,
  type AddPreKeysRecord,
  type DevicePayload,
  type ExpireRecord,
  type LinkRecord,
  type MessageRecord,
  type ReceiptPayload,
  type RegisterRecord,
  type RemoveDeviceRecord,
  type SignedPreKeyRecord,
  type TakePreKeysRecord,
} from './records.ts';
import { SegmentLog, segmentOf, type Lsn, type RecoveryReport, type SegmentLogOptions } from './segment-log.ts';

export interface LogStoreOptions {
  segmentBytes?: number;
  /** Write a checkpoint after this many bytes of log since the last one. Default 64 MiB. */
  checkpointEveryBytes?: number;
  /** Message bodies held in memory at most; older ones are read back from the log on delivery. Default 256 MiB. */
  cacheBytes?: number;
  onSync?: SegmentLogOptions['onSync'];
}

interface DeviceState {
  record: DeviceRecord;
  preKeys: Map<number, PreKey>;
  queue: DeviceQueue;
}

interface UserState {
  userId: string;
  username: string;
  createdAt: number;
  nextDeviceId: number;
  devices: Map<number, DeviceState>;
  /** Links staged but not yet durable, counted against maxDevicesPerUser. */
  linking: number;
}

interface DedupeEntry {
  serverTime: number;
  forgetAfter: number;
  /** Set while the original send is not yet durable [MSG-17]. */
  durable: Promise<boolean> | undefined;
}

interface LinkCode {
  userId: string;
  /** The device that obtained the code; deleting it invalidates the code. */
  deviceId: number;
  expiresAt: number;
}

const dedupeKey = (from: DeviceAddress, messageId: string) => `${from.userId}.${from.deviceId}/${messageId}`;

export class LogStore implements Store {
  private readonly users = new Map<string, UserState>();
  private readonly usernames = new Map<string, string>();
  /** Link codes are ephemeral (spec 4.14): kept in memory only. */
  private readonly linkCodes = new Map<string, LinkCode>();
  private readonly dedupe = new Map<string, DedupeEntry>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  /** Live message items per segment: a sealed segment with none, older than the checkpoint, can be deleted. */
  private readonly segmentRefs = new Map<number, number>();
  /** Message items whose body is cached, oldest first, for eviction. */
  private cached: StoredMessage[] = [];
  private cachedHead = 0;
  private cachedBytes = 0;
  /** Items in `cached` that still hold their body. */
  private cachedCount = 0;
  private readonly cacheBytes: number;
  private readonly checkpointEveryBytes: number;
  private log!: SegmentLog;
  private checkpointLsn: Lsn = 0;
  private bytesSinceCheckpoint = 0;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];
  private gate: Promise<void> | undefined;
  private admissions: Promise<void> = Promise.resolve();
  private closed = false;
  private checkpointing = false;
  recovery!: RecoveryReport;

  private constructor(private readonly dir: string, options: LogStoreOptions) {
    this.cacheBytes = options.cacheBytes ?? 256 * 1024 * 1024;
    this.checkpointEveryBytes = options.checkpointEveryBytes ?? 64 * 1024 * 1024;
  }

  static async open(dir: string, options: LogStoreOptions = {}): Promise<LogStore> {
    mkdirSync(dir, { recursive: true });
    const store = new LogStore(dir, options);
    const checkpoint = readCheckpoint(dir);
    if (checkpoint) store.loadCheckpoint(checkpoint);
    const logOptions: SegmentLogOptions = {};
    if (options.segmentBytes !== undefined) logOptions.segmentBytes = options.segmentBytes;
    if (options.onSync !== undefined) logOptions.onSync = options.onSync;
    const { log, report } = await SegmentLog.open(dir, logOptions, store.checkpointLsn, (record) =>
      store.replay(record.type, record.payload, record.lsn, record.size),
    );
    store.log = log;
    store.recovery = report;
    store.evictIfNeeded();
    return store;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Appending

  /**
   * Admits an operation. Admissions resolve strictly in call order, and an operation stages its change synchronously
   * once admitted, so changes are staged in the order the operations were called: a connection may issue its sends
   * without waiting for the previous one to be durable and still get them enqueued in receive order [TRN-34].
   */
  private enter(): Promise<void> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    const ticket = this.admissions.then(async () => {
      while (this.gate) await this.gate;
      if (this.closed) throw new StoreUnavailableError('the store is closed');
    });
    this.admissions = ticket.catch(() => undefined);
    return ticket;
  }

  /**
   * Appends a record and, once it is durable, applies its effect with `onDurable` in the same tick, before anything
   * can observe the store as idle (a checkpoint must never see a durable record without its effect). `undo` reverts
   * the staging when the record cannot be made durable.
   */
  private async commit<T>(type: number, value: unknown, undo: () => void, onDurable: (written: { lsn: Lsn; size: number }) => T): Promise<T> {
    const payload = encodePayload(value);
    this.inflight++;
    try {
      let lsn: Lsn;
      try {
        lsn = await this.log.append(type, payload);
      } catch (error) {
        undo();
        throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError((error as Error).message);
      }
      const size = Buffer.byteLength(payload, 'utf8') + 9;
      this.bytesSinceCheckpoint += size;
      return onDurable({ lsn, size });
    } finally {
      this.inflight--;
      if (this.inflight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      this.maybeCheckpoint();
    }
  }

  private emit(event: StoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; the store's state is already settled.
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Accounts and devices

  async createAccount(username: string, device: NewDevice, now: number): Promise<{ userId: string; deviceId: number } | undefined> {
    await this.enter();
    if (this.usernames.has(username)) return undefined;
    let userId: string;
    do userId = randomBytes(16).toString('base64url');
    while (this.users.has(userId));
    const record: RegisterRecord = { userId, username, createdAt: now, device: this.devicePayload(userId, 1, device, now) };
    this.usernames.set(username, userId); // reserve against a concurrent registration of the same name
    return this.commit(RecordType.register, record, () => this.usernames.delete(username), () => {
      this.applyRegister(record);
      return { userId, deviceId: 1 };
    });
  }

  private devicePayload(userId: string, deviceId: number, device: NewDevice, now: number): DevicePayload {
    return {
      userId,
      deviceId,
      name: device.name,
      secretHash: device.secretHash,
      registrationId: device.registrationId,
      identityKey: device.identityKey,
      signedPreKey: device.signedPreKey,
      createdAt: now,
      oneTimePreKeys: device.oneTimePreKeys,
    };
  }

  async createLinkCode(userId: string, codeHash: string, expiresAt: number, byDeviceId = 0): Promise<void> {
    await this.enter();
    if (!this.users.has(userId)) return;
    // Remember which device obtained the code, so that deleting that device invalidates it.
    this.linkCodes.set(codeHash, { userId, deviceId: byDeviceId, expiresAt });
  }

  async linkDevice(
    codeHash: string,
    device: NewDevice,
    now: number,
    maxDevices: number,
  ): Promise<{ userId: string; deviceId: number } | 'invalid-code' | 'too-many-devices'> {
    await this.enter();
    const code = this.linkCodes.get(codeHash);
    if (!code || code.expiresAt <= now) {
      if (code) this.linkCodes.delete(codeHash);
      return 'invalid-code';
    }
    const user = this.users.get(code.userId);
    if (!user) return 'invalid-code';
    if (user.devices.size + user.linking >= maxDevices) return 'too-many-devices';
    this.linkCodes.delete(codeHash); // consumed only by a successful link; restored if the append fails
    const deviceId = user.nextDeviceId++;
    user.linking++;
    const record: LinkRecord = { device: this.devicePayload(user.userId, deviceId, device, now) };
    return this.commit(
      RecordType.link,
      record,
      () => {
        user.linking--;
        this.linkCodes.set(codeHash, code);
      },
      () => {
        user.linking--;
        this.applyLink(record);
        return { userId: user.userId, deviceId };
      },
    );
  }

  async removeDevice(address: DeviceAddress): Promise<'removed' | 'unknown-device' | 'last-device'> {
    await this.enter();
    const user = this.users.get(address.userId);
    const device = user?.devices.get(address.deviceId);
    if (!user || !device) return 'unknown-device';
    if (user.devices.size === 1) return 'last-device';
    const record: RemoveDeviceRecord = { userId: address.userId, deviceId: address.deviceId };
    return this.commit(RecordType.removeDevice, record, () => {}, () => {
      this.applyRemoveDevice(record);
      this.emit({ type: 'device-removed', device: { ...address } });
      return 'removed' as const;
    });
  }

  async getDevice(address: DeviceAddress): Promise<DeviceRecord | undefined> {
    const device = this.users.get(address.userId)?.devices.get(address.deviceId);
    return device ? { ...device.record } : undefined;
  }

  async getAccount(userId: string): Promise<AccountRecord | undefined> {
    const user = this.users.get(userId);
    return user ? accountOf(user) : undefined;
  }

  async findUserByUsername(username: string): Promise<AccountRecord | undefined> {
    const userId = this.usernames.get(username);
    const user = userId === undefined ? undefined : this.users.get(userId);
    return user ? accountOf(user) : undefined;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Prekeys

  async setSignedPreKey(address: DeviceAddress, key: SignedPreKey): Promise<void> {
    await this.enter();
    if (!this.device(address)) throw new RangeError('unknown device');
    const record: SignedPreKeyRecord = { ...address, key };
    await this.commit(RecordType.signedPreKey, record, () => {}, () => this.applySignedPreKey(record));
  }

  async addOneTimePreKeys(address: DeviceAddress, keys: PreKey[], maxStored: number): Promise<number | { duplicateKeyIds: number[] } | 'too-many'> {
    await this.enter();
    const device = this.device(address);
    if (!device) throw new RangeError('unknown device');
    const clashes = [...new Set(keys.filter((k) => device.preKeys.has(k.keyId)).map((k) => k.keyId))].sort((a, b) => a - b);
    if (clashes.length > 0) return { duplicateKeyIds: clashes };
    if (device.preKeys.size + keys.length > maxStored) return 'too-many';
    // Reserve the keyIds so that a concurrent upload of the same ids is refused too.
    const reserved = keys.map((k) => ({ ...k }));
    for (const key of reserved) device.preKeys.set(key.keyId, key);
    const record: AddPreKeysRecord = { ...address, keys };
    return this.commit(
      RecordType.addPreKeys,
      record,
      () => {
        for (const key of reserved) if (device.preKeys.get(key.keyId) === key) device.preKeys.delete(key.keyId);
      },
      () => device.preKeys.size,
    );
  }

  async countOneTimePreKeys(address: DeviceAddress): Promise<number> {
    return this.device(address)?.preKeys.size ?? 0;
  }

  async takeBundles(userId: string, deviceId?: number, excludeDeviceId?: number): Promise<BundleEntry[] | 'unknown-user' | 'unknown-device'> {
    await this.enter();
    const user = this.users.get(userId);
    if (!user) return 'unknown-user';
    let devices = deviceId === undefined ? [...user.devices.values()] : [user.devices.get(deviceId)].filter((d) => d !== undefined);
    if (deviceId !== undefined && devices.length === 0) return 'unknown-device';
    if (excludeDeviceId !== undefined) devices = devices.filter((d) => d.record.deviceId !== excludeDeviceId);
    devices.sort((a, b) => a.record.deviceId - b.record.deviceId);
    const entries: BundleEntry[] = [];
    const takes: Array<[string, number, number]> = [];
    for (const device of devices) {
      // Taken out of memory now, so no concurrent fetch can see it; never put back, even if the append fails: a
      // lost one-time prekey costs nothing, a key handed out twice breaks forward secrecy [PKY-13].
      const first = device.preKeys.entries().next();
      let oneTimePreKey: PreKey | undefined;
      if (!first.done) {
        const [keyId, key] = first.value;
        device.preKeys.delete(keyId);
        oneTimePreKey = { keyId: key.keyId, publicKey: key.publicKey };
        takes.push([userId, device.record.deviceId, keyId]);
      }
      entries.push({ device: { ...device.record }, ...(oneTimePreKey ? { oneTimePreKey } : {}), remaining: device.preKeys.size });
    }
    if (takes.length > 0) {
      const record: TakePreKeysRecord = { takes };
      return this.commit(RecordType.takePreKeys, record, () => {}, () => entries);
    }
    return entries;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Queues

  async enqueueMessage(input: EnqueueMessageInput, dedupeWindowMs: number, maxQueueItems: number): Promise<EnqueueMessageResult> {
    await this.enter();
    const key = dedupeKey(input.from, input.messageId);
    this.forgetOldDedupe(input.serverTime);
    const seen = this.dedupe.get(key);
    if (seen) {
      // A resend racing its original waits until the original is durable, or retries as new if it failed [MSG-17].
      if (seen.durable && !(await seen.durable)) return this.enqueueMessage(input, dedupeWindowMs, maxQueueItems);
      return { status: 'duplicate', serverTime: seen.serverTime };
    }
    const user = this.users.get(input.to);
    if (!user) return { status: 'unknown-user' };
    // [MSG-6] [MSG-7]: the envelopes must address exactly the current devices (less the sender's own).
    if (!this.addressesExactly(user, input)) {
      const toSelf = input.to === input.from.userId;
      const expected = [...user.devices.keys()].filter((id) => !(toSelf && id === input.from.deviceId));
      const given = new Set(input.envelopes.map((e) => e.deviceId));
      const missing = expected.filter((id) => !given.has(id)).sort((a, b) => a - b);
      const extra = [...given].filter((id) => !expected.includes(id)).sort((a, b) => a - b);
      return { status: 'stale-devices', missing, extra: expected.length === 0 ? [...given].sort((a, b) => a - b) : extra };
    }
    let full: number[] | undefined;
    for (const envelope of input.envelopes) {
      if (user.devices.get(envelope.deviceId)!.queue.size >= maxQueueItems) (full ??= []).push(envelope.deviceId);
    }
    if (full) return { status: 'queue-full', deviceIds: full.sort((a, b) => a - b) };

    const record: MessageRecord = {
      from: input.from,
      messageId: input.messageId,
      to: input.to,
      serverTime: input.serverTime,
      dedupeUntil: input.serverTime + dedupeWindowMs,
      items: [],
    };
    const staged: Array<{ queue: DeviceQueue; item: StoredMessage; deviceId: number }> = [];
    for (const envelope of input.envelopes) {
      const queue = user.devices.get(envelope.deviceId)!.queue;
      const seq = queue.nextSeq;
      record.items.push({ deviceId: envelope.deviceId, seq, type: envelope.type, body: envelope.body });
      const item: StoredMessage = {
        kind: 'message',
        seq,
        messageId: input.messageId,
        from: { ...input.from },
        envelopeType: envelope.type,
        body: envelope.body,
        bodyLength: envelope.body.length,
        serverTime: input.serverTime,
        lsn: 0,
        size: 0,
        pending: true,
        removed: false,
      };
      queue.push(item);
      staged.push({ queue, item, deviceId: envelope.deviceId });
    }
    let settle!: (ok: boolean) => void;
    const entry: DedupeEntry = { serverTime: input.serverTime, forgetAfter: record.dedupeUntil, durable: new Promise((r) => (settle = r)) };
    this.dedupe.set(key, entry);
    try {
      return await this.commit(
        RecordType.message,
        record,
        () => {
          for (const { queue, item } of staged) queue.remove(item.seq);
          this.dedupe.delete(key);
        },
        (written) => {
          for (const { item } of staged) {
            item.lsn = written.lsn;
            item.size = written.size;
            item.pending = false;
            if (item.removed) continue; // its device was deleted meanwhile
            this.ref(written.lsn, 1);
            this.cache(item);
          }
          entry.durable = undefined;
          settle(true);
          for (const { item, deviceId } of staged) this.emit({ type: 'enqueued', device: { userId: input.to, deviceId }, lastSeq: item.seq });
          this.evictIfNeeded();
          const seqs = staged.map(({ item, deviceId }) => ({ deviceId, seq: item.seq }));
          return { status: 'accepted' as const, serverTime: input.serverTime, seqs };
        },
      );
    } catch (error) {
      settle(false);
      throw error;
    }
  }

  async findDuplicate(from: DeviceAddress, messageId: string, now: number): Promise<{ serverTime: number } | undefined> {
    await this.enter();
    const seen = this.dedupe.get(dedupeKey(from, messageId));
    if (!seen || seen.forgetAfter <= now) return undefined;
    // [MSG-17] Never report a duplicate before the original is durable.
    if (seen.durable && !(await seen.durable)) return undefined;
    return { serverTime: seen.serverTime };
  }

  /** Whether the envelopes name each current device of `user` once, without the sender's own device. */
  private addressesExactly(user: UserState, input: EnqueueMessageInput): boolean {
    const toSelf = input.to === input.from.userId;
    const expected = user.devices.size - (toSelf && user.devices.has(input.from.deviceId) ? 1 : 0);
    if (expected === 0 || input.envelopes.length !== expected) return false;
    for (let i = 0; i < input.envelopes.length; i++) {
      const id = input.envelopes[i]!.deviceId;
      if (!user.devices.has(id) || (toSelf && id === input.from.deviceId)) return false;
      for (let j = 0; j < i; j++) if (input.envelopes[j]!.deviceId === id) return false;
    }
    return true;
  }

  async enqueueReceipt(
    to: DeviceAddress,
    receipt: Omit<ReceiptItemRecord, 'seq'>,
    maxQueueItems: number,
  ): Promise<{ status: 'accepted'; seq: number } | { status: 'unknown-user' } | { status: 'unknown-device' } | { status: 'queue-full' }> {
    await this.enter();
    const user = this.users.get(to.userId);
    if (!user) return { status: 'unknown-user' };
    const device = user.devices.get(to.deviceId);
    if (!device) return { status: 'unknown-device' };
    if (device.queue.size >= maxQueueItems) return { status: 'queue-full' };
    const payload: ReceiptPayload = { to: { ...to }, seq: device.queue.nextSeq, status: receipt.status, from: { ...receipt.from }, messageIds: [...receipt.messageIds], at: receipt.at };
    const item = receiptItem(payload, receipt.at);
    device.queue.push(item);
    return this.commit(RecordType.receipt, payload, () => device.queue.remove(item.seq), () => {
      item.pending = false;
      this.emit({ type: 'enqueued', device: { ...to }, lastSeq: item.seq });
      return { status: 'accepted' as const, seq: item.seq };
    });
  }

  async readQueue(address: DeviceAddress, afterSeq: number, limit: number): Promise<QueueItem[]> {
    const device = this.device(address);
    if (!device) return [];
    return device.queue.visibleAfter(afterSeq, limit).map((item) => toQueueItem(item, item.kind === 'message' ? this.bodyOf(item, address.deviceId) : ''));
  }

  async lastSeq(address: DeviceAddress): Promise<number> {
    return this.device(address)?.queue.lastVisibleSeq() ?? 0;
  }

  async acknowledge(address: DeviceAddress, seqs: number[], now: number, maxReceiptIds = 100): Promise<AckResult> {
    await this.enter();
    const device = this.device(address);
    if (!device) return { removed: [], receipts: [] };
    const removed: StoredItem[] = [];
    for (const seq of new Set(seqs)) {
      const item = device.queue.get(seq);
      if (!item || item.pending) continue;
      device.queue.remove(seq);
      removed.push(item);
    }
    if (removed.length === 0) return { removed: [], receipts: [] };
    // [RCP-1] [RCP-2] [RCP-8]: one delivered receipt per sender device, messageIds batched, none for a vanished sender.
    const bySender = new Map<string, { to: DeviceAddress; messageIds: string[] }>();
    for (const item of removed) {
      if (item.kind !== 'message') continue;
      const key = `${item.from.userId}.${item.from.deviceId}`;
      let group = bySender.get(key);
      if (!group) bySender.set(key, (group = { to: { ...item.from }, messageIds: [] }));
      group.messageIds.push(item.messageId);
    }
    const receipts: ReceiptPayload[] = [];
    const stagedReceipts: Array<{ queue: DeviceQueue; item: StoredReceipt }> = [];
    for (const group of bySender.values()) {
      const senderDevice = this.device(group.to);
      if (!senderDevice) continue;
      for (let i = 0; i < group.messageIds.length; i += maxReceiptIds) {
        const payload: ReceiptPayload = {
          to: group.to,
          seq: senderDevice.queue.nextSeq,
          status: 'delivered',
          from: { userId: address.userId, deviceId: address.deviceId },
          messageIds: group.messageIds.slice(i, i + maxReceiptIds),
          at: now,
        };
        const item = receiptItem(payload, now);
        senderDevice.queue.push(item); // exempt from maxQueueItems [RCP-9]
        receipts.push(payload);
        stagedReceipts.push({ queue: senderDevice.queue, item });
      }
    }
    const record: AckRecord = { device: { ...address }, seqs: removed.map((i) => i.seq), receipts };
    const undo = () => {
      for (const { queue, item } of stagedReceipts) queue.remove(item.seq);
      for (const item of removed) device.queue.restore(item);
    };
    return this.commit(RecordType.ack, record, undo, () => {
      for (const item of removed) this.release(item);
      for (const { item } of stagedReceipts) item.pending = false;
      for (const payload of receipts) this.emit({ type: 'enqueued', device: payload.to, lastSeq: payload.seq });
      return {
        removed: removed.map((i) => i.seq),
        receipts: receipts.map((p) => ({ to: p.to, item: { kind: 'receipt' as const, seq: p.seq, status: p.status, from: p.from, messageIds: p.messageIds, at: p.at } })),
      };
    });
  }

  async expire(olderThan: number): Promise<number> {
    await this.enter();
    const items: Array<[string, number, number]> = [];
    for (const user of this.users.values()) {
      for (const device of user.devices.values()) {
        for (const item of device.queue.all()) {
          if (item.pending) break;
          if (enqueuedAtOf(item) >= olderThan) continue;
          items.push([user.userId, device.record.deviceId, item.seq]);
        }
      }
    }
    if (items.length === 0) return 0;
    const record: ExpireRecord = { items };
    return this.commit(RecordType.expire, record, () => {}, () => {
      this.applyExpire(record);
      return items.length;
    });
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): StoreStats {
    let devices = 0;
    let queuedItems = 0;
    let maxQueueDepth = 0;
    for (const user of this.users.values()) {
      devices += user.devices.size;
      for (const device of user.devices.values()) {
        queuedItems += device.queue.size;
        if (device.queue.size > maxQueueDepth) maxQueueDepth = device.queue.size;
      }
    }
    return { accounts: this.users.size, devices, queuedItems, maxQueueDepth, cachedItems: this.cachedCount };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.inflight > 0) await this.waitIdle();
    this.takeCheckpoint();
    await this.log.close();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Replay: the same state changes as the live operations, from records that are already durable.

  private replay(type: number, payload: Buffer, lsn: Lsn, size: number): void {
    switch (type) {
      case RecordType.register:
        return this.applyRegister(decodePayload<RegisterRecord>(payload));
      case RecordType.link:
        return this.applyLink(decodePayload<LinkRecord>(payload));
      case RecordType.removeDevice:
        return this.applyRemoveDevice(decodePayload<RemoveDeviceRecord>(payload));
      case RecordType.signedPreKey:
        return this.applySignedPreKey(decodePayload<SignedPreKeyRecord>(payload));
      case RecordType.addPreKeys: {
        const record = decodePayload<AddPreKeysRecord>(payload);
        const device = this.device(record);
        if (device) for (const key of record.keys) device.preKeys.set(key.keyId, key);
        return;
      }
      case RecordType.takePreKeys:
        for (const [userId, deviceId, keyId] of decodePayload<TakePreKeysRecord>(payload).takes) {
          this.device({ userId, deviceId })?.preKeys.delete(keyId);
        }
        return;
      case RecordType.message:
        return this.applyMessage(decodePayload<MessageRecord>(payload), lsn, size);
      case RecordType.receipt:
        return this.applyReceipt(decodePayload<ReceiptPayload>(payload));
      case RecordType.ack: {
        const record = decodePayload<AckRecord>(payload);
        const device = this.device(record.device);
        if (device) for (const seq of record.seqs) this.releaseRemoved(device.queue.remove(seq));
        for (const receipt of record.receipts) this.applyReceipt(receipt);
        return;
      }
      case RecordType.expire:
        return this.applyExpire(decodePayload<ExpireRecord>(payload));
      default:
        // A record type this version does not know cannot be skipped safely.
        throw new StoreUnavailableError(`unknown record type ${type} in the log`);
    }
  }

  private applyRegister(record: RegisterRecord): void {
    const user: UserState = { userId: record.userId, username: record.username, createdAt: record.createdAt, nextDeviceId: 1, devices: new Map(), linking: 0 };
    this.users.set(record.userId, user);
    this.usernames.set(record.username, record.userId);
    this.addDevice(user, record.device);
  }

  private applyLink(record: LinkRecord): void {
    const user = this.users.get(record.device.userId);
    if (user) this.addDevice(user, record.device);
  }

  private addDevice(user: UserState, payload: DevicePayload): void {
    const { oneTimePreKeys, ...record } = payload;
    const preKeys = new Map<number, PreKey>();
    for (const key of oneTimePreKeys) preKeys.set(key.keyId, { keyId: key.keyId, publicKey: key.publicKey });
    user.devices.set(record.deviceId, { record, preKeys, queue: new DeviceQueue() });
    user.nextDeviceId = Math.max(user.nextDeviceId, record.deviceId + 1); // never reused [IDN]
  }

  private applyRemoveDevice(record: RemoveDeviceRecord): void {
    const user = this.users.get(record.userId);
    const device = user?.devices.get(record.deviceId);
    if (!user || !device) return;
    for (const item of [...device.queue.all()]) this.releaseRemoved(device.queue.remove(item.seq));
    user.devices.delete(record.deviceId);
    for (const [hash, code] of this.linkCodes) if (code.userId === record.userId && code.deviceId === record.deviceId) this.linkCodes.delete(hash);
  }

  private applySignedPreKey(record: SignedPreKeyRecord): void {
    const device = this.device(record);
    if (device) device.record = { ...device.record, signedPreKey: record.key };
  }

  private applyMessage(record: MessageRecord, lsn: Lsn, size: number): void {
    this.dedupe.set(dedupeKey(record.from, record.messageId), { serverTime: record.serverTime, forgetAfter: record.dedupeUntil, durable: undefined });
    for (const entry of record.items) {
      const device = this.device({ userId: record.to, deviceId: entry.deviceId });
      if (!device) continue;
      const item: StoredMessage = {
        kind: 'message',
        seq: entry.seq,
        messageId: record.messageId,
        from: record.from,
        envelopeType: entry.type,
        body: entry.body,
        bodyLength: entry.body.length,
        serverTime: record.serverTime,
        lsn,
        size,
        pending: false,
        removed: false,
      };
      device.queue.push(item);
      this.ref(lsn, 1);
      this.cache(item);
    }
  }

  private applyReceipt(payload: ReceiptPayload): void {
    const device = this.device(payload.to);
    if (!device) return;
    const item = receiptItem(payload, payload.at);
    item.pending = false;
    device.queue.push(item);
  }

  private applyExpire(record: ExpireRecord): void {
    for (const [userId, deviceId, seq] of record.items) {
      const device = this.device({ userId, deviceId });
      if (device) this.releaseRemoved(device.queue.remove(seq));
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Bodies, segment references, checkpoints

  private device(address: DeviceAddress): DeviceState | undefined {
    return this.users.get(address.userId)?.devices.get(address.deviceId);
  }

  private ref(lsn: Lsn, delta: number): void {
    const segment = segmentOf(lsn);
    const count = (this.segmentRefs.get(segment) ?? 0) + delta;
    if (count <= 0) this.segmentRefs.delete(segment);
    else this.segmentRefs.set(segment, count);
  }

  private release(item: StoredItem): void {
    if (item.kind !== 'message' || item.pending) return;
    this.ref(item.lsn, -1);
    if (item.body !== undefined) {
      this.cachedBytes -= item.bodyLength;
      this.cachedCount--;
      item.body = undefined;
      // The eviction list keeps released items until it is compacted; compact before it holds mostly dead entries.
      if (this.cached.length - this.cachedHead > 2 * this.cachedCount + 4096) this.compactCache();
    }
  }

  private compactCache(): void {
    this.cached = this.cached.slice(this.cachedHead).filter((i) => i.body !== undefined);
    this.cachedHead = 0;
  }

  private releaseRemoved(item: StoredItem | undefined): void {
    if (item) this.release(item);
  }

  private cache(item: StoredMessage): void {
    if (item.body === undefined) return;
    this.cached.push(item);
    this.cachedBytes += item.bodyLength;
    this.cachedCount++;
  }

  private evictIfNeeded(): void {
    while (this.cachedBytes > this.cacheBytes && this.cachedHead < this.cached.length) {
      const item = this.cached[this.cachedHead++]!;
      if (item.body !== undefined) {
        this.cachedBytes -= item.bodyLength;
        this.cachedCount--;
        item.body = undefined;
      }
    }
    if (this.cachedHead > 4096 && this.cachedHead * 2 > this.cached.length) this.compactCache();
  }

  private bodyOf(item: StoredMessage, deviceId: number): string {
    if (item.body !== undefined) return item.body;
    const record = decodePayload<MessageRecord>(this.log.readRecord(item.lsn, item.size).payload);
    const entry = record.items.find((i) => i.deviceId === deviceId && i.seq === item.seq);
    if (!entry) throw new StoreUnavailableError(`log record for seq ${item.seq} does not hold its envelope`);
    return entry.body;
  }

  private forgetOldDedupe(now: number): void {
    for (const [key, entry] of this.dedupe) {
      if (entry.forgetAfter > now || entry.durable) break; // roughly time-ordered: stop at the first one still needed
      this.dedupe.delete(key);
    }
  }

  private waitIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private maybeCheckpoint(): void {
    if (this.checkpointing || this.closed || this.bytesSinceCheckpoint < this.checkpointEveryBytes) return;
    this.checkpointing = true;
    // Close the gate: new operations wait; the ones already staged finish. With nothing in flight the in-memory
    // state is exactly the durable state, which is what the checkpoint must capture.
    let open!: () => void;
    this.gate = new Promise((resolve) => (open = resolve));
    void (async () => {
      try {
        while (this.inflight > 0) await this.waitIdle();
        if (!this.closed) this.takeCheckpoint();
      } catch {
        // A failed checkpoint leaves the previous one in place; the log still holds everything.
      } finally {
        this.gate = undefined;
        this.checkpointing = false;
        open();
      }
    })();
  }

  /** Snapshots the state (which, with nothing in flight, is exactly the durable state) and reclaims segments. */
  private takeCheckpoint(): void {
    const lsn = this.log.endLsn;
    const users: CheckpointUser[] = [];
    for (const user of this.users.values()) {
      users.push({
        userId: user.userId,
        username: user.username,
        createdAt: user.createdAt,
        nextDeviceId: user.nextDeviceId,
        devices: [...user.devices.values()].map((d) => ({
          record: d.record,
          preKeys: [...d.preKeys.values()],
          nextSeq: d.queue.nextSeq,
          items: [...d.queue.all()].map((item) =>
            item.kind === 'message'
              ? (['m', { seq: item.seq, messageId: item.messageId, from: item.from, type: item.envelopeType, bodyLength: item.bodyLength, serverTime: item.serverTime, lsn: item.lsn, size: item.size }] as const)
              : (['r', { seq: item.seq, status: item.status, from: item.from, messageIds: item.messageIds, at: item.at, enqueuedAt: item.enqueuedAt }] as const),
          ) as CheckpointUser['devices'][number]['items'],
        })),
      });
    }
    const dedupe: Array<[string, number, number]> = [];
    for (const [key, entry] of this.dedupe) if (!entry.durable) dedupe.push([key, entry.serverTime, entry.forgetAfter]);
    writeCheckpoint(this.dir, { lsn, createdAt: Date.now(), users, dedupe });
    this.checkpointLsn = lsn;
    this.bytesSinceCheckpoint = 0;
    // [Store] Segments wholly before the checkpoint with no live message item are no longer needed.
    const current = segmentOf(lsn);
    for (const segment of [...this.log.listSegments()]) {
      if (segment < current && !this.segmentRefs.has(segment)) this.log.deleteSegment(segment);
    }
  }

  private loadCheckpoint(checkpoint: Checkpoint): void {
    for (const saved of checkpoint.users) {
      const user: UserState = { userId: saved.userId, username: saved.username, createdAt: saved.createdAt, nextDeviceId: saved.nextDeviceId, devices: new Map(), linking: 0 };
      for (const savedDevice of saved.devices) {
        const queue = new DeviceQueue();
        for (const [kind, item] of savedDevice.items) {
          if (kind === 'm') {
            queue.push({ kind: 'message', seq: item.seq, messageId: item.messageId, from: item.from, envelopeType: item.type, body: undefined, bodyLength: item.bodyLength, serverTime: item.serverTime, lsn: item.lsn, size: item.size, pending: false, removed: false });
            this.ref(item.lsn, 1);
          } else {
            queue.push({ kind: 'receipt', seq: item.seq, status: item.status, from: item.from, messageIds: item.messageIds, at: item.at, enqueuedAt: item.enqueuedAt, pending: false, removed: false });
          }
        }
        queue.nextSeq = Math.max(queue.nextSeq, savedDevice.nextSeq);
        const preKeys = new Map<number, PreKey>(savedDevice.preKeys.map((k) => [k.keyId, k]));
        user.devices.set(savedDevice.record.deviceId, { record: savedDevice.record, preKeys, queue });
      }
      this.users.set(user.userId, user);
      this.usernames.set(user.username, user.userId);
    }
    for (const [key, serverTime, forgetAfter] of checkpoint.dedupe) this.dedupe.set(key, { serverTime, forgetAfter, durable: undefined });
    this.checkpointLsn = checkpoint.lsn;
  }
}

function receiptItem(payload: ReceiptPayload, enqueuedAt: number): StoredReceipt {
  return {
    kind: 'receipt',
    seq: payload.seq,
    status: payload.status,
    from: { ...payload.from },
    messageIds: [...payload.messageIds],
    at: payload.at,
    enqueuedAt,
    pending: true,
    removed: false,
  };
}

function accountOf(user: UserState): AccountRecord {
  return { userId: user.userId, username: user.username, createdAt: user.createdAt, deviceIds: [...user.devices.keys()].sort((a, b) => a - b) };
}

export async function openLogStore(dir: string, options: LogStoreOptions = {}): Promise<LogStore> {
  return LogStore.open(dir, options);
}
