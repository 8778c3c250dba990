// The subset of the protobuf (proto2) wire format that PROTOCOL.md 8.5 needs, written by hand: varints, keys,
// uint32 and bytes fields. The writer emits fields in the order given, with minimal varints [E2E-38]. The reader is
// strict per 8.5.4: [E2E-43] malformed encodings, [E2E-44] repeated known fields, [E2E-47] unknown fields skipped.
import { E2eError } from './errors.ts';
import { MAX_UINT32, MAX_VARINT_BYTES } from './constants.ts';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_FIXED32 = 5;

export type KnownWireType = typeof WIRE_VARINT | typeof WIRE_BYTES;

export function varintLength(value: number): number {
  let length = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    length++;
  }
  return length;
}

/** Writes a minimal varint of a uint32 at `offset`; returns the new offset. */
export function writeVarint(out: Uint8Array, offset: number, value: number): number {
  let v = value >>> 0;
  let at = offset;
  while (v >= 0x80) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at++] = v;
  return at;
}

export type FieldValue = { kind: 'uint32'; value: number } | { kind: 'bytes'; value: Uint8Array };

/** A protobuf message writer for uint32 and bytes fields, in the order they are added. */
export class ProtoWriter {
  private readonly parts: Array<{ field: number; value: FieldValue }> = [];

  uint32(field: number, value: number): this {
    this.parts.push({ field, value: { kind: 'uint32', value } });
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.parts.push({ field, value: { kind: 'bytes', value } });
    return this;
  }

  /** The encoding, after `prefix` bytes reserved at the front (for the version byte). */
  finish(prefix = 0, suffix = 0): Uint8Array {
    let length = prefix + suffix;
    for (const { field, value } of this.parts) {
      length += varintLength(field << 3);
      length += value.kind === 'uint32' ? varintLength(value.value) : varintLength(value.value.length) + value.value.length;
    }
    const out = new Uint8Array(length);
    let at = prefix;
    for (const { field, value } of this.parts) {
      if (value.kind === 'uint32') {
        at = writeVarint(out, at, (field << 3) | WIRE_VARINT);
        at = writeVarint(out, at, value.value);
      } else {
        at = writeVarint(out, at, (field << 3) | WIRE_BYTES);
        at = writeVarint(out, at, value.value.length);
        out.set(value.value, at);
        at += value.value.length;
      }
    }
    return out;
  }
}

const malformed = (message: string): E2eError => new E2eError('E2E_MALFORMED_MESSAGE', message);

/** Reads a varint at `offset`: its value (exact up to 2^53, an upper bound beyond) and the offset after it. */
function readVarint(bytes: Uint8Array, offset: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    const at = offset + i;
    if (at >= bytes.length) throw malformed('truncated varint');
    const byte = bytes[at]!;
    // The tenth byte carries bit 63 only; anything more does not fit in 64 bits.
    if (i === MAX_VARINT_BYTES - 1 && byte > 1) throw malformed('varint overflows 64 bits');
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return { value, next: at + 1 };
  }
  throw malformed('varint longer than 10 bytes');
}

/**
 * Decodes `bytes` as a protobuf message with the given known fields (number → wire type). Returns the values of the
 * known fields present; fields in `forbidden` reject the message; other fields are skipped when their wire type is
 * 0, 1, 2 or 5.
 */
export function readMessage(
  bytes: Uint8Array,
  known: ReadonlyMap<number, KnownWireType>,
  forbidden: ReadonlySet<number> = new Set(),
): Map<number, FieldValue> {
  const fields = new Map<number, FieldValue>();
  let at = 0;
  while (at < bytes.length) {
    const key = readVarint(bytes, at);
    at = key.next;
    const wireType = key.value % 8;
    const field = Math.floor(key.value / 8);
    if (field === 0) throw malformed('field number 0');
    if (field > 0x1fff_ffff) throw malformed('field number out of range');
    if (wireType === 3 || wireType === 4 || wireType === 6 || wireType === 7) throw malformed(`wire type ${wireType}`);
    if (forbidden.has(field)) throw malformed(`field ${field} is not allowed`);
    const expected = known.get(field);
    if (expected !== undefined && expected !== wireType) throw malformed(`field ${field} has wire type ${wireType}`);
    if (expected !== undefined && fields.has(field)) throw malformed(`field ${field} is repeated`); // [E2E-44]
    if (wireType === WIRE_VARINT) {
      const value = readVarint(bytes, at);
      at = value.next;
      if (expected !== undefined) {
        if (value.value > MAX_UINT32) throw malformed(`field ${field} exceeds uint32`);
        fields.set(field, { kind: 'uint32', value: value.value });
      }
    } else if (wireType === WIRE_BYTES) {
      const length = readVarint(bytes, at);
      at = length.next;
      if (length.value > bytes.length - at) throw malformed(`field ${field} runs past the end`);
      if (expected !== undefined) fields.set(field, { kind: 'bytes', value: bytes.slice(at, at + length.value) });
      at += length.value;
    } else {
      const width = wireType === WIRE_FIXED64 ? 8 : 4;
      if (width > bytes.length - at) throw malformed(`field ${field} runs past the end`);
      at += width;
    }
  }
  return fields;
}
