// The embedded store's state in memory: users, devices, prekeys, queues, deduplication keys, and the bookkeeping
// that ties queue items to the log (segment references, the message-body cache). Every change a durable record
// describes is applied here, both live (by LogStore, once the record is durable) and on replay at start-up; the
// state can be written as a checkpoint and restored from one.
import type { PreKey } from '../../../spec/index.ts';
import type { AccountRecord, DeviceAddress, DeviceRecord } from '../store.ts';
import { StoreUnavailableError } from '../errors.ts';
import type { Checkpoint, CheckpointUser } from './checkpoint.ts';
import { DeviceQueue, type StoredItem, type StoredMessage, type StoredReceipt } from './device-queue.ts';
import {
  decodePayload,
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
import { segmentOf, type Lsn } from './segment-log.ts';

export interface DeviceState {
  record: DeviceRecord;
  preKeys: Map<number, PreKey>;
  queue: DeviceQueue;
}

export interface UserState {
  userId: string;
  username: string;
  createdAt: number;
  nextDeviceId: number;
  devices: Map<number, DeviceState>;
  /** Links staged but not yet durable, counted against maxDevicesPerUser. */
  linking: number;
}

export interface DedupeEntry {
  serverTime: number;
  forgetAfter: number;
  /** Set while the original send is not yet durable [MSG-17]. */
  durable: Promise<boolean> | undefined;
}

export interface LinkCode {
  userId: string;
  /** The device that obtained the code; deleting it invalidates the code. */
  deviceId: number;
  expiresAt: number;
}

export const dedupeKey = (from: DeviceAddress, messageId: string) => `${from.userId}.${from.deviceId}/${messageId}`;

export class StoreState {
  readonly users = new Map<string, UserState>();
  readonly usernames = new Map<string, string>();
  /** Link codes are ephemeral (spec 4.14): kept in memory only. */
  readonly linkCodes = new Map<string, LinkCode>();
  readonly dedupe = new Map<string, DedupeEntry>();
  /** Live message items per segment: a sealed segment with none, older than the checkpoint, can be deleted. */
  readonly segmentRefs = new Map<number, number>();
  /** Message items whose body is cached, oldest first, for eviction. */
  private cached: StoredMessage[] = [];
  private cachedHead = 0;
  private cachedBytes = 0;
  /** Items in `cached` that still hold their body. */
  cachedCount = 0;

  /** Reads a record back from the log (for bodies evicted from memory); set once the log is open. */
  readRecord: (lsn: Lsn, size: number) => { type: number; payload: Buffer } = () => {
    throw new StoreUnavailableError('the log is not open');
  };

  constructor(private readonly cacheBytes: number) {}

  replay(type: number, payload: Buffer, lsn: Lsn, size: number): void {
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

  applyRegister(record: RegisterRecord): void {
    const user: UserState = { userId: record.userId, username: record.username, createdAt: record.createdAt, nextDeviceId: 1, devices: new Map(), linking: 0 };
    this.users.set(record.userId, user);
    this.usernames.set(record.username, record.userId);
    this.addDevice(user, record.device);
  }

  applyLink(record: LinkRecord): void {
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

  applyRemoveDevice(record: RemoveDeviceRecord): void {
    const user = this.users.get(record.userId);
    const device = user?.devices.get(record.deviceId);
    if (!user || !device) return;
    for (const item of [...device.queue.all()]) this.releaseRemoved(device.queue.remove(item.seq));
    user.devices.delete(record.deviceId);
    for (const [hash, code] of this.linkCodes) if (code.userId === record.userId && code.deviceId === record.deviceId) this.linkCodes.delete(hash);
  }

  applySignedPreKey(record: SignedPreKeyRecord): void {
    const device = this.device(record);
    if (device) device.record = { ...device.record, signedPreKey: record.key };
  }

  applyMessage(record: MessageRecord, lsn: Lsn, size: number): void {
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

  applyReceipt(payload: ReceiptPayload): void {
    const device = this.device(payload.to);
    if (!device) return;
    const item = receiptItem(payload, payload.at);
    item.pending = false;
    device.queue.push(item);
  }

  applyExpire(record: ExpireRecord): void {
    for (const [userId, deviceId, seq] of record.items) {
      const device = this.device({ userId, deviceId });
      if (device) this.releaseRemoved(device.queue.remove(seq));
    }
  }

  device(address: DeviceAddress): DeviceState | undefined {
    return this.users.get(address.userId)?.devices.get(address.deviceId);
  }

  ref(lsn: Lsn, delta: number): void {
    const segment = segmentOf(lsn);
    const count = (this.segmentRefs.get(segment) ?? 0) + delta;
    if (count <= 0) this.segmentRefs.delete(segment);
    else this.segmentRefs.set(segment, count);
  }

  release(item: StoredItem): void {
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

  releaseRemoved(item: StoredItem | undefined): void {
    if (item) this.release(item);
  }

  cache(item: StoredMessage): void {
    if (item.body === undefined) return;
    this.cached.push(item);
    this.cachedBytes += item.bodyLength;
    this.cachedCount++;
  }

  evictIfNeeded(): void {
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

  bodyOf(item: StoredMessage, deviceId: number): string {
    if (item.body !== undefined) return item.body;
    const record = decodePayload<MessageRecord>(this.readRecord(item.lsn, item.size).payload);
    const entry = record.items.find((i) => i.deviceId === deviceId && i.seq === item.seq);
    if (!entry) throw new StoreUnavailableError(`log record for seq ${item.seq} does not hold its envelope`);
    return entry.body;
  }

  forgetOldDedupe(now: number): void {
    for (const [key, entry] of this.dedupe) {
      if (entry.forgetAfter > now || entry.durable) break; // roughly time-ordered: stop at the first one still needed
      this.dedupe.delete(key);
    }
  }

  /** Loads a checkpoint into an empty state. */
  restore(checkpoint: Checkpoint): void {
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
  }

  /** The state as a checkpoint up to `lsn`; call it only with nothing in flight, when it equals the durable state. */
  snapshot(lsn: Lsn): Omit<Checkpoint, 'format'> {
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
    return { lsn, createdAt: Date.now(), users, dedupe };
  }
}

export function receiptItem(payload: ReceiptPayload, enqueuedAt: number): StoredReceipt {
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

export function accountOf(user: UserState): AccountRecord {
  return { userId: user.userId, username: user.username, createdAt: user.createdAt, deviceIds: [...user.devices.keys()].sort((a, b) => a - b) };
}
