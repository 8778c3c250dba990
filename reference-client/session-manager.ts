// The bridge between the E2E layer and the state directory: a ProtocolStore whose every write goes to disk before it
// returns [E2E-64], the record of peer identities (trust on first use) and known peer devices, bundle fetching and
// checking [PKY-19] [E2E-67] [E2E-68], and a decryption that commits only when the caller says so, so that the
// plaintext can be made durable first and a crash never leaves a message both unreadable and unprocessed.
import { join } from 'node:path';
import type { Address, PreKeyBundleDevice, PreKeyBundleResponse } from '../spec/index.ts';
import {
  bytesEqual,
  checkPreKeyBundle,
  decodePreKeySignalMessage,
  decryptWithRecord,
  deserializeSessionRecord,
  E2eError,
  ENVELOPE_TYPE_PREKEY,
  fromHex,
  hasUsableSendingChain,
  processPreKeyBundle,
  serializeSessionRecord,
  SessionCipher,
  toHex,
  type E2eEnvelope,
  type KeyPair,
  type LocalKeys,
  type PreKeyBundle,
  type ProtocolStore,
  type RandomSource,
  type SessionRecord,
} from './e2e/index.ts';
import { ClientError } from './errors.ts';
import { httpFailure } from './prekeys.ts';
import type { PreKeyStore } from './prekeys.ts';
import { readJson, removeFileDurably, writeJsonAtomic } from './state/atomic-file.ts';
import type { StateDir } from './state/state-dir.ts';
import type { Credentials } from './wire/connection.ts';
import type { HttpApi } from './wire/http.ts';

/** The E2E layer's address string of a peer device. A userId never contains a dot [AUT-6]. */
export const addressOf = (a: Address): string => `${a.userId}.${a.deviceId}`;

/** peers.json: the identity key first seen for each peer device [E2E-70], and the devices known per user. */
export class PeerStore {
  readonly identities = new Map<string, Uint8Array>();
  readonly devices = new Map<string, Set<number>>();

  constructor(private readonly file: string) {}

  static load(file: string): PeerStore {
    const store = new PeerStore(file);
    const value = readJson(file) as { identities?: Record<string, string>; devices?: Record<string, number[]> } | undefined;
    for (const [address, hex] of Object.entries(value?.identities ?? {})) store.identities.set(address, fromHex(hex, 'identity'));
    for (const [userId, ids] of Object.entries(value?.devices ?? {})) store.devices.set(userId, new Set(ids));
    return store;
  }

  save(): void {
    writeJsonAtomic(this.file, {
      identities: Object.fromEntries([...this.identities].map(([a, k]) => [a, toHex(k)])),
      devices: Object.fromEntries([...this.devices].map(([u, s]) => [u, [...s].sort((x, y) => x - y)])),
    });
  }

  addDevice(address: Address): void {
    let set = this.devices.get(address.userId);
    if (set === undefined) this.devices.set(address.userId, (set = new Set()));
    if (set.has(address.deviceId)) return;
    set.add(address.deviceId);
    this.save();
  }

  removeDevice(address: Address): void {
    if (this.devices.get(address.userId)?.delete(address.deviceId)) this.save();
  }
}

/** A ProtocolStore over the state directory; session records are cached and written through. */
export class DiskProtocolStore implements ProtocolStore {
  private readonly sessions = new Map<string, SessionRecord | null>();

  constructor(
    private readonly dir: StateDir,
    private readonly identity: KeyPair,
    private readonly registrationId: number,
    readonly preKeys: PreKeyStore,
    readonly peers: PeerStore,
  ) {}

  private sessionFile(address: string): string {
    return join(this.dir.sessionsDir, `${address}.json`);
  }

