// Mutations of valid envelopes, as plain JSON data so that a shrunk counterexample prints readably and can be stored
// in the regression corpus. Byte-level mutations (bit flips, truncation, extension, insertion, deletion, the version
// byte, the MAC) act on the body as sent; field-level ones parse the protobuf with codec-model.ts, edit the field
// list (values beyond uint32, invalid keys, missing, repeated, unknown, forbidden and mistyped fields, non-minimal
// varints, another order) and re-encode it. `inner` edits the SignalMessage inside a PreKeySignalMessage and wraps
// it again. The MAC is never recomputed: a mutation is the work of someone without the keys.
import fc from 'fast-check';
import { LOW_ORDER_POINTS, MAX_FORWARD_JUMPS } from '../../reference-client/e2e/index.ts';
import { cat, encodeField, encodeFields, encodeVarint, parseFields, type WireField } from './codec-model.ts';

export type KeyVariant =
  | `low-order-${0 | 1 | 2 | 3 | 4 | 5 | 6}`
  | 'bit-255'
  | 'p-plus-2'
  | 'type-byte'
  | 'short'
  | 'long'
  | 'twist'
  | 'torsion'
  | 'base-point';

export type FieldEdit =
  | { kind: 'set-uint'; field: number; value: string }
  | { kind: 'key'; field: number; variant: KeyVariant }
  | { kind: 'set-bytes'; field: number; bytes: string }
  | { kind: 'drop'; field: number }
  | { kind: 'repeat'; field: number }
  | { kind: 'unknown'; field: number; wireType: 0 | 1 | 2 | 5; bytes: string }
  | { kind: 'wire-type'; field: number; wireType: number }
  | { kind: 'non-minimal'; field: number; width: number }
  | { kind: 'rotate'; by: number }
  | { kind: 'raw-tail'; bytes: string };

export type Mutation =
  | { op: 'flip'; bit: number; inner?: boolean }
  | { op: 'truncate'; keep: number; inner?: boolean }
  | { op: 'extend'; bytes: string; inner?: boolean }
  | { op: 'insert'; at: number; bytes: string; inner?: boolean }
  | { op: 'delete'; at: number; count: number; inner?: boolean }
  | { op: 'set-byte'; at: number; value: number; inner?: boolean }
  | { op: 'version'; value: number; inner?: boolean }
  | { op: 'mac-flip'; bit: number }
  | { op: 'mac-truncate'; count: number }
  | { op: 'field'; edit: FieldEdit; inner?: boolean };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const MAC = 8;

