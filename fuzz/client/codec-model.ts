// A second reading of PROTOCOL.md 8.5 written for the fuzzer: a field-list view of the protobuf (parse, edit,
// re-encode, including encodings no honest encoder writes) and a decoder that says, for any byte string, either what
// a conforming decoder must return or which local codes (8.8.1) a conforming decoder may reject it with. It shares no
// code with reference-client/e2e/protobuf.ts or envelope.ts, so the two can be compared (differential testing); it
// uses BigInt for every varint so values beyond 2^53 are exact. Rule IDs are cited next to each check.
import { LOW_ORDER_POINTS, type E2eErrorCode } from '../../reference-client/e2e/index.ts';

/** One field as it sits on the wire. `width` is the varint's byte count (minimal when absent). */
export type WireField =
  | { field: number; wireType: 0; value: bigint; width?: number | undefined }
  | { field: number; wireType: 1 | 2 | 5; value: Uint8Array };

export const UINT32_MAX = 0xffff_ffffn;
const MAX_FIELD_NUMBER = 0x1fff_ffff; // protobuf field numbers are 1..2^29 − 1
const P = (1n << 255n) - 19n;
const MAC_BYTES = 8;

// ---- encoding ------------------------------------------------------------------------------------------------------

/** A varint of `value`, padded to `width` bytes with continuation groups of zero (non-minimal) when asked. */
export function encodeVarint(value: bigint, width?: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  do {
    out.push(Number(v & 0x7fn));
    v >>= 7n;
  } while (v > 0n);
  while (width !== undefined && out.length < width) out.push(0);
  return Uint8Array.from(out.map((b, i) => (i < out.length - 1 ? b | 0x80 : b)));
}

export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function encodeField(f: WireField): Uint8Array {
  const key = encodeVarint(BigInt(f.field) * 8n + BigInt(f.wireType));
  if (f.wireType === 0) return cat(key, encodeVarint(f.value, f.width));
  if (f.wireType === 2) return cat(key, encodeVarint(BigInt(f.value.length)), f.value);
  return cat(key, f.value);
}

export const encodeFields = (fields: readonly WireField[]): Uint8Array => cat(...fields.map(encodeField));

// ---- parsing -------------------------------------------------------------------------------------------------------

export type Parsed = { ok: true; fields: WireField[] } | { ok: false; reason: string; fields: WireField[] };

function readVarint(bytes: Uint8Array, at: number): { value: bigint; next: number; width: number } | string {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    const byte = bytes[at + i];
    if (byte === undefined) return 'truncated varint';
    // [E2E-43] the tenth byte may only carry bit 63; more is an over-long varint.
    if (i === 9 && byte > 1) return 'varint over 64 bits';
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) return { value, next: at + i + 1, width: i + 1 };
  }
  return 'varint over 10 bytes';
}

/**
 * Splits a protobuf into its fields, stopping at the first structural fault [E2E-43] (truncated or over-long varint,
 * field number 0 or beyond 2^29 − 1, wire type 3, 4, 6 or 7, a length past the end). The fields read so far are
 * returned either way.
 */
export function parseFields(bytes: Uint8Array): Parsed {
  const fields: WireField[] = [];
  let at = 0;
  while (at < bytes.length) {
    const key = readVarint(bytes, at);
    if (typeof key === 'string') return { ok: false, reason: `key: ${key}`, fields };
    at = key.next;
    const wireType = Number(key.value & 7n);
    const number = key.value >> 3n;
    if (number === 0n || number > BigInt(MAX_FIELD_NUMBER)) return { ok: false, reason: `field number ${number}`, fields };
    const field = Number(number);
    if (wireType === 0) {
      const v = readVarint(bytes, at);
      if (typeof v === 'string') return { ok: false, reason: `field ${field}: ${v}`, fields };
      fields.push({ field, wireType: 0, value: v.value, width: v.width });
      at = v.next;
    } else if (wireType === 2) {
      const len = readVarint(bytes, at);
      if (typeof len === 'string') return { ok: false, reason: `field ${field} length: ${len}`, fields };
      if (len.value > BigInt(bytes.length - len.next)) return { ok: false, reason: `field ${field} runs past the end`, fields };
      const end = len.next + Number(len.value);
      fields.push({ field, wireType: 2, value: bytes.slice(len.next, end) });
      at = end;
    } else if (wireType === 1 || wireType === 5) {
      const width = wireType === 1 ? 8 : 4;
      if (at + width > bytes.length) return { ok: false, reason: `field ${field} runs past the end`, fields };
      fields.push({ field, wireType, value: bytes.slice(at, at + width) });
      at += width;
    } else {
      return { ok: false, reason: `wire type ${wireType}`, fields };
    }
  }
  return { ok: true, fields };
}