  identityKeyPair(): KeyPair {
    return this.identity;
  }
  localRegistrationId(): number {
    return this.registrationId;
  }
  loadSession(address: string): SessionRecord | undefined {
    if (!this.sessions.has(address)) {
      const value = readJson(this.sessionFile(address));
      this.sessions.set(address, value === undefined ? null : deserializeSessionRecord(value));
    }
    return this.sessions.get(address) ?? undefined;
  }
  storeSession(address: string, record: SessionRecord): void {
    writeJsonAtomic(this.sessionFile(address), serializeSessionRecord(record));
    this.sessions.set(address, record);
  }
  deleteSession(address: string): void {
    removeFileDurably(this.sessionFile(address));
    this.sessions.set(address, null);
  }
  recordedIdentity(address: string): Uint8Array | undefined {
    return this.peers.identities.get(address);
  }
  saveIdentity(address: string, identityKey: Uint8Array): void {
    const known = this.peers.identities.get(address);
    if (known !== undefined && bytesEqual(known, identityKey)) return;
    this.peers.identities.set(address, identityKey);
    this.peers.save();
  }
  signedPreKey(id: number): KeyPair | undefined {
    return this.preKeys.signedPreKey(id);
  }
  preKey(id: number): KeyPair | undefined {
    return this.preKeys.preKey(id);
  }
  removePreKey(id: number): void {
    this.preKeys.removePreKey(id);
  }
}

/** A decryption whose effects (session, identity, prekey deletion, known device) wait for `commit`. */
export interface PendingDecryption {
  plaintext: Uint8Array;
  commit(): void;
}

const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

/** A wire bundle entry in the E2E layer's form. */
export function bundleFromWire(entry: PreKeyBundleDevice): PreKeyBundle {
  const bundle: PreKeyBundle = {
    registrationId: entry.registrationId,
    identityKey: b64(entry.identityKey),
    signedPreKeyId: entry.signedPreKey.keyId,
    signedPreKey: b64(entry.signedPreKey.publicKey),
    signedPreKeySignature: b64(entry.signedPreKey.signature),
  };
  if (entry.oneTimePreKey !== undefined) {
    bundle.preKeyId = entry.oneTimePreKey.keyId;
    bundle.preKey = b64(entry.oneTimePreKey.publicKey);
  }
  return bundle;
}

export class SessionManager {
  constructor(
    readonly store: DiskProtocolStore,
    private readonly http: HttpApi,
    private readonly credentials: Credentials,
    private readonly random: RandomSource,
    private readonly now: () => number,
  ) {}

  knownDevices(userId: string): number[] {
    return [...(this.store.peers.devices.get(userId) ?? [])].sort((a, b) => a - b);
  }

  hasUsableSession(address: Address): boolean {
    return hasUsableSendingChain(this.store.loadSession(addressOf(address)), this.now()); // [E2E-55]
  }

  /** GET /v1/users/{userId}/keys, for one device or (deviceId undefined) all of them [PKY-11] [PKY-13]. */
  async fetchBundles(userId: string, deviceId?: number): Promise<PreKeyBundleDevice[]> {
    const answer = await this.http.call<PreKeyBundleResponse>('getPreKeyBundle', {
      credentials: this.credentials,
      params: { userId },
      ...(deviceId === undefined ? {} : { query: { deviceId } }),
    });
    if (answer.status !== 200 || answer.issues.length > 0) throw httpFailure('getPreKeyBundle', answer.status, answer.body);
    return answer.body.devices;
  }

  /**
   * Checks a bundle entry (keys [E2E-68], signature [E2E-67], recorded identity [E2E-71]) and sets up a new current
   * session from it. Throws ClientError BAD_BUNDLE or UNTRUSTED_IDENTITY, and then stores nothing.
   */
  establish(userId: string, entry: PreKeyBundleDevice): void {
    const address: Address = { userId, deviceId: entry.deviceId };
    let bundle: PreKeyBundle;
    try {
      bundle = bundleFromWire(entry);
      checkPreKeyBundle(bundle);
    } catch (error) {
      throw new ClientError('BAD_BUNDLE', `bundle of ${addressOf(address)} rejected: ${(error as Error).message}`);
    }
    try {
      processPreKeyBundle(this.store, addressOf(address), bundle, { random: this.random, now: this.now });
    } catch (error) {
      if (error instanceof E2eError && error.code === 'E2E_UNTRUSTED_IDENTITY') {
        throw new ClientError('UNTRUSTED_IDENTITY', `identity key of ${addressOf(address)} changed`);
      }
      throw new ClientError('BAD_BUNDLE', `bundle of ${addressOf(address)} rejected: ${(error as Error).message}`);
    }
    this.store.peers.addDevice(address);
  }

