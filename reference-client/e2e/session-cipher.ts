// Encrypting to and decrypting from one peer device (PROTOCOL.md 8.4.3, 8.6, 8.7; libsignal
// rust/protocol/src/session_cipher.rs and session.rs). Two layers:
//  - pure functions over a SessionRecord (`encryptWithRecord`, `decryptWithRecord`) that return the new record and
//    never modify their input;
//  - `SessionCipher`, which loads from a ProtocolStore, checks identities, and commits the record, the identity and
//    the prekey deletion only after the message has authenticated and decrypted [E2E-61], [E2E-62].
import { assertBytes, bytesEqual } from './bytes.ts';
import { ENVELOPE_TYPE_PREKEY, ENVELOPE_TYPE_RATCHET, MAX_UNACKNOWLEDGED_SESSION_AGE_MS } from './constants.ts';
import {
  decodePreKeySignalMessage,
  decodeSignalMessage,
  encodePreKeySignalMessage,
  type DecodedSignalMessage,
} from './envelope.ts';
import { E2eError } from './errors.ts';
import type { KeyPair } from './keys.ts';
import type { RandomSource } from './random.ts';
import { ratchetDecrypt, ratchetEncrypt, type SessionState } from './ratchet.ts';
import { emptyRecord, findStateByBaseKey, promoteArchivedState, promoteState, type SessionRecord } from './session.ts';
import { initializeInitiatorSession, initializeResponderSession, type PreKeyBundle } from './x3dh.ts';

export type EnvelopeType = typeof ENVELOPE_TYPE_PREKEY | typeof ENVELOPE_TYPE_RATCHET;

/** The `{ type, body }` of an envelope (8.5.5); `body` is the raw bytes (the messaging layer base64-encodes). */
export interface E2eEnvelope {
  type: EnvelopeType;
  body: Uint8Array;
}

/** What the responder needs of its own keys. */
export interface LocalKeys {
  identityKeyPair: KeyPair;
  registrationId: number;
  signedPreKey(id: number): KeyPair | undefined;
  preKey(id: number): KeyPair | undefined;
}

/** Encrypts with the current state (8.4.3) [E2E-53], wrapping it in a PreKeySignalMessage while pending [E2E-54]. */
export function encryptWithRecord(
  record: SessionRecord | undefined,
  plaintext: Uint8Array,
  now: number,
): { record: SessionRecord; envelope: E2eEnvelope } {
  assertBytes(plaintext, 'plaintext');
  const state = record?.current;
  if (record === undefined || state === undefined) throw new E2eError('E2E_NO_SESSION', 'no session to encrypt with');
  const pending = state.pendingPreKey;
  if (pending !== undefined && pending.createdAt + MAX_UNACKNOWLEDGED_SESSION_AGE_MS < now) {
    throw new E2eError('E2E_STALE_SESSION', 'unacknowledged session is older than 30 days'); // [E2E-55]
  }
  const result = ratchetEncrypt(state, plaintext);
  const next: SessionRecord = { current: result.state, archived: record.archived };
  if (pending === undefined) return { record: next, envelope: { type: ENVELOPE_TYPE_RATCHET, body: result.message } };
  const body = encodePreKeySignalMessage({
    preKeyId: pending.preKeyId,
    baseKey: pending.baseKey,
    identityKey: state.localIdentityKey,
    message: result.message,
    registrationId: state.localRegistrationId,
    signedPreKeyId: pending.signedPreKeyId,
  });
  return { record: next, envelope: { type: ENVELOPE_TYPE_PREKEY, body } };
}