/** Keys that fail [E2E-4] to [E2E-6] or, for a base key, [E2E-8] (the last two from spec/vectors/e2e/public-key.json). */
function keyBytes(variant: KeyVariant, original: Uint8Array): Uint8Array {
  if (variant.startsWith('low-order-')) return cat(Uint8Array.of(5), unhex(LOW_ORDER_POINTS[Number(variant.slice(10))]!));
  switch (variant) {
    case 'bit-255': {
      const k = Uint8Array.from(original);
      k[32]! |= 0x80;
      return k;
    }
    case 'p-plus-2':
      return unhex('05efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
    case 'type-byte':
      return cat(Uint8Array.of(6), original.subarray(1));
    case 'short':
      return original.subarray(1);
    case 'long':
      return cat(original, Uint8Array.of(0));
    case 'twist':
      return unhex('050200000000000000000000000000000000000000000000000000000000000000');
    case 'torsion':
      return unhex('053da8e774947065741fa2ac667994baf883772f2659e6ec33bbe6ca15198b6a0b');
    default:
      return unhex('050900000000000000000000000000000000000000000000000000000000000000'); // valid, but not the sender's
  }
}

function editFields(bytes: Uint8Array, edit: FieldEdit): Uint8Array {
  const parsed = parseFields(bytes);
  if (!parsed.ok) return bytes;
  const fields: WireField[] = parsed.fields;
  const at = fields.findIndex((f) => f.field === ('field' in edit ? edit.field : -1));
  const target = at < 0 ? undefined : fields[at]!;
  const replace = (f: WireField): Uint8Array => encodeFields(fields.map((g, i) => (i === at ? f : g)));
  switch (edit.kind) {
    case 'set-uint':
      return replace({ field: edit.field, wireType: 0, value: BigInt(edit.value) });
    case 'key':
      if (target === undefined || target.wireType !== 2) return bytes;
      return replace({ field: edit.field, wireType: 2, value: keyBytes(edit.variant, target.value) });
    case 'set-bytes':
      return replace({ field: edit.field, wireType: 2, value: unhex(edit.bytes) });
    case 'drop':
      return encodeFields(fields.filter((_, i) => i !== at));
    case 'repeat':
      return target === undefined ? bytes : encodeFields([...fields, target]);
    case 'unknown': {
      const value = edit.wireType === 0 ? undefined : unhex(edit.bytes);
      const f: WireField =
        edit.wireType === 0
          ? { field: edit.field, wireType: 0, value: BigInt('0x' + (edit.bytes || '0')) }
          : { field: edit.field, wireType: edit.wireType, value: edit.wireType === 2 ? value! : Uint8Array.from({ length: edit.wireType === 1 ? 8 : 4 }, (_, i) => value![i] ?? 0) };
      return encodeFields([...fields, f]);
    }
    case 'wire-type': {
      if (target === undefined) return bytes;
      // The original value bytes under a key that announces another wire type.
      const whole = encodeField(target);
      const oldKey = encodeVarint(BigInt(target.field) * 8n + BigInt(target.wireType));
      const chunk = cat(encodeVarint(BigInt(target.field) * 8n + BigInt(edit.wireType & 7)), whole.subarray(oldKey.length));
      return cat(...fields.map((g, i) => (i === at ? chunk : encodeField(g))));
    }
    case 'non-minimal':
      if (target === undefined || target.wireType !== 0) return bytes;
      return replace({ ...target, width: edit.width });
    case 'rotate':
      if (fields.length === 0) return bytes;
      return encodeFields(fields.map((_, i) => fields[(i + edit.by) % fields.length]!));
    case 'raw-tail':
      return cat(bytes, unhex(edit.bytes));
  }
}

function mutateBytes(body: Uint8Array, m: Exclude<Mutation, { op: 'field' | 'mac-flip' | 'mac-truncate' }>): Uint8Array {
  const n = body.length;
  switch (m.op) {
    case 'flip': {
      if (n === 0) return body;
      const out = Uint8Array.from(body);
      const bit = m.bit % (n * 8);
      out[bit >> 3]! ^= 1 << (bit & 7);
      return out;
    }
    case 'truncate':
      return body.slice(0, n === 0 ? 0 : m.keep % n);
    case 'extend':
      return cat(body, unhex(m.bytes));
    case 'insert': {
      const at = m.at % (n + 1);
      return cat(body.subarray(0, at), unhex(m.bytes), body.subarray(at));
    }
    case 'delete': {
      if (n === 0) return body;
      const at = m.at % n;
      return cat(body.subarray(0, at), body.subarray(Math.min(n, at + Math.max(1, m.count))));
    }
    case 'set-byte': {
      if (n === 0) return body;
      const out = Uint8Array.from(body);
      out[m.at % n] = m.value & 0xff;
      return out;
    }
    case 'version': {
      if (n === 0) return body;
      const out = Uint8Array.from(body);
      out[0] = m.value & 0xff;
      return out;
    }
  }
}

/** A SignalMessage body mutated: version ‖ protobuf ‖ mac, where field edits touch the protobuf only. */
function mutateSignal(body: Uint8Array, m: Mutation): Uint8Array {
  if (m.op === 'mac-flip' || m.op === 'mac-truncate') {
    if (body.length < MAC) return body;
    const out = Uint8Array.from(body);
    if (m.op === 'mac-truncate') return out.slice(0, body.length - 1 - ((m.count - 1) % MAC));
    const bit = m.bit % (MAC * 8);
    out[body.length - MAC + (bit >> 3)]! ^= 1 << (bit & 7);
    return out;
  }
  if (m.op === 'field') {
    if (body.length < 1 + MAC) return body;
    return cat(body.subarray(0, 1), editFields(body.subarray(1, body.length - MAC), m.edit), body.subarray(body.length - MAC));
  }
  return mutateBytes(body, m);
}

/** The inner SignalMessage (field 4) of a PreKeySignalMessage replaced by `edit(inner)`, the rest kept. */
function rewrapInner(body: Uint8Array, edit: (inner: Uint8Array) => Uint8Array): Uint8Array {
  const parsed = parseFields(body.subarray(1));
  if (!parsed.ok) return body;
  const fields = parsed.fields.map((f): WireField => (f.field === 4 && f.wireType === 2 ? { ...f, value: edit(f.value) } : f));
  return cat(body.subarray(0, 1), encodeFields(fields));
}

/** Applies `m` to an envelope body of type `type`. */
export function applyMutation(type: 'prekey' | 'ratchet', body: Uint8Array, m: Mutation): Uint8Array {
  if (type === 'ratchet') return mutateSignal(body, m);
  if (m.op === 'mac-flip' || m.op === 'mac-truncate' || m.inner === true) return rewrapInner(body, (inner) => mutateSignal(inner, m));
  if (m.op === 'field') return body.length === 0 ? body : cat(body.subarray(0, 1), editFields(body.subarray(1), m.edit));
  return mutateBytes(body, m);
}

export const describeMutation = (m: Mutation): string => JSON.stringify(m);

// ---- arbitraries ---------------------------------------------------------------------------------------------------

const smallBytes = (max: number) => fc.uint8Array({ minLength: 1, maxLength: max }).map(hex);

/**
 * uint32-ish values a field may be set to: small ones (cheap to process as counters), the forward-jump boundary, the
 * uint32 edge and values beyond it (which [E2E-43] rejects). Counters between 64 and MAX_FORWARD_JUMPS are left
 * out: each such counter costs the receiver one HMAC chain step per skipped index (see README).
 */
export const fieldValue = fc.oneof(
  fc.nat(63).map(String),
  fc.constantFrom(MAX_FORWARD_JUMPS + 1, MAX_FORWARD_JUMPS + 64, 0x7fff_ffff, 0xffff_ffff).map(String),
  fc.constantFrom(2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n).map(String),
);

const keyVariant = fc.constantFrom<KeyVariant>(
  'low-order-0', 'low-order-1', 'low-order-2', 'low-order-3', 'low-order-4', 'low-order-5', 'low-order-6',
  'bit-255', 'p-plus-2', 'type-byte', 'short', 'long', 'twist', 'torsion', 'base-point',
);

/** Interesting raw protobuf tails: field 0, group wire types, a length past the end, truncated and over-long varints. */
const rawTail = fc.oneof(
  fc.constantFrom('00', '0b', '0c', '0e', '0f', '0a7f', '80', 'ffffffffffffffffffff01', '10ffffffffffffffffff02', '0d0102', '09010203'),
  smallBytes(12),
);

const fieldNumber = fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constantFrom(15, 16, 2047, 0x1fff_ffff));

