// The store interface: everything the server keeps, behind operations whose promises resolve only once the change
// is durable. The embedded log (store/log/) implements it; a Redis-backed store for several processes will too, and
// the rest of the server must not need to change for that.
//
// Every mutation is atomic: it happens whole or not at all, and concurrent calls behave as if run one at a time in
// some order. Reads return the latest state that includes every mutation whose promise has resolved.
import type { EnvelopeType, PreKey, SignedPreKey } from '../../spec/index.ts';

export interface DeviceAddress {
  userId: string;
  deviceId: number;
}

/** What the server keeps about a device. The secret is kept only as its SHA-256 hash [AUT]. */
export interface DeviceRecord {
  userId: string;
  deviceId: number;
  name: string;
  /** Hex SHA-256 of the device secret. */
  secretHash: string;
  registrationId: number;
  identityKey: string;
  signedPreKey: SignedPreKey;
  createdAt: number;
}

export interface NewDevice {
  name: string;
  secretHash: string;
  registrationId: number;
  identityKey: string;
  signedPreKey: SignedPreKey;
  oneTimePreKeys: PreKey[];
}

export interface AccountRecord {
  userId: string;
  username: string;
  createdAt: number;
  /** Device ids currently registered, ascending. */
  deviceIds: number[];
}

/** A device's entry in a prekey bundle, with the one-time prekey it was handed (if any were left). */
export interface BundleEntry {
  device: DeviceRecord;
  oneTimePreKey?: PreKey;
  /** One-time prekeys left for this device after this fetch. */
  remaining: number;
}

export interface MessageItemRecord {
  kind: 'message';
  seq: number;
  messageId: string;
  from: DeviceAddress;
  envelope: { type: EnvelopeType; body: string };
  serverTime: number;
}

export interface ReceiptItemRecord {
  kind: 'receipt';
  seq: number;
  status: 'delivered' | 'read';
  from: DeviceAddress;
  messageIds: string[];
  at: number;
}

export type QueueItem = MessageItemRecord | ReceiptItemRecord;

export interface EnqueueMessageInput {
  from: DeviceAddress;
  messageId: string;
  /** The recipient user; `envelopes` address devices of this user. */
  to: string;
  envelopes: Array<{ deviceId: number; type: EnvelopeType; body: string }>;
  serverTime: number;
}

export type EnqueueMessageResult =
  | { status: 'accepted'; serverTime: number; seqs: Array<{ deviceId: number; seq: number }> }
  | { status: 'duplicate'; serverTime: number }
  | { status: 'unknown-user' }
  | { status: 'stale-devices'; missing: number[]; extra: number[] }
  | { status: 'queue-full'; deviceIds: number[] };

export interface AckResult {
  /** Seqs that this call removed from the queue (already removed ones are not repeated). */
  removed: number[];
  /** Delivered receipts the acknowledgement produced, already enqueued for their sender devices. */
  receipts: Array<{ to: DeviceAddress; item: ReceiptItemRecord }>;
}

export type StoreEvent =
  /** Items were appended to a device's queue (wake its session). */
  | { type: 'enqueued'; device: DeviceAddress; lastSeq: number }
  /** A device was removed (close its session). */
  | { type: 'device-removed'; device: DeviceAddress };

export interface StoreStats {
  accounts: number;
  devices: number;
  queuedItems: number;
  /** Items in the longest device queue. */
  maxQueueDepth: number;
  /** Items whose body is held in memory (the rest are read back from disk on delivery). */
  cachedItems: number;
}