/** 8.6 "Processing a SignalMessage": current, then archived newest first; a duplicate ends the search. [E2E-60] */
function decryptSignal(record: SessionRecord, message: DecodedSignalMessage, random: RandomSource) {
  let firstError: unknown;
  const states: Array<{ index: number; state: SessionState }> = [];
  if (record.current !== undefined) states.push({ index: -1, state: record.current });
  record.archived.forEach((state, index) => states.push({ index, state }));
  if (states.length === 0) throw new E2eError('E2E_NO_SESSION', 'no session state for this peer');
  for (const { index, state } of states) {
    try {
      const result = ratchetDecrypt(state, message, random);
      const next = index < 0 ? { current: result.state, archived: record.archived } : promoteArchivedState(record, index, result.state);
      return { record: next, plaintext: result.plaintext, state: result.state };
    } catch (error) {
      if (error instanceof E2eError && error.code === 'E2E_DUPLICATE_MESSAGE') throw error;
      firstError ??= error;
    }
  }
  throw firstError;
}

export interface DecryptResult {
  record: SessionRecord;
  plaintext: Uint8Array;
  /** The sender's identity key as the session knows it. */
  remoteIdentityKey: Uint8Array;
  /** The one-time prekey the message consumed, to delete after committing [E2E-58]. */
  usedPreKeyId?: number | undefined;
}

/**
 * Decrypts an envelope body against `record` (undefined when none is stored). Returns the new record; the caller
 * commits it. Nothing passed in is modified.
 */
export function decryptWithRecord(
  record: SessionRecord | undefined,
  envelope: E2eEnvelope,
  local: LocalKeys,
  random: RandomSource,
): DecryptResult {
  if (typeof envelope !== 'object' || envelope === null) throw new TypeError('envelope must be an object');
  assertBytes(envelope.body, 'envelope.body');
  if (envelope.type === ENVELOPE_TYPE_RATCHET) {
    const message = decodeSignalMessage(envelope.body); // [E2E-50]
    if (record === undefined) throw new E2eError('E2E_NO_SESSION', 'no session for this peer');
    const result = decryptSignal(record, message, random);
    return { record: result.record, plaintext: result.plaintext, remoteIdentityKey: result.state.remoteIdentityKey };
  }
  if (envelope.type !== ENVELOPE_TYPE_PREKEY) throw new TypeError(`unknown envelope type ${String(envelope.type)}`);
  const message = decodePreKeySignalMessage(envelope.body);
  let working = record ?? emptyRecord();
  let usedPreKeyId: number | undefined;
  const existing = findStateByBaseKey(working, message.baseKey);
  if (existing !== undefined) {
    // [E2E-56] a later message of a session already set up: continue it, no X3DH.
    if (existing.index >= 0) working = promoteArchivedState(working, existing.index, existing.state);
  } else {
    const signedPreKeyPair = local.signedPreKey(message.signedPreKeyId); // [E2E-57]
    if (signedPreKeyPair === undefined) throw new E2eError('E2E_UNKNOWN_PREKEY', `no signed prekey ${message.signedPreKeyId}`);
    let oneTimePreKeyPair: KeyPair | undefined;
    if (message.preKeyId !== undefined) {
      oneTimePreKeyPair = local.preKey(message.preKeyId);
      if (oneTimePreKeyPair === undefined) throw new E2eError('E2E_UNKNOWN_PREKEY', `no one-time prekey ${message.preKeyId}`);
      usedPreKeyId = message.preKeyId;
    }
    const state = initializeResponderSession({
      identityKeyPair: local.identityKeyPair,
      registrationId: local.registrationId,
      signedPreKeyPair,
      oneTimePreKeyPair,
      theirIdentityKey: message.identityKey,
      theirBaseKey: message.baseKey,
      theirRegistrationId: message.registrationId,
    });
    working = promoteState(working, state);
  }
  // [E2E-59] the embedded message is decrypted with the selected or new state only.
  const current = working.current!;
  const result = ratchetDecrypt(current, message.signalMessage, random);
  return {
    record: { current: result.state, archived: working.archived },
    plaintext: result.plaintext,
    remoteIdentityKey: message.identityKey,
    usedPreKeyId,
  };
}