export const fieldEdit: fc.Arbitrary<FieldEdit> = fc.oneof(
  fc.record({ kind: fc.constant('set-uint' as const), field: fieldNumber, value: fieldValue }),
  fc.record({ kind: fc.constant('key' as const), field: fc.integer({ min: 1, max: 3 }), variant: keyVariant }),
  fc.record({ kind: fc.constant('set-bytes' as const), field: fc.integer({ min: 1, max: 4 }), bytes: fc.oneof(fc.constant(''), smallBytes(48)) }),
  fc.record({ kind: fc.constant('drop' as const), field: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('repeat' as const), field: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('unknown' as const), field: fc.oneof(fieldNumber, fc.constantFrom(7, 8)), wireType: fc.constantFrom(0 as const, 1 as const, 2 as const, 5 as const), bytes: smallBytes(10) }),
  fc.record({ kind: fc.constant('wire-type' as const), field: fc.integer({ min: 1, max: 6 }), wireType: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('non-minimal' as const), field: fc.integer({ min: 1, max: 6 }), width: fc.integer({ min: 2, max: 11 }) }),
  fc.record({ kind: fc.constant('rotate' as const), by: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant('raw-tail' as const), bytes: rawTail }),
);

const inner = fc.option(fc.constant(true), { nil: undefined, freq: 2 });

/** Any mutation; positions are taken modulo the body length when applied. */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), bit: fc.nat(4095), inner }, { requiredKeys: ['op', 'bit'] }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), keep: fc.nat(511), inner }, { requiredKeys: ['op', 'keep'] }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('extend' as const), bytes: smallBytes(16), inner }, { requiredKeys: ['op', 'bytes'] }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(511), bytes: smallBytes(8), inner }, { requiredKeys: ['op', 'at', 'bytes'] }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(511), count: fc.integer({ min: 1, max: 8 }), inner }, { requiredKeys: ['op', 'at', 'count'] }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('set-byte' as const), at: fc.nat(511), value: fc.nat(255), inner }, { requiredKeys: ['op', 'at', 'value'] }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('version' as const), value: fc.nat(255), inner }, { requiredKeys: ['op', 'value'] }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('mac-flip' as const), bit: fc.nat(63) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('mac-truncate' as const), count: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('field' as const), edit: fieldEdit, inner }, { requiredKeys: ['op', 'edit'] }) },
);
