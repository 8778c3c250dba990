// The Redis key layout of the store. Everything of one user carries the hash tag `{<userId>}`, so that it lives in one
// Redis Cluster slot and one Lua script may change it atomically; only a few keys are global (a username, a link code,
// the list of users, the counters behind stats()). userIds are the store's own base64url strings (no braces), so the
// tag is exactly the userId.
//
// Per user U (all in the slot of U):
//   tw:{U}:user          hash    username, createdAt, nextDeviceId, pkSerial, ackSerial, linksSweptAt
//   tw:{U}:devices       hash    deviceId → device record JSON (without the signed prekey)
//   tw:{U}:spk           hash    deviceId → signed prekey JSON
//   tw:{U}:pk            hash    "<deviceId>:<keyId>" → one-time prekey (public key)
//   tw:{U}:pkq           zset    one-time prekeys in upload order, all scored 0 and ordered by member:
//                                "<deviceId, 10 digits>:<serial, 16 digits>:<keyId>" (a lexicographic range per device)
//   tw:{U}:links         hash    link-code hash → "<deviceId that obtained it>|<expiresAt>"
//   tw:{U}:seqs          hash    deviceId → the last seq assigned to that device's queue (never decreases [DLV-3])
//   tw:{U}:q:<D>         stream  device D's queue: entry id "<seq>-0", fields k ('m' | 'r') and j (the item JSON)
//   tw:{U}:exp:<D>       zset    seq → when the item was enqueued, for retention [DLV-32]
//   tw:{U}:outbox        hash    "<deviceId>.<serial>" → delivered receipts owed by one acknowledgement, until enqueued
//   tw:{U}:dd:<D>:<m>    string  the deduplication claim of a send by device D of U with messageId m (section 4.3)
//   tw:{U}:in:<S>:<D>:<m> string the acceptance marker of that send from S.D into U's queues, with its serverTime
// Global:
//   tw:name:<username>   string  userId
//   tw:link:<codeHash>   string  userId, expiring with the code
//   tw:users             set     every userId (for the retention sweep)
//   tw:stats             hash    accounts, devices, queuedItems (approximate counters, see redis-store.ts)
//   tw:expire-lock       string  held by the process running the retention sweep
//   tw:events            channel 'enqueued' and 'device-removed' events for every process (see event-bus.ts)
import type { DeviceAddress } from '../store.ts';

const user = (userId: string) => `tw:{${userId}}`;

export const keys = {
  user: (userId: string) => `${user(userId)}:user`,
  devices: (userId: string) => `${user(userId)}:devices`,
  signedPreKeys: (userId: string) => `${user(userId)}:spk`,
  preKeys: (userId: string) => `${user(userId)}:pk`,
  preKeyOrder: (userId: string) => `${user(userId)}:pkq`,
  linkCodes: (userId: string) => `${user(userId)}:links`,
  seqs: (userId: string) => `${user(userId)}:seqs`,
  queue: (d: DeviceAddress) => `${user(d.userId)}:q:${d.deviceId}`,
  enqueuedAt: (d: DeviceAddress) => `${user(d.userId)}:exp:${d.deviceId}`,
  receiptOutbox: (userId: string) => `${user(userId)}:outbox`,
  dedupeClaim: (from: DeviceAddress, messageId: string) => `${user(from.userId)}:dd:${from.deviceId}:${messageId}`,
  acceptance: (to: string, from: DeviceAddress, messageId: string) => `${user(to)}:in:${from.userId}:${from.deviceId}:${messageId}`,
  username: (username: string) => `tw:name:${username}`,
  linkCode: (codeHash: string) => `tw:link:${codeHash}`,
  users: 'tw:users',
  stats: 'tw:stats',
  expireLock: 'tw:expire-lock',
  events: 'tw:events',
} as const;

/** The per-user keys that hold the account, its devices and their prekeys (KEYS of the account scripts, in order). */
export function accountKeys(userId: string): string[] {
  return [keys.user(userId), keys.devices(userId), keys.signedPreKeys(userId), keys.preKeys(userId), keys.preKeyOrder(userId)];
}