  /**
   * Makes sure every device of `userId` we know has a usable session. For a user we know no device of (first
   * contact), fetches the bundles of all its devices. Returns the device ids to encrypt for.
   */
  async ensureSessions(userId: string): Promise<number[]> {
    let devices = this.knownDevices(userId);
    if (devices.length === 0) {
      const entries = await this.fetchBundles(userId);
      // [E2E-69] check every entry before using any, so one bad entry stops the whole message.
      for (const entry of entries) this.establish(userId, entry);
      devices = this.knownDevices(userId);
    }
    for (const deviceId of devices) {
      if (!this.hasUsableSession({ userId, deviceId })) await this.establishOne(userId, deviceId);
    }
    return devices;
  }

  /** Fetches one device's bundle and sets up a session with it [MSG-22] [E2E-78]. */
  async establishOne(userId: string, deviceId: number): Promise<void> {
    const [entry] = await this.fetchBundles(userId, deviceId);
    if (entry === undefined || entry.deviceId !== deviceId) throw new ClientError('BAD_BUNDLE', `no bundle for ${userId}.${deviceId}`);
    this.establish(userId, entry);
  }

  /** [E2E-78] A device the server says is gone: delete its session and stop addressing it. */
  forget(address: Address): void {
    this.store.deleteSession(addressOf(address));
    this.store.peers.removeDevice(address);
  }

  /** Encrypts for one device with its current session [E2E-53]; the new record is on disk when this returns. */
  encrypt(address: Address, plaintext: Uint8Array): E2eEnvelope {
    return new SessionCipher(this.store, addressOf(address), { random: this.random, now: this.now }).encrypt(plaintext);
  }

  /**
   * Decrypts on a copy of the record [E2E-61]; nothing is stored until `commit`. The record and identity are chosen
   * by the server-set `from` [E2E-74]. Throws E2eError (E2E_UNTRUSTED_IDENTITY for a changed identity [E2E-71]).
   */
  decrypt(from: Address, envelope: E2eEnvelope): PendingDecryption {
    const store = this.store;
    const address = addressOf(from);
    const checkTrust = (identityKey: Uint8Array): void => {
      const recorded = store.recordedIdentity(address);
      if (recorded !== undefined && !bytesEqual(recorded, identityKey)) {
        throw new E2eError('E2E_UNTRUSTED_IDENTITY', `identity key of ${address} changed`);
      }
    };
    if (envelope.type === ENVELOPE_TYPE_PREKEY) {
      let identityKey: Uint8Array | undefined;
      try {
        identityKey = decodePreKeySignalMessage(envelope.body).identityKey;
      } catch {
        identityKey = undefined; // decryptWithRecord reports the decoding error
      }
      if (identityKey !== undefined) checkTrust(identityKey);
    }
    const local: LocalKeys = {
      identityKeyPair: store.identityKeyPair(),
      registrationId: store.localRegistrationId(),
      signedPreKey: (id) => store.signedPreKey(id),
      preKey: (id) => store.preKey(id),
    };
    const result = decryptWithRecord(store.loadSession(address), envelope, local, this.random);
    checkTrust(result.remoteIdentityKey);
    return {
      plaintext: result.plaintext,
      commit: () => {
        store.storeSession(address, result.record);
        store.saveIdentity(address, result.remoteIdentityKey);
        if (result.usedPreKeyId !== undefined) store.removePreKey(result.usedPreKeyId); // [E2E-58]
        store.peers.addDevice(from);
      },
    };
  }
}
