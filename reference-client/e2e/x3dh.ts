// X3DH session setup, version 3 (PROTOCOL.md 8.3; rust/protocol/src/ratchet.rs `initialize_alice_session`,
// `initialize_bob_session`, and rust/protocol/src/session.rs `process_prekey_bundle`).
import { assertBytes, assertUint, concatBytes } from './bytes.ts';
import { MAX_UINT32, MESSAGE_VERSION, PREKEY_ID_MAX, X3DH_DISCONTINUITY } from './constants.ts';
import { E2eError } from './errors.ts';
import { deriveInitialKeys, rootStep, type RootAndChain } from './kdf.ts';
import { agree, checkBaseKey, checkPublicKey, generateKeyPair, type KeyPair } from './keys.ts';
import type { RandomSource } from './random.ts';
import type { SessionState } from './ratchet.ts';
import { xeddsaVerify } from './xeddsa.ts';

/** One device entry of a prekey bundle (section 3.3), keys in their 33-byte form. */
export interface PreKeyBundle {
  registrationId: number;
  identityKey: Uint8Array;
  signedPreKeyId: number;
  signedPreKey: Uint8Array;
  signedPreKeySignature: Uint8Array;
  preKeyId?: number | undefined;
  preKey?: Uint8Array | undefined;
}

export interface InitiatorInputs {
  identityKeyPair: KeyPair;
  baseKeyPair: KeyPair;
  theirIdentityKey: Uint8Array;
  theirSignedPreKey: Uint8Array;
  theirOneTimePreKey?: Uint8Array | undefined;
}

export interface ResponderInputs {
  identityKeyPair: KeyPair;
  signedPreKeyPair: KeyPair;
  oneTimePreKeyPair?: KeyPair | undefined;
  theirIdentityKey: Uint8Array;
  theirBaseKey: Uint8Array;
}

/** RK0, CK0 from 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4]. [E2E-18], [E2E-19], [E2E-20] */
export function x3dhInitiator(inputs: InitiatorInputs): RootAndChain {
  const { identityKeyPair, baseKeyPair, theirIdentityKey, theirSignedPreKey, theirOneTimePreKey } = inputs;
  const parts = [
    X3DH_DISCONTINUITY,
    agree(identityKeyPair.privateKey, theirSignedPreKey),
    agree(baseKeyPair.privateKey, theirIdentityKey),
    agree(baseKeyPair.privateKey, theirSignedPreKey),
  ];
  if (theirOneTimePreKey !== undefined) parts.push(agree(baseKeyPair.privateKey, theirOneTimePreKey));
  return deriveInitialKeys(concatBytes(...parts));
}

/** The same RK0, CK0 from the responder's side. [E2E-24] */
export function x3dhResponder(inputs: ResponderInputs): RootAndChain {
  const { identityKeyPair, signedPreKeyPair, oneTimePreKeyPair, theirIdentityKey, theirBaseKey } = inputs;
  const parts = [
    X3DH_DISCONTINUITY,
    agree(signedPreKeyPair.privateKey, theirIdentityKey),
    agree(identityKeyPair.privateKey, theirBaseKey),
    agree(signedPreKeyPair.privateKey, theirBaseKey),
  ];
  if (oneTimePreKeyPair !== undefined) parts.push(agree(oneTimePreKeyPair.privateKey, theirBaseKey));
  return deriveInitialKeys(concatBytes(...parts));
}

