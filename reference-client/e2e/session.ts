// Session records (PROTOCOL.md 8.6; rust/protocol/src/state/session.rs `SessionRecord`): one current state and up
// to ARCHIVED_STATES_MAX_LENGTH archived ones per peer device, plus a JSON-safe serialisation so the messaging
// library can persist them. Records are immutable values like the states they hold.
import { assertUint, bytesEqual, fromHex, toHex } from './bytes.ts';
import {
  ARCHIVED_STATES_MAX_LENGTH,
  CHAIN_KEY_LENGTH,
  MAX_MESSAGE_KEYS,
  MAX_RECEIVER_CHAINS,
  MAX_UINT32,
  MAX_UNACKNOWLEDGED_SESSION_AGE_MS,
  MESSAGE_VERSION,
  PREKEY_ID_MAX,
  PRIVATE_KEY_LENGTH,
  ROOT_KEY_LENGTH,
  SERIALIZED_PUBLIC_KEY_LENGTH,
} from './constants.ts';
import type { ReceivingChain, SessionState } from './ratchet.ts';

export interface SessionRecord {
  readonly current?: SessionState | undefined;
  /** Newest first. */
  readonly archived: readonly SessionState[];
}

export const emptyRecord = (): SessionRecord => ({ archived: [] });

/** Archives the current state (without its pending-prekey data [E2E-52]) and makes `state` current. [E2E-51] */
export function promoteState(record: SessionRecord, state: SessionState): SessionRecord {
  if (record.current === undefined) return { current: state, archived: record.archived };
  const archived = [{ ...record.current, pendingPreKey: undefined }, ...record.archived].slice(0, ARCHIVED_STATES_MAX_LENGTH);
  return { current: state, archived };
}

/** Replaces archived state `index` by `state` and makes it current (the old current is archived). [E2E-60] */
export function promoteArchivedState(record: SessionRecord, index: number, state: SessionState): SessionRecord {
  const rest = record.archived.filter((_, i) => i !== index);
  return promoteState({ current: record.current, archived: rest }, state);
}

/** Archives the current state, leaving no current state (used when a new session is to be set up). */
export function archiveCurrentState(record: SessionRecord): SessionRecord {
  if (record.current === undefined) return record;
  const archived = [{ ...record.current, pendingPreKey: undefined }, ...record.archived].slice(0, ARCHIVED_STATES_MAX_LENGTH);
  return { archived };
}

/** 8.6 step 2: the version 3 state (current first, then archived) whose aliceBaseKey is `baseKey`. */
export function findStateByBaseKey(record: SessionRecord, baseKey: Uint8Array): { index: number; state: SessionState } | undefined {
  if (record.current !== undefined && bytesEqual(record.current.aliceBaseKey, baseKey)) return { index: -1, state: record.current };
  const index = record.archived.findIndex((s) => s.version === MESSAGE_VERSION && bytesEqual(s.aliceBaseKey, baseKey));
  return index < 0 ? undefined : { index, state: record.archived[index]! };
}

/** True when the current state may be used to send at `now` [E2E-55]. */
export function hasUsableSendingChain(record: SessionRecord | undefined, now: number): boolean {
  const pending = record?.current?.pendingPreKey;
  if (record?.current === undefined) return false;
  return pending === undefined || pending.createdAt + MAX_UNACKNOWLEDGED_SESSION_AGE_MS >= now;
}

// ---- serialisation ----------------------------------------------------------------------------------------------

export const SESSION_RECORD_FORMAT = 'tickwire-session-record-v1';

export interface SessionStateJson {
  version: number;
  localIdentityKey: string;
  remoteIdentityKey: string;
  rootKey: string;
  sendingChain: { publicKey: string; privateKey: string; chainKey: string; index: number };
  receivingChains: Array<{ ratchetKey: string; chainKey: string; index: number; messageKeys: Array<[number, string]> }>;
  previousCounter: number;
  localRegistrationId: number;
  remoteRegistrationId: number;
  aliceBaseKey: string;
  pendingPreKey?: { preKeyId?: number; signedPreKeyId: number; baseKey: string; createdAt: number };
}

export interface SessionRecordJson {
  format: typeof SESSION_RECORD_FORMAT;
  current?: SessionStateJson;
  archived: SessionStateJson[];
}

function stateToJson(state: SessionState): SessionStateJson {
  const json: SessionStateJson = {
    version: state.version,
    localIdentityKey: toHex(state.localIdentityKey),
    remoteIdentityKey: toHex(state.remoteIdentityKey),
    rootKey: toHex(state.rootKey),
    sendingChain: {
      publicKey: toHex(state.sendingChain.ratchetKeyPair.publicKey),
      privateKey: toHex(state.sendingChain.ratchetKeyPair.privateKey),
      chainKey: toHex(state.sendingChain.chainKey),
      index: state.sendingChain.index,
    },
    receivingChains: state.receivingChains.map((c) => ({
      ratchetKey: toHex(c.ratchetKey),
      chainKey: toHex(c.chainKey),
      index: c.index,
      messageKeys: c.messageKeys.map((k): [number, string] => [k.index, toHex(k.seed)]),
    })),
    previousCounter: state.previousCounter,
    localRegistrationId: state.localRegistrationId,
    remoteRegistrationId: state.remoteRegistrationId,
    aliceBaseKey: toHex(state.aliceBaseKey),
  };
  const pending = state.pendingPreKey;
  if (pending !== undefined) {
    json.pendingPreKey = { signedPreKeyId: pending.signedPreKeyId, baseKey: toHex(pending.baseKey), createdAt: pending.createdAt };
    if (pending.preKeyId !== undefined) json.pendingPreKey.preKeyId = pending.preKeyId;
  }
  return json;
}

