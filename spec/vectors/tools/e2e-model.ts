// An independent, deliberately minimal model of PROTOCOL.md section 8 used only to generate vectors. It shares no
// code with reference-client/e2e (spec/ depends on nothing of ours), so the vectors check that implementation
// against a second reading of the spec. It builds on noble primitives directly and handles honest inputs only.
import { cbc } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';

export const L = 2n ** 252n + 27742317777372353535851937790883648493n;
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
export const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const le = (b: Uint8Array): bigint => BigInt('0x' + (hex(Uint8Array.from(b).reverse()) || '0'));
const toLe = (n: bigint): Uint8Array => unhex(n.toString(16).padStart(64, '0')).reverse();

export function clamp(k: Uint8Array): Uint8Array {
  const c = Uint8Array.from(k);
  c[0]! &= 248;
  c[31]! &= 127;
  c[31]! |= 64;
  return c;
}

export interface Pair {
  priv: Uint8Array;
  pub: Uint8Array;
}

export const pairOf = (priv: Uint8Array): Pair => ({ priv: clamp(priv), pub: cat(Uint8Array.of(5), x25519.getPublicKey(clamp(priv))) });
/** A private key derived from a label: clamp(SHA-256(label)). */
export const seededPair = (label: string): Pair => pairOf(sha256(ascii(`tickwire-e2e-vectors/${label}`)));
export const dh = (priv: Uint8Array, pub33: Uint8Array): Uint8Array => x25519.scalarMult(priv, pub33.subarray(1));

export function xeddsaSign(priv: Uint8Array, msg: Uint8Array, z: Uint8Array): Uint8Array {
  const k = clamp(priv);
  const a = le(k) % L;
  const A = ed25519.Point.BASE.multiply(a).toBytes();
  const prefix = cat(Uint8Array.of(0xfe), new Uint8Array(31).fill(0xff));
  const r = le(sha512(cat(prefix, k, msg, z))) % L;
  const R = ed25519.Point.BASE.multiply(r).toBytes();
  const h = le(sha512(cat(R, A, msg))) % L;
  const sig = cat(R, toLe((h * a + r) % L));
  sig[63] = (sig[63]! & 0x7f) | (A[31]! & 0x80);
  return sig;
}

export const x3dhKeys = (dhs: Uint8Array[]) => {
  const okm = hkdf(sha256, cat(new Uint8Array(32).fill(0xff), ...dhs), new Uint8Array(32), ascii('WhisperText'), 64);
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32) };
};
export const rootStep = (rk: Uint8Array, dhOut: Uint8Array) => {
  const okm = hkdf(sha256, dhOut, rk, ascii('WhisperRatchet'), 64);
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32) };
};
export const seedOf = (ck: Uint8Array): Uint8Array => hmac(sha256, ck, Uint8Array.of(1));
export const nextCk = (ck: Uint8Array): Uint8Array => hmac(sha256, ck, Uint8Array.of(2));
export const messageKeys = (seed: Uint8Array) => {
  const okm = hkdf(sha256, seed, new Uint8Array(32), ascii('WhisperMessageKeys'), 80);
  return { cipherKey: okm.slice(0, 32), macKey: okm.slice(32, 64), iv: okm.slice(64) };
};
export const aesEncrypt = (key: Uint8Array, iv: Uint8Array, pt: Uint8Array): Uint8Array => cbc(key, iv).encrypt(pt);
export const aesDecrypt = (key: Uint8Array, iv: Uint8Array, ct: Uint8Array): Uint8Array => cbc(key, iv).decrypt(ct);

export const varint = (n: number): Uint8Array => {
  const out: number[] = [];
  let v = n;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Uint8Array.from(out);
};
export const fieldBytes = (n: number, b: Uint8Array): Uint8Array => cat(varint((n << 3) | 2), varint(b.length), b);
export const fieldUint = (n: number, v: number): Uint8Array => cat(varint(n << 3), varint(v));

export function signalMessage(
  ratchetKey: Uint8Array, counter: number, previousCounter: number, ciphertext: Uint8Array,
  macKey: Uint8Array, sender: Uint8Array, receiver: Uint8Array,
): Uint8Array {
  const body = cat(Uint8Array.of(0x33), fieldBytes(1, ratchetKey), fieldUint(2, counter), fieldUint(3, previousCounter), fieldBytes(4, ciphertext));
  return cat(body, hmac(sha256, macKey, cat(sender, receiver, body)).slice(0, 8));
}

export function preKeySignalMessage(f: { preKeyId?: number | undefined; baseKey: Uint8Array; identityKey: Uint8Array; message: Uint8Array; registrationId: number; signedPreKeyId: number }): Uint8Array {
  return cat(
    Uint8Array.of(0x33),
    f.preKeyId === undefined ? new Uint8Array(0) : fieldUint(1, f.preKeyId),
    fieldBytes(2, f.baseKey), fieldBytes(3, f.identityKey), fieldBytes(4, f.message),
    fieldUint(5, f.registrationId), fieldUint(6, f.signedPreKeyId),
  );
}
