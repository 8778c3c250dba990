// Seeded test material for cases: well-formed fake keys (TRN-14: 33 bytes starting with 0x05, 64-byte signatures),
// secrets, message IDs and envelope bodies. Each case gets its own generator derived from the run seed and the case
// ID, so a case draws the same values whatever else runs concurrently. Usernames are the one exception: they carry a
// random per-run tag, so that re-running with the same seed against the same server does not hit USERNAME_TAKEN.
import { randomBytes } from 'node:crypto';
import type { DeviceRegistration } from '../spec/index.ts';

/** mulberry32: small, fast, seedable; not for secrets in production, enough for test material. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

/** FNV-1a of a string, to derive a per-case seed from the run seed and the case ID. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function caseSeed(runSeed: number, caseId: string): number {
  return (fnv1a(caseId) ^ runSeed) >>> 0;
}

/** A fresh random run seed (printed with every report so that a run can be replayed with --seed). */
export function randomSeed(): number {
  return randomBytes(4).readUInt32BE(0);
}

/** Eight lower-case hex characters, unique per process run; part of every username. */
export const RUN_TAG = randomBytes(4).toString('hex');
let usernameCounter = 0;

/** A username matching ^[a-z0-9_]{3,32}$, unique across runs. */
export function freshUsername(prefix = 'c'): string {
  return `${prefix}${RUN_TAG}_${(++usernameCounter).toString(36)}`.slice(0, 32);
}

export class Material {
  constructor(readonly rng: Rng) {}

  /** base64 of 33 bytes: 0x05 then 32 random bytes (a well-formed Curve25519 public key encoding). */
  publicKey(): string {
    return Buffer.concat([Buffer.from([0x05]), this.rng.bytes(32)]).toString('base64');
  }

  /** base64 of 64 random bytes (the server may not verify signatures, IDN-10; the reference does not). */
  signature(): string {
    return this.rng.bytes(64).toString('base64');
  }

  /** 32 bytes as base64url without padding: 43 characters (AUT-1). */
  secret(): string {
    return this.rng.bytes(32).toString('base64url');
  }

  /** A messageId matching ^[A-Za-z0-9_-]{8,64}$. */
  messageId(): string {
    return `m-${this.rng.bytes(10).toString('hex')}`;
  }

  /** A base64 envelope body of `bytes` bytes. */
  body(bytes = 32): string {
    return this.rng.bytes(bytes).toString('base64');
  }

  /** A DeviceRegistration with fake but well-formed keys and `prekeys` one-time prekeys (keyIds 1..n). */
  deviceRegistration(name = 'conformance', prekeys = 0): DeviceRegistration {
    return {
      name,
      secret: this.secret(),
      registrationId: this.rng.int(1, 16380),
      identityKey: this.publicKey(),
      signedPreKey: { keyId: 1, publicKey: this.publicKey(), signature: this.signature() },
      ...(prekeys > 0 ? { oneTimePreKeys: Array.from({ length: prekeys }, (_, i) => ({ keyId: i + 1, publicKey: this.publicKey() })) } : {}),
    };
  }
}
