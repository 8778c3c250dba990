// Key derivation of PROTOCOL.md 8.3 and 8.4.1 (rust/protocol/src/ratchet.rs, ratchet/keys.rs): the X3DH output, the
// root step, the chain step and the message keys. HKDF-SHA256 and HMAC-SHA256 from noble-hashes.
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { assertBytes, utf8 } from './bytes.ts';
import {
  CHAIN_KEY_LENGTH,
  CHAIN_KEY_SEED,
  CIPHER_KEY_LENGTH,
  IV_LENGTH,
  MAC_KEY_LENGTH,
  MESSAGE_KEYS_INFO,
  MESSAGE_KEYS_LENGTH,
  MESSAGE_KEY_SEED,
  ROOT_KEY_LENGTH,
  ROOT_STEP_INFO,
  X3DH_INFO,
} from './constants.ts';

const X3DH_INFO_BYTES = utf8(X3DH_INFO);
const ROOT_INFO_BYTES = utf8(ROOT_STEP_INFO);
const MESSAGE_INFO_BYTES = utf8(MESSAGE_KEYS_INFO);
/** "No salt" is the RFC 5869 default: HashLen zero bytes. */
const NO_SALT = new Uint8Array(32);
const MESSAGE_KEY_INPUT = Uint8Array.of(MESSAGE_KEY_SEED);
const CHAIN_KEY_INPUT = Uint8Array.of(CHAIN_KEY_SEED);

export interface RootAndChain {
  rootKey: Uint8Array;
  chainKey: Uint8Array;
}

export interface MessageKeys {
  cipherKey: Uint8Array;
  macKey: Uint8Array;
  iv: Uint8Array;
}

function split(okm: Uint8Array): RootAndChain {
  return { rootKey: okm.slice(0, ROOT_KEY_LENGTH), chainKey: okm.slice(ROOT_KEY_LENGTH, ROOT_KEY_LENGTH + CHAIN_KEY_LENGTH) };
}

/** RK0 ‖ CK0 = HKDF(salt = 32 zero bytes, ikm, "WhisperText", 64). [E2E-19] */
export function deriveInitialKeys(ikm: Uint8Array): RootAndChain {
  assertBytes(ikm, 'ikm');
  return split(hkdf(sha256, ikm, NO_SALT, X3DH_INFO_BYTES, ROOT_KEY_LENGTH + CHAIN_KEY_LENGTH));
}

/** KDF_RK(RK, dhOut) = HKDF(salt = RK, ikm = dhOut, "WhisperRatchet", 64). [E2E-26] */
export function rootStep(rootKey: Uint8Array, dhOutput: Uint8Array): RootAndChain {
  assertBytes(rootKey, 'rootKey', ROOT_KEY_LENGTH);
  assertBytes(dhOutput, 'dhOutput', 32);
  return split(hkdf(sha256, dhOutput, rootKey, ROOT_INFO_BYTES, ROOT_KEY_LENGTH + CHAIN_KEY_LENGTH));
}

/** The message-key seed of a chain key: HMAC(CK, 0x01). */
export function messageKeySeed(chainKey: Uint8Array): Uint8Array {
  assertBytes(chainKey, 'chainKey', CHAIN_KEY_LENGTH);
  return hmac(sha256, chainKey, MESSAGE_KEY_INPUT);
}

/** The next chain key: HMAC(CK, 0x02). */
export function nextChainKey(chainKey: Uint8Array): Uint8Array {
  assertBytes(chainKey, 'chainKey', CHAIN_KEY_LENGTH);
  return hmac(sha256, chainKey, CHAIN_KEY_INPUT);
}

/** cipherKey ‖ macKey ‖ iv = HKDF(no salt, seed, "WhisperMessageKeys", 80). [E2E-26] */
export function deriveMessageKeys(seed: Uint8Array): MessageKeys {
  assertBytes(seed, 'seed', 32);
  const okm = hkdf(sha256, seed, NO_SALT, MESSAGE_INFO_BYTES, MESSAGE_KEYS_LENGTH);
  return {
    cipherKey: okm.slice(0, CIPHER_KEY_LENGTH),
    macKey: okm.slice(CIPHER_KEY_LENGTH, CIPHER_KEY_LENGTH + MAC_KEY_LENGTH),
    iv: okm.slice(CIPHER_KEY_LENGTH + MAC_KEY_LENGTH, CIPHER_KEY_LENGTH + MAC_KEY_LENGTH + IV_LENGTH),
  };
}

/** HMAC-SHA256, exported for the SignalMessage MAC. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(sha256, key, data);
}