/** Storage the SessionCipher needs. Implementations may persist; every method is synchronous. */
export interface ProtocolStore {
  identityKeyPair(): KeyPair;
  localRegistrationId(): number;
  loadSession(address: string): SessionRecord | undefined;
  storeSession(address: string, record: SessionRecord): void;
  /** The identity key recorded for `address` [E2E-70], or undefined. */
  recordedIdentity(address: string): Uint8Array | undefined;
  saveIdentity(address: string, identityKey: Uint8Array): void;
  signedPreKey(id: number): KeyPair | undefined;
  preKey(id: number): KeyPair | undefined;
  removePreKey(id: number): void;
}

export interface CipherOptions {
  random: RandomSource;
  /** Clock in milliseconds since the epoch; defaults to Date.now. */
  now?: () => number;
}

function checkTrust(store: ProtocolStore, address: string, identityKey: Uint8Array): void {
  const recorded = store.recordedIdentity(address);
  if (recorded !== undefined && !bytesEqual(recorded, identityKey)) {
    throw new E2eError('E2E_UNTRUSTED_IDENTITY', `identity key of ${address} changed`); // [E2E-71]
  }
}

/** Sets up a new session from a bundle entry (8.3.1, 8.7) and stores it as the current state. */
export function processPreKeyBundle(store: ProtocolStore, address: string, bundle: PreKeyBundle, options: CipherOptions): void {
  checkTrust(store, address, bundle.identityKey);
  const state = initializeInitiatorSession({
    identityKeyPair: store.identityKeyPair(),
    registrationId: store.localRegistrationId(),
    bundle,
    random: options.random,
    now: (options.now ?? Date.now)(),
  });
  store.storeSession(address, promoteState(store.loadSession(address) ?? emptyRecord(), state));
  store.saveIdentity(address, bundle.identityKey);
}

/** Encrypts for and decrypts from one peer device, committing to the store only after success. */
export class SessionCipher {
  constructor(
    private readonly store: ProtocolStore,
    readonly address: string,
    private readonly options: CipherOptions,
  ) {
    if (typeof address !== 'string' || address.length === 0) throw new TypeError('address must be a non-empty string');
    if (typeof options?.random !== 'function') throw new TypeError('options.random must be a RandomSource');
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  encrypt(plaintext: Uint8Array): E2eEnvelope {
    const record = this.store.loadSession(this.address);
    const remote = record?.current?.remoteIdentityKey;
    if (remote !== undefined) checkTrust(this.store, this.address, remote);
    const result = encryptWithRecord(record, plaintext, this.now());
    this.store.storeSession(this.address, result.record); // [E2E-64] durable before the envelope leaves
    return result.envelope;
  }

  decrypt(envelope: E2eEnvelope): Uint8Array {
    const store = this.store;
    if (envelope?.type === ENVELOPE_TYPE_PREKEY) {
      // Trust is checked on the decoded identity before any work; decode errors surface from decryptWithRecord.
      let identityKey: Uint8Array | undefined;
      try {
        identityKey = decodePreKeySignalMessage(envelope.body).identityKey;
      } catch {
        identityKey = undefined;
      }
      if (identityKey !== undefined) checkTrust(store, this.address, identityKey);
    }
    const local: LocalKeys = {
      identityKeyPair: store.identityKeyPair(),
      registrationId: store.localRegistrationId(),
      signedPreKey: (id) => store.signedPreKey(id),
      preKey: (id) => store.preKey(id),
    };
    const result = decryptWithRecord(store.loadSession(this.address), envelope, local, this.options.random);
    checkTrust(store, this.address, result.remoteIdentityKey);
    // Commit only now: the message authenticated and decrypted. [E2E-61]
    store.storeSession(this.address, result.record);
    store.saveIdentity(this.address, result.remoteIdentityKey);
    if (result.usedPreKeyId !== undefined) store.removePreKey(result.usedPreKeyId); // [E2E-58]
    return result.plaintext;
  }
}
