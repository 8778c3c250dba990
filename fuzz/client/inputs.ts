// Arbitrary envelope bodies for the decoder properties: raw bytes; bodies built from field lists that are mostly
// shaped like SignalMessages and PreKeySignalMessages (so that decoding gets past the first byte) with wrong types,
// bad keys, odd varints, unknown and forbidden fields mixed in; and valid messages with exactly one fault. Keys come from a small pool of valid
// keys plus the invalid kinds of mutations.ts. Counter-like values stay small or beyond MAX_FORWARD_JUMPS, so that a
// body that reaches a real session costs little HMAC work.
import fc from 'fast-check';
import * as e2e from '../../reference-client/e2e/index.ts';
import { cat, encodeFields, type WireField } from './codec-model.ts';
import { applyMutation, fieldValue, mutation } from './mutations.ts';

const random = e2e.seededRandom('tickwire-fuzz-client/inputs');
/** Three valid public keys and the base point (valid by [E2E-4] to [E2E-6], but on no one's key ring). */
export const VALID_KEYS: readonly Uint8Array[] = [
  ...Array.from({ length: 3 }, () => e2e.generateKeyPair(random).publicKey),
  Uint8Array.from(Buffer.from('050900000000000000000000000000000000000000000000000000000000000000', 'hex')),
];

const INVALID_KEYS: readonly Uint8Array[] = [
  ...e2e.LOW_ORDER_POINTS.map((u) => Uint8Array.from(Buffer.from('05' + u, 'hex'))),
  Uint8Array.from(Buffer.from('05efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex')), // p + 2
  Uint8Array.from(Buffer.from('050200000000000000000000000000000000000000000000000000000000000000', 'hex')), // twist (base key only)
  VALID_KEYS[0]!.subarray(1), // 32 bytes
  cat(VALID_KEYS[0]!, Uint8Array.of(0)), // 34 bytes
  cat(Uint8Array.of(6), VALID_KEYS[0]!.subarray(1)), // type byte
  cat(VALID_KEYS[0]!.subarray(0, 32), Uint8Array.of(VALID_KEYS[0]![32]! | 0x80)), // bit 255
];

export const keyBytes = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...VALID_KEYS) },
  { weight: 2, arbitrary: fc.constantFrom(...INVALID_KEYS) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 31, maxLength: 35 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((u) => cat(Uint8Array.of(5), u)) },
);

const varint = fieldValue.map(BigInt);
const width = fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined, freq: 4 });
const ciphertext = fc.oneof(
  fc.integer({ min: 1, max: 4 }).chain((blocks) => fc.uint8Array({ minLength: 16 * blocks, maxLength: 16 * blocks })),
  fc.uint8Array({ maxLength: 40 }),
);

const fieldNumber = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 9 }) }, { weight: 1, arbitrary: fc.constantFrom(16, 2047, 0x1fff_ffff) });

/** Any field at all. */
export const anyField: fc.Arbitrary<WireField> = fc.oneof(
  fc.record({ field: fieldNumber, wireType: fc.constant(0 as const), value: varint, width }),
  fc.record({ field: fieldNumber, wireType: fc.constant(2 as const), value: fc.oneof(keyBytes, fc.uint8Array({ maxLength: 40 })) }),
  fc.record({ field: fieldNumber, wireType: fc.constant(1 as const), value: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
  fc.record({ field: fieldNumber, wireType: fc.constant(5 as const), value: fc.uint8Array({ minLength: 4, maxLength: 4 }) }),
);

/** A shaped uint32 field: mostly a small value, sometimes any of fieldValue (beyond uint32 included). */
const shapedVarint = fc.oneof({ weight: 8, arbitrary: fc.nat(63).map(BigInt) }, { weight: 1, arbitrary: varint });
const uintField = (field: number) => fc.record({ field: fc.constant(field), wireType: fc.constant(0 as const), value: shapedVarint, width });
const bytesField = (field: number, value: fc.Arbitrary<Uint8Array>) => fc.record({ field: fc.constant(field), wireType: fc.constant(2 as const), value });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 8 });

