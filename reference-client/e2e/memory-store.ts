// An in-memory ProtocolStore for tests, benchmarks and the interop harness. Records are immutable values, so storing
// one is a reference assignment.
import { assertUint } from './bytes.ts';
import { PREKEY_ID_MAX, REGISTRATION_ID_MAX, REGISTRATION_ID_MIN } from './constants.ts';
import { generateKeyPair, type KeyPair } from './keys.ts';
import type { RandomSource } from './random.ts';
import type { SessionRecord } from './session.ts';
import type { ProtocolStore } from './session-cipher.ts';
import type { PreKeyBundle } from './x3dh.ts';
import { xeddsaSign } from './xeddsa.ts';

export class InMemoryProtocolStore implements ProtocolStore {
  readonly sessions = new Map<string, SessionRecord>();
  readonly identities = new Map<string, Uint8Array>();
  readonly signedPreKeys = new Map<number, { keyPair: KeyPair; signature: Uint8Array }>();
  readonly preKeys = new Map<number, KeyPair>();

  constructor(
    private readonly identity: KeyPair,
    private readonly registrationId: number,
  ) {
    assertUint(registrationId, 'registrationId', REGISTRATION_ID_MIN, REGISTRATION_ID_MAX);
  }

  /** A device with a fresh identity key and registrationId drawn from `random` [E2E-1], [E2E-9]. */
  static create(random: RandomSource): InMemoryProtocolStore {
    const identity = generateKeyPair(random);
    // Uniform over 1..16380 by rejection sampling: 16 random bits modulo 16380 would favour the first 16 values.
    const span = REGISTRATION_ID_MAX - REGISTRATION_ID_MIN + 1;
    const limit = Math.floor(65536 / span) * span;
    let value: number;
    do {
      const r = random(2);
      value = (r[0]! << 8) | r[1]!;
    } while (value >= limit);
    const registrationId = REGISTRATION_ID_MIN + (value % span);
    return new InMemoryProtocolStore(identity, registrationId);
  }

  identityKeyPair(): KeyPair {
    return this.identity;
  }
  localRegistrationId(): number {
    return this.registrationId;
  }
  loadSession(address: string): SessionRecord | undefined {
    return this.sessions.get(address);
  }
  storeSession(address: string, record: SessionRecord): void {
    this.sessions.set(address, record);
  }
  recordedIdentity(address: string): Uint8Array | undefined {
    return this.identities.get(address);
  }
  saveIdentity(address: string, identityKey: Uint8Array): void {
    this.identities.set(address, identityKey);
  }
  signedPreKey(id: number): KeyPair | undefined {
    return this.signedPreKeys.get(id)?.keyPair;
  }
  preKey(id: number): KeyPair | undefined {
    return this.preKeys.get(id);
  }
  removePreKey(id: number): void {
    this.preKeys.delete(id);
  }

  /** Generates a signed prekey (and a one-time prekey when `preKeyId` is given) and returns the bundle entry. */
  makeBundle(random: RandomSource, signedPreKeyId: number, preKeyId?: number): PreKeyBundle {
    assertUint(signedPreKeyId, 'signedPreKeyId', 0, PREKEY_ID_MAX);
    const signed = generateKeyPair(random);
    const signature = xeddsaSign(this.identity.privateKey, signed.publicKey, random); // [E2E-14]
    this.signedPreKeys.set(signedPreKeyId, { keyPair: signed, signature });
    const bundle: PreKeyBundle = {
      registrationId: this.registrationId,
      identityKey: this.identity.publicKey,
      signedPreKeyId,
      signedPreKey: signed.publicKey,
      signedPreKeySignature: signature,
    };
    if (preKeyId !== undefined) {
      assertUint(preKeyId, 'preKeyId', 0, PREKEY_ID_MAX);
      const oneTime = generateKeyPair(random);
      this.preKeys.set(preKeyId, oneTime);
      bundle.preKeyId = preKeyId;
      bundle.preKey = oneTime.publicKey;
    }
    return bundle;
  }
}