// ---- public keys ---------------------------------------------------------------------------------------------------

const LOW_ORDER = new Set(LOW_ORDER_POINTS);
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** [E2E-4] to [E2E-6], read straight from 8.1.2. */
export function publicKeyValid(key: Uint8Array): boolean {
  if (key.length !== 33 || key[0] !== 0x05) return false; // [E2E-4]
  const u = key.subarray(1);
  if ((u[31]! & 0x80) !== 0) return false; // [E2E-5] bit 255
  let value = 0n;
  for (let i = 31; i >= 0; i--) value = (value << 8n) | BigInt(u[i]!);
  if (value >= P) return false; // [E2E-5] LE(u) ≥ p
  return !LOW_ORDER.has(hexOf(u)); // [E2E-6]
}

// ---- messages ------------------------------------------------------------------------------------------------------

export interface ModelSignal {
  version: number;
  ratchetKey: Uint8Array;
  counter: number;
  previousCounter: number;
  ciphertext: Uint8Array;
  /** version ‖ protobuf, the part the MAC covers. */
  macInput: Uint8Array;
  mac: Uint8Array;
}

export interface ModelPreKey {
  version: number;
  preKeyId: number | undefined;
  baseKey: Uint8Array;
  identityKey: Uint8Array;
  message: Uint8Array;
  registrationId: number;
  signedPreKeyId: number;
  signalMessage: ModelSignal;
}

export type Verdict<T> = { ok: true; value: T } | { ok: false; codes: Set<E2eErrorCode>; reasons: string[] };

type Shape = ReadonlyMap<number, 0 | 2>;
const SIGNAL_SHAPE: Shape = new Map([[1, 2], [2, 0], [3, 0], [4, 2]]);
const PREKEY_SHAPE: Shape = new Map([[1, 0], [2, 2], [3, 2], [4, 2], [5, 0], [6, 0]]);

class Faults {
  readonly codes = new Set<E2eErrorCode>();
  readonly reasons: string[] = [];
  add(code: E2eErrorCode, reason: string): void {
    this.codes.add(code);
    this.reasons.push(reason);
  }
  merge(other: Faults | { codes: Set<E2eErrorCode>; reasons: string[] }): void {
    for (const c of other.codes) this.codes.add(c);
    this.reasons.push(...other.reasons);
  }
  get any(): boolean {
    return this.codes.size > 0;
  }
}

/** Known fields by number, with every [E2E-43], [E2E-44], [E2E-46] fault recorded. */
function knownFields(bytes: Uint8Array, shape: Shape, forbidden: readonly number[], faults: Faults, keys: readonly number[]) {
  const parsed = parseFields(bytes);
  if (!parsed.ok) faults.add('E2E_MALFORMED_MESSAGE', parsed.reason);
  const found = new Map<number, WireField>();
  for (const f of parsed.fields) {
    if (forbidden.includes(f.field)) faults.add('E2E_MALFORMED_MESSAGE', `field ${f.field} is forbidden`); // [E2E-46]
    const wireType = shape.get(f.field);
    if (wireType === undefined) continue; // [E2E-47] unknown fields are skipped
    if (f.wireType !== wireType) faults.add('E2E_MALFORMED_MESSAGE', `field ${f.field} has wire type ${f.wireType}`);
    else if (f.wireType === 0 && f.value > UINT32_MAX) faults.add('E2E_MALFORMED_MESSAGE', `field ${f.field} exceeds uint32`);
    if (found.has(f.field)) faults.add('E2E_MALFORMED_MESSAGE', `field ${f.field} repeated`); // [E2E-44]
    else found.set(f.field, f);
    // [E2E-48] a key seen before any structural fault may be reported as invalid, in whatever order a decoder checks.
    if (keys.includes(f.field) && f.wireType === 2 && !publicKeyValid(f.value)) faults.add('E2E_INVALID_KEY', `field ${f.field} is not a valid key`);
  }
  return { complete: parsed.ok, found };
}

