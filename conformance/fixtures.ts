// Seeded test material for cases: well-formed keys (TRN-14: 33 bytes starting with 0x05; E2E-5: bit 255 clear),
// signed prekeys whose XEdDSA signatures verify (a server MAY check them, IDN-10), secrets, message IDs and envelope
// bodies. Each case gets its own generator derived from the run seed and the case
// ID, so a case draws the same values whatever else runs concurrently. Usernames are the one exception: they carry a
// random per-run tag, so that re-running with the same seed against the same server does not hit USERNAME_TAKEN.
import { randomBytes } from 'node:crypto';
import { keyPairFromPrivateKey, xeddsaSignWithRandom } from '../reference-client/e2e/index.ts';
import type { DeviceRegistration, SignedPreKey } from '../spec/index.ts';

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
  /** Private identity keys by their base64 public key, so that later signed prekeys verify under the same identity. */
  private readonly identities = new Map<string, Uint8Array>();

  constructor(readonly rng: Rng) {}

  /**
   * base64 of 33 bytes: 0x05 then a random u-coordinate with bit 255 clear (E2E-5), a well-formed Curve25519 public
   * key encoding. Not derived from a private key: the server cannot tell, and deriving costs a scalar multiplication.
   */
  publicKey(): string {
    const u = this.rng.bytes(32);
    u[31]! &= 0x7f;
    return Buffer.concat([Buffer.from([0x05]), u]).toString('base64');
  }

  /** base64 of 64 random bytes: the right size for a signature that does not verify. */
  signature(): string {
    return this.rng.bytes(64).toString('base64');
  }

  /** A fresh identity key pair; returns the base64 public key and remembers the private one for `signedPreKey`. */
  identityKey(): string {
    const pair = keyPairFromPrivateKey(new Uint8Array(this.rng.bytes(32)));
    const publicKey = Buffer.from(pair.publicKey).toString('base64');
    this.identities.set(publicKey, pair.privateKey);
    return publicKey;
  }

  /** A signed prekey whose XEdDSA signature by `identityKey` (one made by this Material) verifies (section 3.1). */
  signedPreKey(identityKey: string, keyId: number): SignedPreKey {
    const privateKey = this.identities.get(identityKey);
    if (!privateKey) throw new RangeError('signedPreKey needs an identity key made by this Material');
    const publicKey = this.publicKey();
    const signature = xeddsaSignWithRandom(privateKey, Buffer.from(publicKey, 'base64'), new Uint8Array(this.rng.bytes(64)));
    return { keyId, publicKey, signature: Buffer.from(signature).toString('base64') };
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

  /** A DeviceRegistration with a real identity key, a signed prekey that verifies, and `prekeys` one-time prekeys. */
  deviceRegistration(name = 'conformance', prekeys = 0): DeviceRegistration {
    const identityKey = this.identityKey();
    return {
      name,
      secret: this.secret(),
      registrationId: this.rng.int(1, 16380),
      identityKey,
      signedPreKey: this.signedPreKey(identityKey, 1),
      ...(prekeys > 0 ? { oneTimePreKeys: Array.from({ length: prekeys }, (_, i) => ({ keyId: i + 1, publicKey: this.publicKey() })) } : {}),
    };
  }
}
