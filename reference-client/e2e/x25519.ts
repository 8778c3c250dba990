// X25519 (RFC 7748 §5) behind two interchangeable backends: noble (portable, pure JavaScript, the reference) and
// node:crypto (OpenSSL, used for speed where present). A test checks both give identical bytes. Both clamp the scalar
// and ignore bit 255 of u; both refuse an all-zero output, which callers map to E2E_INVALID_AGREEMENT [E2E-7].
import { x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { assertBytes, constantTimeEqual } from './bytes.ts';
import { base64Url, cryptoBackend, nodeCrypto, type NodeCrypto } from './backend.ts';
import { AGREEMENT_LENGTH, PRIVATE_KEY_LENGTH, PUBLIC_KEY_LENGTH } from './constants.ts';

export interface X25519Backend {
  readonly name: 'noble' | 'node';
  /** X25519(k, u); returns undefined when the result is all zero (or the backend refuses to produce it). */
  scalarMult(scalar: Uint8Array, u: Uint8Array): Uint8Array | undefined;
  /** X25519(k, 9). */
  scalarMultBase(scalar: Uint8Array): Uint8Array;
}

export const nobleBackend: X25519Backend = {
  name: 'noble',
  scalarMult(scalar, u) {
    try {
      return nobleX25519.scalarMult(scalar, u);
    } catch {
      return undefined; // noble refuses an all-zero result
    }
  },
  scalarMultBase: (scalar) => nobleX25519.scalarMultBase(scalar),
};

function makeNodeBackend(crypto: NodeCrypto): X25519Backend | undefined {
  const b64 = base64Url;
  const nine = new Uint8Array(32);
  nine[0] = 9;
  const nineB64 = b64(nine);
  let base: import('node:crypto').KeyObject;
  try {
    base = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: nineB64 }, format: 'jwk' });
  } catch {
    return undefined; // an OpenSSL without X25519
  }
  // Importing a private key as JWK with a placeholder `x` skips OpenSSL's public-key computation (the slow part of
  // a PKCS#8 import); X25519 derivation uses `d` only. The backend-equality test guards this assumption.
  // Identity and signed prekeys take part in several agreements: their KeyObjects are cached per buffer, with a copy
  // of the bytes compared on every hit so a reused buffer with new content is never served a stale key.
  const cache = new WeakMap<Uint8Array, { copy: Uint8Array; key: import('node:crypto').KeyObject }>();
  const privateKey = (scalar: Uint8Array) => {
    const hit = cache.get(scalar);
    if (hit !== undefined && constantTimeEqual(hit.copy, scalar)) return hit.key;
    const key = crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(scalar), x: nineB64 }, format: 'jwk' });
    cache.set(scalar, { copy: Uint8Array.from(scalar), key });
    return key;
  };
  const derive = (scalar: Uint8Array, publicKey: import('node:crypto').KeyObject): Uint8Array | undefined => {
    try {
      const out = crypto.diffieHellman({ privateKey: privateKey(scalar), publicKey });
      return new Uint8Array(out.buffer, out.byteOffset, out.length);
    } catch {
      return undefined; // OpenSSL refuses an all-zero result ("failed during derivation")
    }
  };
  return {
    name: 'node',
    scalarMult(scalar, u) {
      const masked = Uint8Array.from(u);
      masked[31]! &= 0x7f; // RFC 7748: ignore bit 255 (OpenSSL does too; explicit for clarity)
      return derive(scalar, crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(masked) }, format: 'jwk' }));
    },
    scalarMultBase(scalar) {
      const out = derive(scalar, base);
      if (out === undefined) throw new RangeError('X25519 base multiplication failed');
      return out;
    },
  };
}

export const nodeBackend: X25519Backend | undefined = nodeCrypto ? makeNodeBackend(nodeCrypto) : undefined;

/** The backend in force (see backend.ts). */
export function x25519Backend(): X25519Backend {
  return cryptoBackend() === 'node' && nodeBackend ? nodeBackend : nobleBackend;
}

/** X25519(k, u) or undefined for an all-zero output; `scalar` is clamped by the function itself. */
export function x25519(scalar: Uint8Array, u: Uint8Array): Uint8Array | undefined {
  assertBytes(scalar, 'scalar', PRIVATE_KEY_LENGTH);
  assertBytes(u, 'u', PUBLIC_KEY_LENGTH);
  const out = x25519Backend().scalarMult(scalar, u);
  if (out !== undefined && out.length !== AGREEMENT_LENGTH) throw new RangeError('X25519 backend returned a bad length');
  return out;
}

export function x25519Base(scalar: Uint8Array): Uint8Array {
  assertBytes(scalar, 'scalar', PRIVATE_KEY_LENGTH);
  return x25519Backend().scalarMultBase(scalar);
}