/** A JSON-safe copy of the record. It contains private keys: store it like one [E2E-11]. */
export function serializeSessionRecord(record: SessionRecord): SessionRecordJson {
  const json: SessionRecordJson = { format: SESSION_RECORD_FORMAT, archived: record.archived.map(stateToJson) };
  if (record.current !== undefined) json.current = stateToJson(record.current);
  return json;
}

function obj(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError(`${name} must be an object`);
  return value as Record<string, unknown>;
}

function hex(value: unknown, name: string, length: number): Uint8Array {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a hex string`);
  const bytes = fromHex(value, name);
  if (bytes.length !== length) throw new RangeError(`${name} must be ${length} bytes`);
  return bytes;
}

function uint(value: unknown, name: string, max = MAX_UINT32): number {
  assertUint(value, name, 0, max);
  return value;
}

function stateFromJson(value: unknown, name: string): SessionState {
  const j = obj(value, name);
  if (j.version !== MESSAGE_VERSION) throw new RangeError(`${name}.version must be 3`);
  const sending = obj(j.sendingChain, `${name}.sendingChain`);
  if (!Array.isArray(j.receivingChains)) throw new TypeError(`${name}.receivingChains must be an array`);
  if (j.receivingChains.length > MAX_RECEIVER_CHAINS) throw new RangeError(`${name}.receivingChains is too long`);
  const receivingChains = j.receivingChains.map((c: unknown, i): ReceivingChain => {
    const chain = obj(c, `${name}.receivingChains[${i}]`);
    if (!Array.isArray(chain.messageKeys)) throw new TypeError(`${name}.receivingChains[${i}].messageKeys must be an array`);
    if (chain.messageKeys.length > MAX_MESSAGE_KEYS) throw new RangeError(`${name}.receivingChains[${i}].messageKeys is too long`);
    return {
      ratchetKey: hex(chain.ratchetKey, 'ratchetKey', SERIALIZED_PUBLIC_KEY_LENGTH),
      chainKey: hex(chain.chainKey, 'chainKey', CHAIN_KEY_LENGTH),
      index: uint(chain.index, 'index'),
      messageKeys: chain.messageKeys.map((k: unknown) => {
        if (!Array.isArray(k) || k.length !== 2) throw new TypeError('a message key must be [index, seed]');
        return { index: uint(k[0], 'messageKey index'), seed: hex(k[1], 'messageKey seed', 32) };
      }),
    };
  });
  const state: SessionState = {
    version: MESSAGE_VERSION,
    localIdentityKey: hex(j.localIdentityKey, 'localIdentityKey', SERIALIZED_PUBLIC_KEY_LENGTH),
    remoteIdentityKey: hex(j.remoteIdentityKey, 'remoteIdentityKey', SERIALIZED_PUBLIC_KEY_LENGTH),
    rootKey: hex(j.rootKey, 'rootKey', ROOT_KEY_LENGTH),
    sendingChain: {
      ratchetKeyPair: {
        publicKey: hex(sending.publicKey, 'sendingChain.publicKey', SERIALIZED_PUBLIC_KEY_LENGTH),
        privateKey: hex(sending.privateKey, 'sendingChain.privateKey', PRIVATE_KEY_LENGTH),
      },
      chainKey: hex(sending.chainKey, 'sendingChain.chainKey', CHAIN_KEY_LENGTH),
      index: uint(sending.index, 'sendingChain.index'),
    },
    receivingChains,
    previousCounter: uint(j.previousCounter, 'previousCounter'),
    localRegistrationId: uint(j.localRegistrationId, 'localRegistrationId'),
    remoteRegistrationId: uint(j.remoteRegistrationId, 'remoteRegistrationId'),
    aliceBaseKey: hex(j.aliceBaseKey, 'aliceBaseKey', SERIALIZED_PUBLIC_KEY_LENGTH),
  };
  if (j.pendingPreKey === undefined) return state;
  const p = obj(j.pendingPreKey, `${name}.pendingPreKey`);
  const createdAt = p.createdAt;
  if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt)) throw new TypeError('pendingPreKey.createdAt must be an integer');
  return {
    ...state,
    pendingPreKey: {
      preKeyId: p.preKeyId === undefined ? undefined : uint(p.preKeyId, 'pendingPreKey.preKeyId', PREKEY_ID_MAX),
      signedPreKeyId: uint(p.signedPreKeyId, 'pendingPreKey.signedPreKeyId', PREKEY_ID_MAX),
      baseKey: hex(p.baseKey, 'pendingPreKey.baseKey', SERIALIZED_PUBLIC_KEY_LENGTH),
      createdAt,
    },
  };
}

/** Parses a serialised record, checking every field's type, length and bound. */
export function deserializeSessionRecord(value: unknown): SessionRecord {
  const j = obj(value, 'record');
  if (j.format !== SESSION_RECORD_FORMAT) throw new RangeError(`record.format must be ${SESSION_RECORD_FORMAT}`);
  if (!Array.isArray(j.archived)) throw new TypeError('record.archived must be an array');
  if (j.archived.length > ARCHIVED_STATES_MAX_LENGTH) throw new RangeError('record.archived is too long');
  return {
    current: j.current === undefined ? undefined : stateFromJson(j.current, 'current'),
    archived: j.archived.map((s: unknown, i) => stateFromJson(s, `archived[${i}]`)),
  };
}