export interface Store {
  // Accounts and devices [IDN]
  /** Creates a user with its first device. Resolves `undefined` when the username is taken. */
  createAccount(username: string, device: NewDevice, now: number): Promise<{ userId: string; deviceId: number } | undefined>;
  /**
   * Stores a single-use link code (by its hash) that lets a new device join `userId` until `expiresAt`. `byDeviceId`
   * names the device that asked for it: deleting that device invalidates the code. `now`, when given, lets the store
   * forget codes that have expired (they can never be used again, IDN-17).
   */
  createLinkCode(userId: string, codeHash: string, expiresAt: number, byDeviceId?: number, now?: number): Promise<void>;
  /**
   * Consumes a link code and adds a device in one step. Resolves the failure reason when the code is unknown,
   * used or expired, or the user already has `maxDevices` devices (the code is then left unused).
   */
  linkDevice(
    codeHash: string,
    device: NewDevice,
    now: number,
    maxDevices: number,
  ): Promise<{ userId: string; deviceId: number } | 'invalid-code' | 'too-many-devices'>;
  /** Removes a device, its queue and its prekeys. Resolves the failure reason when it cannot. */
  removeDevice(device: DeviceAddress): Promise<'removed' | 'unknown-device' | 'last-device'>;
  getDevice(device: DeviceAddress): Promise<DeviceRecord | undefined>;
  getAccount(userId: string): Promise<AccountRecord | undefined>;
  findUserByUsername(username: string): Promise<AccountRecord | undefined>;

  // Prekeys [PKY]
  setSignedPreKey(device: DeviceAddress, key: SignedPreKey): Promise<void>;
  /**
   * Adds one-time prekeys atomically; resolves the count now stored, or why nothing was stored: the keyIds that clash
   * with stored unconsumed keys (ascending) [PKY-6], or the cap [PKY-7].
   */
  addOneTimePreKeys(device: DeviceAddress, keys: PreKey[], maxStored: number): Promise<number | { duplicateKeyIds: number[] } | 'too-many'>;
  countOneTimePreKeys(device: DeviceAddress): Promise<number>;
  /**
   * Builds bundles for every device of `userId` (or only `deviceId`), taking one one-time prekey per device. A taken
   * key is gone durably before this resolves: no key is ever handed out twice, even across a crash [PKY].
   */
  takeBundles(userId: string, deviceId?: number, excludeDeviceId?: number): Promise<BundleEntry[] | 'unknown-user' | 'unknown-device'>;

  // Queues [MSG] [DLV] [RCP]
  /** Checks the device list, de-duplicates, and enqueues one item per envelope, all or nothing. */
  enqueueMessage(input: EnqueueMessageInput, dedupeWindowMs: number, maxQueueItems: number): Promise<EnqueueMessageResult>;
  /**
   * The acceptance time of an earlier durable send with this deduplication key, if it is still remembered [MSG-14].
   * Lets the server answer a resend as a duplicate before checks that come after deduplication (MSG-2).
   */
  findDuplicate(from: DeviceAddress, messageId: string, now: number): Promise<{ serverTime: number } | undefined>;
    /** Enqueues a read receipt item for `to` [RCP-10] [RCP-11]. */
  enqueueReceipt(
    to: DeviceAddress,
    receipt: Omit<ReceiptItemRecord, 'seq'>,
    maxQueueItems: number,
  ): Promise<{ status: 'accepted'; seq: number } | { status: 'unknown-user' } | { status: 'unknown-device' } | { status: 'queue-full' }>;
  /** Items of the device's queue with seq > afterSeq, ascending, at most `limit`. */
  readQueue(device: DeviceAddress, afterSeq: number, limit: number): Promise<QueueItem[]>;
  /** The highest seq currently in the device's queue, 0 when it is empty. */
  lastSeq(device: DeviceAddress): Promise<number>;
  /**
   * Removes the given items from the device's own queue and enqueues delivered receipts for the message items, at most
   * `maxReceiptIds` messageIds per receipt item [RCP-1] [RCP-2]. Items leave the queue at once (the window frees);
   * the returned promise resolves when the removal and the receipts are durable [RCP-5].
   */
  acknowledge(device: DeviceAddress, seqs: number[], now: number, maxReceiptIds?: number): Promise<AckResult>;
  /** Removes items older than `olderThan` (retention); resolves how many were removed. */
  expire(olderThan: number): Promise<number>;

  /** Subscribes to changes; returns the function that unsubscribes. */
  subscribe(listener: (event: StoreEvent) => void): () => void;
  stats(): StoreStats;
  /** Flushes and closes; later calls reject. */
  close(): Promise<void>;
}
