// Used by bench/crypto.ts (baseline) and test/reference-client/e2e/libsignal-interop.test.ts (oracle).
// Loads @signalapp/libsignal-client (a native module) when it is installed and loadable, and gives it in-memory
// stores, so tests and the benchmark can use the real libsignal as an oracle and a baseline. `loadLibsignal()`
// returns undefined when the package cannot load; callers then skip with a visible message.

import type { PreKeyRecord, PrivateKey, ProtocolAddress, PublicKey, SessionRecord, SignedPreKeyRecord } from '@signalapp/libsignal-client';

export type Libsignal = typeof import('@signalapp/libsignal-client');

export async function loadLibsignal(): Promise<{ lib?: Libsignal; reason?: string }> {
  try {
    const lib = (await import('@signalapp/libsignal-client')) as Libsignal;
    lib.PrivateKey.generate(); // proves the native binary loads
    return { lib };
  } catch (error) {
    return { reason: `@signalapp/libsignal-client cannot load: ${(error as Error).message.split('\n')[0]}` };
  }
}

/** A libsignal device: identity, registrationId and in-memory stores (the interfaces of libsignal's TypeScript API). */
export function makeLibsignalDevice(lib: Libsignal, registrationId: number) {
  const identity = lib.IdentityKeyPair.generate();
  const sessions = new Map<string, SessionRecord>();
  const identities = new Map<string, PublicKey>();
  const preKeys = new Map<number, PreKeyRecord>();
  const signedPreKeys = new Map<number, SignedPreKeyRecord>();
  class Sessions extends lib.SessionStore {
    async saveSession(name: ProtocolAddress, record: SessionRecord) {
      sessions.set(name.toString(), record);
    }
    async getSession(name: ProtocolAddress) {
      return sessions.get(name.toString()) ?? null;
    }
    async getExistingSessions(addresses: Array<ProtocolAddress>) {
      return addresses.map((a) => sessions.get(a.toString())!);
    }
  }
  class Identities extends lib.IdentityKeyStore {
    async getIdentityKey() {
      return identity.privateKey;
    }
    async getLocalRegistrationId() {
      return registrationId;
    }
    async saveIdentity(name: ProtocolAddress, key: PublicKey) {
      const old = identities.get(name.toString());
      identities.set(name.toString(), key);
      return old && old.compare(key) !== 0 ? lib.IdentityChange.ReplacedExisting : lib.IdentityChange.NewOrUnchanged;
    }
    async isTrustedIdentity(name: ProtocolAddress, key: PublicKey) {
      const old = identities.get(name.toString());
      return old === undefined || old.compare(key) === 0;
    }
    async getIdentity(name: ProtocolAddress) {
      return identities.get(name.toString()) ?? null;
    }
  }
  class PreKeys extends lib.PreKeyStore {
    async savePreKey(id: number, record: PreKeyRecord) {
      preKeys.set(id, record);
    }
    async getPreKey(id: number) {
      const r = preKeys.get(id);
      if (!r) throw new Error(`no prekey ${id}`);
      return r;
    }
    async removePreKey(id: number) {
      preKeys.delete(id);
    }
  }
  class SignedPreKeys extends lib.SignedPreKeyStore {
    async saveSignedPreKey(id: number, record: SignedPreKeyRecord) {
      signedPreKeys.set(id, record);
    }
    async getSignedPreKey(id: number) {
      const r = signedPreKeys.get(id);
      if (!r) throw new Error(`no signed prekey ${id}`);
      return r;
    }
  }
  class KyberPreKeys extends lib.KyberPreKeyStore {
    async saveKyberPreKey(): Promise<void> {
      throw new Error('Tickwire uses no Kyber prekeys');
    }
    async getKyberPreKey(): Promise<never> {
      throw new Error('Tickwire uses no Kyber prekeys');
    }
    async markKyberPreKeyUsed(): Promise<void> {}
  }
  const stores = { sessions: new Sessions(), identities: new Identities(), preKeys: new PreKeys(), signedPreKeys: new SignedPreKeys(), kyber: new KyberPreKeys() };

  /** A v3 bundle (no Kyber) with a fresh signed prekey and, optionally, a one-time prekey. */
  function makeBundle(signedPreKeyId: number, preKeyId?: number) {
    const signed = lib.PrivateKey.generate();
    const signature = identity.privateKey.sign(signed.getPublicKey().serialize());
    signedPreKeys.set(signedPreKeyId, lib.SignedPreKeyRecord.new(signedPreKeyId, Date.now(), signed.getPublicKey(), signed, signature));
    let oneTime: PrivateKey | undefined;
    if (preKeyId !== undefined) {
      oneTime = lib.PrivateKey.generate();
      preKeys.set(preKeyId, lib.PreKeyRecord.new(preKeyId, oneTime.getPublicKey(), oneTime));
    }
    return {
      registrationId,
      signedPreKeyId,
      signedPreKey: signed.getPublicKey(),
      signature,
      preKeyId,
      preKey: oneTime?.getPublicKey(),
      identityKey: identity.publicKey,
    };
  }

  async function encrypt(address: ProtocolAddress, plaintext: Uint8Array) {
    const message = await lib.signalEncrypt(Buffer.from(plaintext), address, stores.sessions, stores.identities);
    return { type: message.type() === lib.CiphertextMessageType.PreKey ? ('prekey' as const) : ('ratchet' as const), body: new Uint8Array(message.serialize()) };
  }

  async function decrypt(address: ProtocolAddress, envelope: { type: 'prekey' | 'ratchet'; body: Uint8Array }) {
    const body = Buffer.from(envelope.body);
    const out =
      envelope.type === 'prekey'
        ? await lib.signalDecryptPreKey(lib.PreKeySignalMessage.deserialize(body), address, stores.sessions, stores.identities, stores.preKeys, stores.signedPreKeys, stores.kyber)
        : await lib.signalDecrypt(lib.SignalMessage.deserialize(body), address, stores.sessions, stores.identities);
    return new Uint8Array(out);
  }

  return { identity, registrationId, stores, makeBundle, encrypt, decrypt };
}