/** Checks a bundle entry: keys [E2E-68], the signed prekey's signature [E2E-67]. */
export function checkPreKeyBundle(bundle: PreKeyBundle): void {
  if (typeof bundle !== 'object' || bundle === null) throw new TypeError('bundle must be an object');
  assertUint(bundle.registrationId, 'registrationId', 0, MAX_UINT32);
  assertUint(bundle.signedPreKeyId, 'signedPreKeyId', 0, PREKEY_ID_MAX);
  checkPublicKey(bundle.identityKey, 'identityKey');
  checkPublicKey(bundle.signedPreKey, 'signedPreKey');
  assertBytes(bundle.signedPreKeySignature, 'signedPreKeySignature');
  if ((bundle.preKeyId === undefined) !== (bundle.preKey === undefined)) {
    throw new TypeError('preKeyId and preKey must be both present or both absent');
  }
  if (bundle.preKeyId !== undefined) assertUint(bundle.preKeyId, 'preKeyId', 0, PREKEY_ID_MAX);
  if (bundle.preKey !== undefined) checkPublicKey(bundle.preKey, 'preKey');
  // [E2E-14] the signature covers the 33-byte serialised signed prekey.
  if (!xeddsaVerify(bundle.identityKey, bundle.signedPreKey, bundle.signedPreKeySignature)) {
    throw new E2eError('E2E_BAD_SIGNATURE', 'signed prekey signature does not verify');
  }
}

/**
 * The initiator's new session state (8.3.1). Draws the base key, then the first ratchet key, from `random`.
 * [E2E-21], [E2E-22]
 */
export function initializeInitiatorSession(params: {
  identityKeyPair: KeyPair;
  registrationId: number;
  bundle: PreKeyBundle;
  random: RandomSource;
  now: number;
}): SessionState {
  const { identityKeyPair, registrationId, bundle, random, now } = params;
  checkPreKeyBundle(bundle);
  const baseKeyPair = generateKeyPair(random); // 1.
  const { rootKey, chainKey } = x3dhInitiator({
    identityKeyPair,
    baseKeyPair,
    theirIdentityKey: bundle.identityKey,
    theirSignedPreKey: bundle.signedPreKey,
    theirOneTimePreKey: bundle.preKey,
  });
  baseKeyPair.privateKey.fill(0); // [E2E-21] the base private key is not kept
  const sendingRatchet = generateKeyPair(random); // 5.
  const sending = rootStep(rootKey, agree(sendingRatchet.privateKey, bundle.signedPreKey));
  return {
    version: MESSAGE_VERSION,
    localIdentityKey: identityKeyPair.publicKey,
    remoteIdentityKey: bundle.identityKey,
    rootKey: sending.rootKey,
    sendingChain: { ratchetKeyPair: sendingRatchet, chainKey: sending.chainKey, index: 0 },
    receivingChains: [{ ratchetKey: bundle.signedPreKey, chainKey, index: 0, messageKeys: [] }],
    previousCounter: 0,
    localRegistrationId: registrationId,
    remoteRegistrationId: bundle.registrationId,
    aliceBaseKey: baseKeyPair.publicKey,
    pendingPreKey: { preKeyId: bundle.preKeyId, signedPreKeyId: bundle.signedPreKeyId, baseKey: baseKeyPair.publicKey, createdAt: now },
  };
}

/** The responder's new session state (8.3.2); the base key must pass [E2E-8]. [E2E-25] */
export function initializeResponderSession(params: {
  identityKeyPair: KeyPair;
  registrationId: number;
  signedPreKeyPair: KeyPair;
  oneTimePreKeyPair?: KeyPair | undefined;
  theirIdentityKey: Uint8Array;
  theirBaseKey: Uint8Array;
  theirRegistrationId: number;
}): SessionState {
  checkBaseKey(params.theirBaseKey);
  const { rootKey, chainKey } = x3dhResponder(params);
  return {
    version: MESSAGE_VERSION,
    localIdentityKey: params.identityKeyPair.publicKey,
    remoteIdentityKey: params.theirIdentityKey,
    rootKey,
    sendingChain: { ratchetKeyPair: params.signedPreKeyPair, chainKey, index: 0 },
    receivingChains: [],
    previousCounter: 0,
    localRegistrationId: params.registrationId,
    remoteRegistrationId: params.theirRegistrationId,
    aliceBaseKey: params.theirBaseKey,
  };
}
