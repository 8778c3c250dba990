// The embedded store: all state in memory, every change a record in the segmented log, checkpoints for fast start.
//
// A mutation is checked against the in-memory state, staged there (reserving what concurrent calls must not take:
// a username, a one-time prekey, seqs), appended to the log, and becomes visible or resolves only once the log says
// the record is durable. If the append fails, the staging is undone and the caller gets StoreUnavailableError.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { PreKey, SignedPreKey } from '../../../spec/index.ts';
import { StoreUnavailableError } from '../errors.ts';
import { ACK_BEFORE_DURABLE_WRITE_DELAY_MS, type MutantName } from '../../mutants.ts';
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
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { DeviceQueue, enqueuedAtOf, toQueueItem, type StoredItem, type StoredMessage, type StoredReceipt } from './device-queue.ts';
import { accountOf, dedupeKey, receiptItem, StoreState, type DedupeEntry, type UserState } from './state.ts';
import {
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

/** How often createLinkCode drops expired link codes (a pass over all codes held). */
const LINK_CODE_SWEEP_MS = 60_000;

export interface LogStoreOptions {
  segmentBytes?: number;
  /** Write a checkpoint after this many bytes of log since the last one. Default 64 MiB. */
  checkpointEveryBytes?: number;
  /** Message bodies held in memory at most; older ones are read back from the log on delivery. Default 256 MiB. */
  cacheBytes?: number;
  onSync?: SegmentLogOptions['onSync'];
  /** FOR TESTING THE CONFORMANCE SUITE ONLY: the mutant of reference-server/mutants.ts to plant, if any. */
  mutant?: MutantName;
}


export class LogStore implements Store {
  private readonly state: StoreState;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private readonly checkpointEveryBytes: number;
  private readonly mutant: MutantName | undefined;
  /** mutant: ack-before-durable — message records answered but not yet appended, each with its write-now function. */
  private readonly unwritten = new Set<() => Promise<void>>();
  private log!: SegmentLog;
  private checkpointLsn: Lsn = 0;
  private bytesSinceCheckpoint = 0;
  private inflight = 0;
  private idleWaiters: Array<() => void> = [];
  private gate: Promise<void> | undefined;
  private admissions: Promise<void> = Promise.resolve();
  private closed = false;
  private checkpointing = false;
  /** When expired link codes were last dropped, by the callers' clock. */
  private linkCodesSweptAt = -Infinity;
  recovery!: RecoveryReport;

  private constructor(private readonly dir: string, options: LogStoreOptions) {
    this.state = new StoreState(options.cacheBytes ?? 256 * 1024 * 1024);
    this.checkpointEveryBytes = options.checkpointEveryBytes ?? 64 * 1024 * 1024;
    this.mutant = options.mutant;
  }

  static async open(dir: string, options: LogStoreOptions = {}): Promise<LogStore> {
    mkdirSync(dir, { recursive: true });
    const store = new LogStore(dir, options);
    const checkpoint = readCheckpoint(dir);
    if (checkpoint) {
      store.state.restore(checkpoint);
      store.checkpointLsn = checkpoint.lsn;
    }
    const logOptions: SegmentLogOptions = {};
    if (options.segmentBytes !== undefined) logOptions.segmentBytes = options.segmentBytes;
    if (options.onSync !== undefined) logOptions.onSync = options.onSync;
    const { log, report } = await SegmentLog.open(dir, logOptions, store.checkpointLsn, (record) =>
      store.state.replay(record.type, record.payload, record.lsn, record.size),
    );
    store.log = log;
    store.state.readRecord = (lsn, size) => log.readRecord(lsn, size);
    store.recovery = report;
    store.state.evictIfNeeded();
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
    // mutant: ack-before-durable — a message takes effect and is answered now, but its record is written later.
    if (this.mutant === 'ack-before-durable' && type === RecordType.message) return this.commitLater(value as MessageRecord, payload, onDurable);
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

  /**
   * mutant: ack-before-durable. Applies a message record's effect at once (its items are visible, the sender gets
   * send_ok) with a provisional LSN, and appends the record ACK_BEFORE_DURABLE_WRITE_DELAY_MS later: a crash in
   * between loses an answered message [MSG-12] [DLV-39]. close() writes what is still waiting, so only a crash loses.
   */
  private commitLater<T>(record: MessageRecord, payload: string, onDurable: (written: { lsn: Lsn; size: number }) => T): T {
    const size = Buffer.byteLength(payload, 'utf8') + 9;
    const result = onDurable({ lsn: 0, size });
    const write = async (): Promise<void> => {
      clearTimeout(timer);
      if (!this.unwritten.delete(write)) return;
      const lsn = await this.log.append(RecordType.message, payload).catch(() => undefined);
      if (lsn === undefined) return;
      // The items now have a real place in the log, where their bodies can be read back from.
      for (const { deviceId, seq } of record.items) {
        const item = this.state.device({ userId: record.to, deviceId })?.queue.get(seq);
        if (item?.kind !== 'message' || item.lsn !== 0) continue;
        item.lsn = lsn;
        this.state.ref(0, -1);
        this.state.ref(lsn, 1);
      }
    };
    const timer = setTimeout(() => void write(), ACK_BEFORE_DURABLE_WRITE_DELAY_MS);
    timer.unref();
    this.unwritten.add(write);
    return result;
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
    if (this.state.usernames.has(username)) return undefined;
    let userId: string;
    do userId = randomBytes(16).toString('base64url');
    while (this.state.users.has(userId));
    const record: RegisterRecord = { userId, username, createdAt: now, device: this.devicePayload(userId, 1, device, now) };
    this.state.usernames.set(username, userId); // reserve against a concurrent registration of the same name
    return this.commit(RecordType.register, record, () => this.state.usernames.delete(username), () => {
      this.state.applyRegister(record);
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

  async createLinkCode(userId: string, codeHash: string, expiresAt: number, byDeviceId = 0, now?: number): Promise<void> {
    await this.enter();
    if (!this.state.users.has(userId)) return;
    // Codes live only in memory and only linking removed them, so codes nobody used stayed for the life of the process:
    // 200,000 of them held about 78 MB long after they had expired. Expired codes can never be used (IDN-17); they
    // are dropped here, at most once per LINK_CODE_SWEEP_MS, which bounds the map by what is issued within the TTL.
    if (now !== undefined && now - this.linkCodesSweptAt >= LINK_CODE_SWEEP_MS) {
      this.linkCodesSweptAt = now;
      for (const [hash, code] of this.state.linkCodes) if (code.expiresAt <= now) this.state.linkCodes.delete(hash);
    }
    // Remember which device obtained the code, so that deleting that device invalidates it.
    this.state.linkCodes.set(codeHash, { userId, deviceId: byDeviceId, expiresAt });
  }

  async linkDevice(
    codeHash: string,
    device: NewDevice,
    now: number,
    maxDevices: number,
  ): Promise<{ userId: string; deviceId: number } | 'invalid-code' | 'too-many-devices'> {
    await this.enter();
    const code = this.state.linkCodes.get(codeHash);
    if (!code || code.expiresAt <= now) {
      if (code) this.state.linkCodes.delete(codeHash);
      return 'invalid-code';
    }
    const user = this.state.users.get(code.userId);
    if (!user) return 'invalid-code';
    if (user.devices.size + user.linking >= maxDevices) return 'too-many-devices';
    this.state.linkCodes.delete(codeHash); // consumed only by a successful link; restored if the append fails
    const deviceId = user.nextDeviceId++;
    user.linking++;
    const record: LinkRecord = { device: this.devicePayload(user.userId, deviceId, device, now) };
    return this.commit(
      RecordType.link,
      record,
      () => {
        user.linking--;
        this.state.linkCodes.set(codeHash, code);
      },
      () => {
        user.linking--;
        this.state.applyLink(record);
        return { userId: user.userId, deviceId };
      },
    );
  }

  async removeDevice(address: DeviceAddress): Promise<'removed' | 'unknown-device' | 'last-device'> {
    await this.enter();
    const user = this.state.users.get(address.userId);
    const device = user?.devices.get(address.deviceId);
    if (!user || !device) return 'unknown-device';
    if (user.devices.size === 1) return 'last-device';
    const record: RemoveDeviceRecord = { userId: address.userId, deviceId: address.deviceId };
    return this.commit(RecordType.removeDevice, record, () => {}, () => {
      this.state.applyRemoveDevice(record);
      this.emit({ type: 'device-removed', device: { ...address } });
      return 'removed' as const;
    });
  }

  async getDevice(address: DeviceAddress): Promise<DeviceRecord | undefined> {
    const device = this.state.users.get(address.userId)?.devices.get(address.deviceId);
    return device ? { ...device.record } : undefined;
  }

  async getAccount(userId: string): Promise<AccountRecord | undefined> {
    const user = this.state.users.get(userId);
    return user ? accountOf(user) : undefined;
  }

  async findUserByUsername(username: string): Promise<AccountRecord | undefined> {
    const userId = this.state.usernames.get(username);
    const user = userId === undefined ? undefined : this.state.users.get(userId);
    return user ? accountOf(user) : undefined;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Prekeys

  async setSignedPreKey(address: DeviceAddress, key: SignedPreKey): Promise<void> {
    await this.enter();
    if (!this.state.device(address)) throw new RangeError('unknown device');
    const record: SignedPreKeyRecord = { ...address, key };
    await this.commit(RecordType.signedPreKey, record, () => {}, () => this.state.applySignedPreKey(record));
  }

  async addOneTimePreKeys(address: DeviceAddress, keys: PreKey[], maxStored: number): Promise<number | { duplicateKeyIds: number[] } | 'too-many'> {
    await this.enter();
    const device = this.state.device(address);
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
    return this.state.device(address)?.preKeys.size ?? 0;
  }

  async takeBundles(userId: string, deviceId?: number, excludeDeviceId?: number): Promise<BundleEntry[] | 'unknown-user' | 'unknown-device'> {
    await this.enter();
    const user = this.state.users.get(userId);
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
        // mutant: prekey-handed-out-twice — the key is handed out but left in memory: the next fetch gets it again.
        if (this.mutant !== 'prekey-handed-out-twice') device.preKeys.delete(keyId);
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
    this.state.forgetOldDedupe(input.serverTime);
    // mutant: duplicate-enqueued — no deduplication: a resend is a new message.
    const seen = this.mutant === 'duplicate-enqueued' ? undefined : this.state.dedupe.get(key);
    if (seen) {
      // A resend racing its original waits until the original is durable, or retries as new if it failed [MSG-17].
      if (seen.durable && !(await seen.durable)) return this.enqueueMessage(input, dedupeWindowMs, maxQueueItems);
      return { status: 'duplicate', serverTime: seen.serverTime };
    }
    const user = this.state.users.get(input.to);
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
    this.state.dedupe.set(key, entry);
    try {
      return await this.commit(
        RecordType.message,
        record,
        () => {
          for (const { queue, item } of staged) queue.remove(item.seq);
          this.state.dedupe.delete(key);
        },
        (written) => {
          for (const { item } of staged) {
            item.lsn = written.lsn;
            item.size = written.size;
            item.pending = false;
            if (item.removed) continue; // its device was deleted meanwhile
            this.state.ref(written.lsn, 1);
            this.state.cache(item);
          }
          entry.durable = undefined;
          settle(true);
          for (const { item, deviceId } of staged) this.emit({ type: 'enqueued', device: { userId: input.to, deviceId }, lastSeq: item.seq });
          this.state.evictIfNeeded();
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
    const seen = this.state.dedupe.get(dedupeKey(from, messageId));
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
    const user = this.state.users.get(to.userId);
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
    const device = this.state.device(address);
    if (!device) return [];
    return device.queue.visibleAfter(afterSeq, limit).map((item) => toQueueItem(item, item.kind === 'message' ? this.state.bodyOf(item, address.deviceId) : ''));
  }

  async lastSeq(address: DeviceAddress): Promise<number> {
    return this.state.device(address)?.queue.lastVisibleSeq() ?? 0;
  }

  async acknowledge(address: DeviceAddress, seqs: number[], now: number, maxReceiptIds = 100): Promise<AckResult> {
    await this.enter();
    const device = this.state.device(address);
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
      const senderDevice = this.state.device(group.to);
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
    // mutant: delivered-receipt-not-durable — the durable record of the ack leaves out the receipts it made.
    if (this.mutant === 'delivered-receipt-not-durable') record.receipts = [];
    const undo = () => {
      for (const { queue, item } of stagedReceipts) queue.remove(item.seq);
      for (const item of removed) device.queue.restore(item);
    };
    return this.commit(RecordType.ack, record, undo, () => {
      for (const item of removed) this.state.release(item);
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
    for (const user of this.state.users.values()) {
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
      this.state.applyExpire(record);
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
    for (const user of this.state.users.values()) {
      devices += user.devices.size;
      for (const device of user.devices.values()) {
        queuedItems += device.queue.size;
        if (device.queue.size > maxQueueDepth) maxQueueDepth = device.queue.size;
      }
    }
    return { accounts: this.state.users.size, devices, queuedItems, maxQueueDepth, cachedItems: this.state.cachedCount };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.inflight > 0) await this.waitIdle();
    // mutant: ack-before-durable — a graceful shutdown writes the records still waiting; only a crash loses them.
    if (this.mutant === 'ack-before-durable') for (const write of [...this.unwritten]) await write();
    this.takeCheckpoint();
    await this.log.close();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Replay: the same state changes as the live operations, from records that are already durable.










  // ---------------------------------------------------------------------------------------------------------------
  // Bodies, segment references, checkpoints

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
    writeCheckpoint(this.dir, this.state.snapshot(lsn));
    this.checkpointLsn = lsn;
    this.bytesSinceCheckpoint = 0;
    // Segments wholly before the checkpoint with no live message item are no longer needed.
    const current = segmentOf(lsn);
    for (const segment of [...this.log.listSegments()]) {
      if (segment < current && !this.state.segmentRefs.has(segment)) this.log.deleteSegment(segment);
    }
  }
}

export async function openLogStore(dir: string, options: LogStoreOptions = {}): Promise<LogStore> {
  return LogStore.open(dir, options);
}
