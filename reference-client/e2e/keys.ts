// Curve25519 key pairs (PROTOCOL.md 8.1.2): generation with clamping, the 33-byte 0x05 serialisation, the public
// key checks [E2E-4] to [E2E-6], the base-key check [E2E-8], and DH with the all-zero check [E2E-7].
import { ed25519 } from '@noble/curves/ed25519.js';
import { assertBytes, bigIntToLe, bytesEqual, concatBytes, fromHex, isAllZero, leToBigInt } from './bytes.ts';
import {
  FIELD_PRIME,
  KEY_TYPE_DJB,
  LOW_ORDER_POINTS,
  PRIVATE_KEY_LENGTH,
  PUBLIC_KEY_LENGTH,
  SERIALIZED_PUBLIC_KEY_LENGTH,
} from './constants.ts';
import { E2eError } from './errors.ts';
import type { RandomSource } from './random.ts';
import { x25519, x25519Base } from './x25519.ts';

/** A key pair: the 32 clamped private bytes and the 33-byte serialised public key. */
export interface KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Byte 0 AND 0xF8; byte 31 AND 0x7F then OR 0x40 (8.1.2). Returns a copy. */
export function clampPrivateKey(bytes: Uint8Array): Uint8Array {
  assertBytes(bytes, 'privateKey', PRIVATE_KEY_LENGTH);
  const out = Uint8Array.from(bytes);
  out[0]! &= 0xf8;
  out[31]! &= 0x7f;
  out[31]! |= 0x40;
  return out;
}

/** 32 random bytes, clamped; public key X25519(k, 9). [E2E-2] */
export function generateKeyPair(random: RandomSource): KeyPair {
  if (typeof random !== 'function') throw new TypeError('random must be a RandomSource');
  return keyPairFromPrivateKey(random(PRIVATE_KEY_LENGTH));
}

/** Clamps the private key (as libsignal does on deserialisation) and derives its public key. */
export function keyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
  const clamped = clampPrivateKey(privateKey);
  return { privateKey: clamped, publicKey: serializePublicKey(x25519Base(clamped)) };
}

/** 0x05 ‖ u. [E2E-3] */
export function serializePublicKey(u: Uint8Array): Uint8Array {
  assertBytes(u, 'u', PUBLIC_KEY_LENGTH);
  return concatBytes(Uint8Array.of(KEY_TYPE_DJB), u);
}

const LOW_ORDER = LOW_ORDER_POINTS.map((hex) => fromHex(hex));

/** Why a serialised public key is unacceptable, or undefined when it passes [E2E-4] to [E2E-6]. */
export function publicKeyProblem(bytes: Uint8Array): string | undefined {
  // [E2E-4] exactly 33 bytes, first byte 0x05.
  if (bytes.length !== SERIALIZED_PUBLIC_KEY_LENGTH) return `length ${bytes.length}, expected 33`;
  if (bytes[0] !== KEY_TYPE_DJB) return 'key type byte is not 0x05';
  const u = bytes.subarray(1);
  // [E2E-5] bit 255 clear and LE(u) < p.
  if ((u[31]! & 0x80) !== 0) return 'bit 255 of u is set';
  if (leToBigInt(u) >= FIELD_PRIME) return 'u is not reduced modulo p';
  // [E2E-6] none of the low-order u-coordinates.
  for (const low of LOW_ORDER) if (bytesEqual(u, low)) return 'u is a low-order point';
  return undefined;
}

/** Asserts a serialised public key; E2E_INVALID_KEY when it fails [E2E-4] to [E2E-6]. Returns it. */
export function checkPublicKey(bytes: Uint8Array, name = 'public key'): Uint8Array {
  assertBytes(bytes, name);
  const problem = publicKeyProblem(bytes);
  if (problem !== undefined) throw new E2eError('E2E_INVALID_KEY', `${name}: ${problem}`);
  return bytes;
}

/**
 * [E2E-8] The base key, mapped to Edwards form y = (u − 1)/(u + 1) with sign bit 0, must decode to a point of
 * Ed25519 in the prime-order subgroup (l·P = identity). Points of the twist fail to decode.
 */
export function checkBaseKey(bytes: Uint8Array): Uint8Array {
  checkPublicKey(bytes, 'base key');
  let point;
  try {
    point = ed25519.Point.fromBytes(montgomeryToEdwardsY(bytes.subarray(1)));
  } catch {
    throw new E2eError('E2E_INVALID_KEY', 'base key is not on the curve');
  }
  if (!point.isTorsionFree()) throw new E2eError('E2E_INVALID_KEY', 'base key is not in the prime-order subgroup');
  return bytes;
}

/** DH(priv, pub) of 8.1.1: X25519 over bytes 1..32 of the serialised key, failing on an all-zero output [E2E-7]. */
export function agree(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  assertBytes(privateKey, 'privateKey', PRIVATE_KEY_LENGTH);
  checkPublicKey(publicKey);
  const out = x25519(privateKey, publicKey.subarray(1));
  if (out === undefined || isAllZero(out)) throw new E2eError('E2E_INVALID_AGREEMENT', 'X25519 output is all zero');
  return out;
}

/**
 * The Edwards y-coordinate y = (u − 1)/(u + 1) mod p of a u-coordinate, 32 bytes little-endian with bit 255 clear.
 * The caller has rejected u = p − 1 (where u + 1 = 0) or, as here after [E2E-6], cannot pass it.
 */
export function montgomeryToEdwardsY(u: Uint8Array): Uint8Array {
  const Fp = ed25519.Point.Fp;
  const value = leToBigInt(u) % FIELD_PRIME;
  return bigIntToLe(Fp.mul(Fp.sub(value, 1n), Fp.inv(Fp.add(value, 1n))), 32);
}

export function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = ((base % modulus) + modulus) % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}
