// How the Redis store writes records as strings and reads them back: queue items (the JSON of a stream entry's `j`
// field; the seq is the entry id, not repeated), device records, and the replies of scripts, which arrive as untyped
// nested arrays of strings and integers and are checked here before anything trusts them.
import type { EnvelopeType, PreKey, SignedPreKey } from '../../../spec/index.ts';
import type { DeviceAddress, DeviceRecord, NewDevice, QueueItem, ReceiptItemRecord } from '../store.ts';

interface MessageJson {
  id: string;
  f: [string, number];
  t: EnvelopeType;
  b: string;
  st: number;
}

interface ReceiptJson {
  s: 'delivered' | 'read';
  f: [string, number];
  ids: string[];
  at: number;
}

interface DeviceJson {
  name: string;
  secretHash: string;
  registrationId: number;
  identityKey: string;
  createdAt: number;
}

export function messageJson(messageId: string, from: DeviceAddress, type: EnvelopeType, body: string, serverTime: number): string {
  const json: MessageJson = { id: messageId, f: [from.userId, from.deviceId], t: type, b: body, st: serverTime };
  return JSON.stringify(json);
}

export function receiptJson(receipt: Omit<ReceiptItemRecord, 'seq' | 'kind'>): string {
  const json: ReceiptJson = { s: receipt.status, f: [receipt.from.userId, receipt.from.deviceId], ids: receipt.messageIds, at: receipt.at };
  return JSON.stringify(json);
}

export function queueItem(seq: number, kind: string, json: string): QueueItem {
  if (kind === 'm') {
    const m = JSON.parse(json) as MessageJson;
    return { kind: 'message', seq, messageId: m.id, from: { userId: m.f[0], deviceId: m.f[1] }, envelope: { type: m.t, body: m.b }, serverTime: m.st };
  }
  if (kind === 'r') {
    const r = JSON.parse(json) as ReceiptJson;
    return { kind: 'receipt', seq, status: r.s, from: { userId: r.f[0], deviceId: r.f[1] }, messageIds: r.ids, at: r.at };
  }
  throw new TypeError(`queue entry ${seq} has unknown kind '${kind}'`);
}

/** The seq of a stream entry id "<seq>-0". */
export function seqOfId(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** Items from an XRANGE reply: [[id, [field, value, ...]], ...]. */
export function queueItems(reply: Array<[string, string[]]>): QueueItem[] {
  return reply.map(([id, fields]) => {
    let kind = '';
    let json = '';
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'k') kind = fields[i + 1]!;
      else if (fields[i] === 'j') json = fields[i + 1]!;
    }
    return queueItem(seqOfId(id), kind, json);
  });
}

export function deviceJson(device: NewDevice, createdAt: number): string {
  const json: DeviceJson = {
    name: device.name,
    secretHash: device.secretHash,
    registrationId: device.registrationId,
    identityKey: device.identityKey,
    createdAt,
  };
  return JSON.stringify(json);
}

export function signedPreKeyJson(key: SignedPreKey): string {
  return JSON.stringify({ keyId: key.keyId, publicKey: key.publicKey, signature: key.signature });
}

export function deviceRecord(userId: string, deviceId: number, json: string, signedPreKey: string): DeviceRecord {
  const d = JSON.parse(json) as DeviceJson;
  return {
    userId,
    deviceId,
    name: d.name,
    secretHash: d.secretHash,
    registrationId: d.registrationId,
    identityKey: d.identityKey,
    signedPreKey: JSON.parse(signedPreKey) as SignedPreKey,
    createdAt: d.createdAt,
  };
}

/** One-time prekeys as script arguments: n, then n × (keyId, publicKey). */
export function preKeyArgs(keys: readonly PreKey[]): string[] {
  const args = [String(keys.length)];
  for (const key of keys) args.push(String(key.keyId), key.publicKey);
  return args;
}

/** The lexicographic bounds of one device's prekeys in the order zset (see keys.ts and scripts.ts). */
export function preKeyRange(deviceId: number): [string, string] {
  const padded = String(deviceId).padStart(10, '0');
  return [`[${padded}:`, `(${padded};`];
}

// ---------------------------------------------------------------------------------------------------------------
// Script replies

export class ReplyError extends TypeError {
  constructor(what: string, reply: unknown) {
    super(`unexpected reply from Redis for ${what}: ${JSON.stringify(reply)?.slice(0, 200)}`);
    this.name = 'ReplyError';
  }
}

export function asArray(reply: unknown, what: string): unknown[] {
  if (!Array.isArray(reply)) throw new ReplyError(what, reply);
  return reply;
}

export function asString(reply: unknown, what: string): string {
  if (typeof reply === 'string') return reply;
  throw new ReplyError(what, reply);
}

/** A number from an integer reply or a decimal string. */
export function asNumber(reply: unknown, what: string): number {
  const n = typeof reply === 'number' ? reply : typeof reply === 'string' ? Number(reply) : NaN;
  if (!Number.isFinite(n)) throw new ReplyError(what, reply);
  return n;
}

export function asNumbers(reply: unknown, what: string): number[] {
  return asArray(reply, what).map((n) => asNumber(n, what));
}