const uint = (f: WireField | undefined): number | undefined => (f?.wireType === 0 ? Number(f.value) : undefined);
const bytesOf = (f: WireField | undefined): Uint8Array | undefined => (f?.wireType === 2 ? f.value : undefined);

function checkVersion(body: Uint8Array, faults: Faults): number {
  const version = body[0]! >> 4; // [E2E-41] high nibble only
  if (version !== 3) faults.add('E2E_UNSUPPORTED_VERSION', `version ${version}`);
  return version;
}

/** What a conforming decoder must make of `body` as a SignalMessage (8.5.2, 8.5.4). */
export function modelDecodeSignal(body: Uint8Array): Verdict<ModelSignal> {
  const faults = new Faults();
  if (body.length < 1 + MAC_BYTES) faults.add('E2E_MALFORMED_MESSAGE', `${body.length} bytes`); // [E2E-42]
  if (body.length > 0) checkVersion(body, faults);
  if (body.length < 1 + MAC_BYTES) return { ok: false, codes: faults.codes, reasons: faults.reasons };
  const { complete, found } = knownFields(body.subarray(1, body.length - MAC_BYTES), SIGNAL_SHAPE, [], faults, [1]);
  // [E2E-45] required fields (only meaningful when the protobuf was read to its end).
  if (complete) for (const n of [1, 2, 4]) if (!found.has(n)) faults.add('E2E_MALFORMED_MESSAGE', `field ${n} missing`);
  if (faults.any) return { ok: false, codes: faults.codes, reasons: faults.reasons };
  return {
    ok: true,
    value: {
      version: body[0]! >> 4,
      ratchetKey: bytesOf(found.get(1))!,
      counter: uint(found.get(2))!,
      previousCounter: uint(found.get(3)) ?? 0,
      ciphertext: bytesOf(found.get(4))!,
      macInput: body.slice(0, body.length - MAC_BYTES),
      mac: body.slice(body.length - MAC_BYTES),
    },
  };
}

/** What a conforming decoder must make of `body` as a PreKeySignalMessage (8.5.3, 8.5.4), inner message included. */
export function modelDecodePreKey(body: Uint8Array): Verdict<ModelPreKey> {
  const faults = new Faults();
  if (body.length === 0) {
    faults.add('E2E_MALFORMED_MESSAGE', 'empty'); // [E2E-42]
    return { ok: false, codes: faults.codes, reasons: faults.reasons };
  }
  checkVersion(body, faults);
  const { complete, found } = knownFields(body.subarray(1), PREKEY_SHAPE, [7, 8], faults, [2, 3]);
  if (complete) for (const n of [2, 3, 4, 6]) if (!found.has(n)) faults.add('E2E_MALFORMED_MESSAGE', `field ${n} missing`);
  const message = bytesOf(found.get(4));
  const inner = message === undefined ? undefined : modelDecodeSignal(message);
  if (inner !== undefined && !inner.ok) faults.merge(inner);
  if (faults.any || inner === undefined || !inner.ok) return { ok: false, codes: faults.codes, reasons: faults.reasons };
  return {
    ok: true,
    value: {
      version: body[0]! >> 4,
      preKeyId: uint(found.get(1)),
      baseKey: bytesOf(found.get(2))!,
      identityKey: bytesOf(found.get(3))!,
      message: message!,
      registrationId: uint(found.get(5)) ?? 0,
      signedPreKeyId: uint(found.get(6))!,
      signalMessage: inner.value,
    },
  };
}

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
