// XEdDSA as libsignal implements it (PROTOCOL.md 8.2; rust/core/src/curve/curve25519.rs `calculate_signature`,
// `verify_signature`): the Edwards sign bit of the signer's key travels in bit 7 of signature byte 63. Built on
// noble's Ed25519 point arithmetic and SHA-512. Signing uses constant-time scalar multiplication; verification is
// variable-time (it handles public data only).
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { assertBytes, bigIntToLe, concatBytes, constantTimeEqual, leToBigInt } from './bytes.ts';
import {
  FIELD_PRIME,
  GROUP_ORDER,
  PRIVATE_KEY_LENGTH,
  SIGNATURE_LENGTH,
  XEDDSA_HASH1_PREFIX,
  XEDDSA_RANDOM_LENGTH,
} from './constants.ts';
import { base64Url, cryptoBackend, nodeCrypto } from './backend.ts';
import { clampPrivateKey, checkPublicKey, montgomeryToEdwardsY } from './keys.ts';
import type { RandomSource } from './random.ts';

const Point = ed25519.Point;
const modL = (n: bigint): bigint => n % GROUP_ORDER;

/**
 * A = a·B is a public value that depends on the private key only, and an identity key signs many prekeys, so it is
 * cached per private-key buffer. The cache holds a copy of the clamped bytes and compares them (constant-time) on
 * every hit, so a buffer whose content changed is recomputed rather than trusted.
 */
const edwardsCache = new WeakMap<Uint8Array, { clamped: Uint8Array; aEnc: Uint8Array }>();

function edwardsPublicKey(buffer: Uint8Array, clamped: Uint8Array, a: bigint): Uint8Array {
  const hit = edwardsCache.get(buffer);
  if (hit !== undefined && constantTimeEqual(hit.clamped, clamped)) return hit.aEnc;
  const aEnc = Point.BASE.multiply(a).toBytes();
  edwardsCache.set(buffer, { clamped: Uint8Array.from(clamped), aEnc });
  return aEnc;
}

/** Signs `message` with the clamped private key and the 64 random bytes `z` (steps 1-8 of 8.2.1). [E2E-12] */
export function xeddsaSignWithRandom(privateKey: Uint8Array, message: Uint8Array, z: Uint8Array): Uint8Array {
  assertBytes(privateKey, 'privateKey', PRIVATE_KEY_LENGTH);
  assertBytes(message, 'message');
  assertBytes(z, 'z', XEDDSA_RANDOM_LENGTH);
  // Private keys are clamped on entry, as libsignal does; the nonce hashes these clamped bytes (8.1.2).
  const k = clampPrivateKey(privateKey);
  const a = modL(leToBigInt(k)); // 1. a = LE(k) mod l
  const aEnc = edwardsPublicKey(privateKey, k, a); // 2. A = a·B
  const signBit = aEnc[31]! & 0x80; // 3.
  const r = modL(leToBigInt(sha512(concatBytes(XEDDSA_HASH1_PREFIX, k, message, z)))); // 4.
  const rEnc = (r === 0n ? Point.ZERO : Point.BASE.multiply(r)).toBytes(); // 5. R = r·B
  const h = modL(leToBigInt(sha512(concatBytes(rEnc, aEnc, message)))); // 6.
  const s = modL(h * a + r); // 7.
  const signature = concatBytes(rEnc, bigIntToLe(s, 32));
  signature[63] = (signature[63]! & 0x7f) | signBit; // 8.
  k.fill(0); // the cache keeps its own copy
  return signature;
}

/** Signs with a fresh Z from `random`. [E2E-13] */
export function xeddsaSign(privateKey: Uint8Array, message: Uint8Array, random: RandomSource): Uint8Array {
  if (typeof random !== 'function') throw new TypeError('random must be a RandomSource');
  return xeddsaSignWithRandom(privateKey, message, random(XEDDSA_RANDOM_LENGTH));
}

export interface XeddsaVerifyOptions {
  /** Reject l ≤ S < 2^253, which libsignal reduces and accepts ([E2E-17] allows either). Default false. */
  rejectNonReducedS?: boolean;
}

/**
 * Verifies an XEdDSA signature by the steps of 8.2.2 [E2E-15]. `publicKey` is the 33-byte serialised key; a key that
 * fails [E2E-4] to [E2E-6] throws E2E_INVALID_KEY, a bad signature returns false.
 */
export function xeddsaVerify(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  options: XeddsaVerifyOptions = {},
): boolean {
  checkPublicKey(publicKey);
  assertBytes(message, 'message');
  assertBytes(signature, 'signature');
  if (signature.length !== SIGNATURE_LENGTH) return false; // 1.
  const signBit = signature[63]! >> 7; // 2. [E2E-16]
  const u = leToBigInt(publicKey.subarray(1));
  if (u === FIELD_PRIME - 1n) return false; // 3. the birational map is undefined at u = −1
  const aEnc = montgomeryToEdwardsY(publicKey.subarray(1)); // 4.
  aEnc[31]! |= signBit << 7;
  let A;
  try {
    A = Point.fromBytes(aEnc);
  } catch {
    return false;
  }
  const rEnc = signature.subarray(0, 32); // 5.
  const sBytes = Uint8Array.from(signature.subarray(32));
  sBytes[31]! &= 0x7f; // [E2E-16] clear the sign bit before reading S
  if ((sBytes[31]! & 0xe0) !== 0) return false; // LE(S) ≥ 2^253
  const sRaw = leToBigInt(sBytes);
  if (options.rejectNonReducedS === true && sRaw >= GROUP_ORDER) return false; // [E2E-17]
  if (sRaw < GROUP_ORDER && nodeCrypto !== undefined && cryptoBackend() === 'node') {
    // Fast path: steps 6 and 7 are exactly RFC 8032 Ed25519 verification of (Renc ‖ S) under Aenc, cofactorless
    // with a byte comparison in OpenSSL. OpenSSL refuses S ≥ l, so that case stays on the portable path below.
    try {
      const key = nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: base64Url(aEnc) }, format: 'jwk' });
      return nodeCrypto.verify(null, message, key, concatBytes(rEnc, sBytes));
    } catch {
      return false;
    }
  }
  const h = modL(leToBigInt(sha512(concatBytes(rEnc, aEnc, message)))); // 6.
  const check = Point.BASE.multiplyUnsafe(modL(sRaw)).add(A.negate().multiplyUnsafe(h)); // 7. cofactorless
  return constantTimeEqual(check.toBytes(), rEnc);
}
