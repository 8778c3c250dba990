// Two real parties for the client fuzzer: Alice and Bob, each an InMemoryProtocolStore behind a SessionCipher, with
// seeded randomness and a settable clock, so every run replays from its seed. Bundles are built from the store's
// own keys (a signed prekey is reused until rotated, one-time prekeys get fresh ids), and `snapshot` serialises
// everything a failed decryption must leave alone [E2E-62]: the session record, the prekeys, the recorded identity.
import * as e2e from '../../reference-client/e2e/index.ts';

export type Who = 'alice' | 'bob';
export const WHO: readonly Who[] = ['alice', 'bob'];
export const other = (who: Who): Who => (who === 'alice' ? 'bob' : 'alice');

/** The clock starts here; only relative time matters ([E2E-55]). */
export const EPOCH_MS = 1_700_000_000_000;

interface PartyKeys {
  /** The signed prekey id a new bundle names; rotation moves it on, older ones stay until deleted. */
  signedPreKeyId: number;
  nextPreKeyId: number;
}

export class Conversation {
  readonly clock = { now: EPOCH_MS };
  readonly stores: Record<Who, e2e.InMemoryProtocolStore>;
  readonly ciphers: Record<Who, e2e.SessionCipher>;
  private readonly keys: Record<Who, PartyKeys>;

  private constructor(
    readonly random: e2e.RandomSource,
    stores: Record<Who, e2e.InMemoryProtocolStore>,
    keys: Record<Who, PartyKeys>,
  ) {
    this.stores = stores;
    this.keys = keys;
    const options = { random, now: () => this.clock.now };
    this.ciphers = { alice: new e2e.SessionCipher(stores.alice, 'bob', options), bob: new e2e.SessionCipher(stores.bob, 'alice', options) };
  }

  /** Two fresh devices with one signed prekey each (id 1) and no session. */
  static create(seed: string): Conversation {
    const random = e2e.seededRandom(`tickwire-fuzz-client/${seed}`);
    const stores = { alice: e2e.InMemoryProtocolStore.create(random), bob: e2e.InMemoryProtocolStore.create(random) };
    const conversation = new Conversation(random, stores, { alice: { signedPreKeyId: 0, nextPreKeyId: 100 }, bob: { signedPreKeyId: 0, nextPreKeyId: 100 } });
    conversation.rotateSignedPreKey('alice', false);
    conversation.rotateSignedPreKey('bob', false);
    return conversation;
  }

  /** An independent copy sharing the (immutable) records and key pairs, for trying inputs against one fixture. */
  clone(seed: string): Conversation {
    const copy = (from: e2e.InMemoryProtocolStore): e2e.InMemoryProtocolStore => {
      const store = new e2e.InMemoryProtocolStore(from.identityKeyPair(), from.localRegistrationId());
      for (const [k, v] of from.sessions) store.sessions.set(k, v);
      for (const [k, v] of from.identities) store.identities.set(k, v);
      for (const [k, v] of from.signedPreKeys) store.signedPreKeys.set(k, v);
      for (const [k, v] of from.preKeys) store.preKeys.set(k, v);
      return store;
    };
    const conversation = new Conversation(
      e2e.seededRandom(`tickwire-fuzz-client/${seed}`),
      { alice: copy(this.stores.alice), bob: copy(this.stores.bob) },
      { alice: { ...this.keys.alice }, bob: { ...this.keys.bob } },
    );
    conversation.clock.now = this.clock.now;
    return conversation;
  }

  /** A new signed prekey becomes the one bundles name; with `dropOld`, every older one is deleted. */
  rotateSignedPreKey(who: Who, dropOld: boolean): number {
    const store = this.stores[who];
    if (dropOld) store.signedPreKeys.clear();
    const id = ++this.keys[who].signedPreKeyId;
    const keyPair = e2e.generateKeyPair(this.random);
    store.signedPreKeys.set(id, { keyPair, signature: e2e.xeddsaSign(store.identityKeyPair().privateKey, keyPair.publicKey, this.random) });
    return id;
  }

  signedPreKeyIds(who: Who): number[] {
    return [...this.stores[who].signedPreKeys.keys()];
  }

  /** `who`'s bundle entry (section 3.3), with a fresh one-time prekey when `oneTime`. */
  bundle(who: Who, oneTime: boolean): e2e.PreKeyBundle {
    const store = this.stores[who];
    const signedPreKeyId = this.keys[who].signedPreKeyId;
    const signed = store.signedPreKeys.get(signedPreKeyId)!;
    const bundle: e2e.PreKeyBundle = {
      registrationId: store.localRegistrationId(),
      identityKey: store.identityKeyPair().publicKey,
      signedPreKeyId,
      signedPreKey: signed.keyPair.publicKey,
      signedPreKeySignature: signed.signature,
    };
    if (oneTime) {
      const preKeyId = this.keys[who].nextPreKeyId++;
      const keyPair = e2e.generateKeyPair(this.random);
      store.preKeys.set(preKeyId, keyPair);
      bundle.preKeyId = preKeyId;
      bundle.preKey = keyPair.publicKey;
    }
    return bundle;
  }

  /** `initiator` fetches its peer's bundle and sets up a new session (8.3.1); returns the new session's base key. */
  startSession(initiator: Who, oneTime: boolean): { baseKey: Uint8Array; bundle: e2e.PreKeyBundle } {
    const bundle = this.bundle(other(initiator), oneTime);
    e2e.processPreKeyBundle(this.stores[initiator], other(initiator), bundle, { random: this.random, now: () => this.clock.now });
    const state = this.stores[initiator].loadSession(other(initiator))!.current!;
    return { baseKey: state.aliceBaseKey, bundle };
  }

  record(who: Who): e2e.SessionRecord | undefined {
    return this.stores[who].loadSession(other(who));
  }

  /** Everything of `who` that a failed decryption must leave exactly as it was [E2E-62]. */
  snapshot(who: Who): string {
    const store = this.stores[who];
    const record = store.loadSession(other(who));
    const identity = store.recordedIdentity(other(who));
    return JSON.stringify({
      record: record === undefined ? null : e2e.serializeSessionRecord(record),
      preKeys: [...store.preKeys.keys()].sort((a, b) => a - b),
      signedPreKeys: [...store.signedPreKeys.keys()].sort((a, b) => a - b),
      identity: identity === undefined ? null : e2e.toHex(identity),
    });
  }
}

/** The E2E error code of a call, or the returned value; anything other than an E2eError is rethrown. */
export function attempt<T>(fn: () => T): { ok: true; value: T } | { ok: false; code: e2e.E2eErrorCode } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    if (error instanceof e2e.E2eError) return { ok: false, code: error.code };
    throw error;
  }
}