/** Shaped fields (each kept with probability 7/8), up to two extra fields, in a rotated order. */
function shaped(parts: Array<fc.Arbitrary<WireField>>): fc.Arbitrary<WireField[]> {
  return fc
    .tuple(fc.tuple(...parts.map(maybe)), fc.array(anyField, { maxLength: 2 }), fc.nat(7))
    .map(([base, extra, rotate]) => {
      const fields = [...base.filter((f): f is WireField => f !== undefined), ...extra];
      return fields.map((_, i) => fields[(i + rotate) % fields.length]!);
    });
}

const versionByte = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0x33, 0x34, 0x30, 0x3f) }, { weight: 1, arbitrary: fc.nat(255) });
const tail = fc.oneof({ weight: 6, arbitrary: fc.constant(new Uint8Array(0)) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }) });

/** Mostly a full 8-byte MAC; a shorter one makes the last 8 bytes cut into the protobuf. */
const mac = fc.oneof({ weight: 6, arbitrary: fc.uint8Array({ minLength: 8, maxLength: 8 }) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 7 }) });

/** version ‖ protobuf ‖ 8-byte MAC, mostly SignalMessage-shaped. */
export const signalBody: fc.Arbitrary<Uint8Array> = fc
  .tuple(versionByte, shaped([bytesField(1, keyBytes), uintField(2), uintField(3), bytesField(4, ciphertext)]), mac, tail)
  .map(([version, fields, mac, extra]) => cat(Uint8Array.of(version), encodeFields(fields), mac, extra));

/** version ‖ protobuf, mostly PreKeySignalMessage-shaped, with a SignalMessage-shaped field 4. */
export const preKeyBody: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    versionByte,
    shaped([uintField(1), bytesField(2, keyBytes), bytesField(3, keyBytes), bytesField(4, signalBody), uintField(5), uintField(6)]),
    tail,
  )
  .map(([version, fields, extra]) => cat(Uint8Array.of(version), encodeFields(fields), extra));

const small = fc.nat(63).map(BigInt);
const version3 = fc.constantFrom(0x33, 0x34);
const validKey = fc.constantFrom(...VALID_KEYS);
const u = (field: number, value: bigint): WireField => ({ field, wireType: 0, value });
const b = (field: number, value: Uint8Array): WireField => ({ field, wireType: 2, value });

/** A SignalMessage that decodes (8.5.2), with any MAC. */
export const validSignalBody: fc.Arbitrary<Uint8Array> = fc
  .tuple(version3, validKey, small, small, ciphertext, fc.uint8Array({ minLength: 8, maxLength: 8 }))
  .map(([v, key, counter, previous, ct, mac]) => cat(Uint8Array.of(v), encodeFields([b(1, key), u(2, counter), u(3, previous), b(4, ct)]), mac));

/** A PreKeySignalMessage that decodes (8.5.3), with or without preKeyId. */
export const validPreKeyBody: fc.Arbitrary<Uint8Array> = fc
  .tuple(version3, fc.option(small, { nil: undefined }), validKey, validKey, validSignalBody, small, small)
  .map(([v, preKeyId, base, identity, message, registrationId, signedPreKeyId]) =>
    cat(Uint8Array.of(v), encodeFields([...(preKeyId === undefined ? [] : [u(1, preKeyId)]), b(2, base), b(3, identity), b(4, message), u(5, registrationId), u(6, signedPreKeyId)])),
  );

/** Valid messages with exactly one fault (or none): one mutation, or one more field of any kind. */
export const nearlyValidBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(validSignalBody, mutation).map(([body, m]) => applyMutation('ratchet', body, m)),
  fc.tuple(validPreKeyBody, mutation).map(([body, m]) => applyMutation('prekey', body, m)),
  fc.tuple(validPreKeyBody, anyField).map(([body, f]) => cat(body, encodeFields([f]))),
);

/** Bytes of every kind: raw, shaped like either message, one fault away from valid, and short edge cases. */
export const anyBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 160 }) },
  { weight: 2, arbitrary: signalBody },
  { weight: 2, arbitrary: preKeyBody },
  { weight: 3, arbitrary: nearlyValidBody },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 3 }) },
);
