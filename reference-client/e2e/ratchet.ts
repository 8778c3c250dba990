// The Double Ratchet state and its two operations (PROTOCOL.md 8.4; rust/protocol/src/session_cipher.rs
// `message_encrypt`, `decrypt_message_with_state`, `get_or_create_chain_key`, `get_or_create_message_key`).
// States are immutable values: every operation returns a new state and leaves its input untouched, so decrypting
// "on a copy" costs nothing and a failure at any step leaves the caller's state as it was [E2E-61], [E2E-62].
import { bytesEqual } from './bytes.ts';
import { aesCbcDecrypt, aesCbcEncrypt } from './cipher.ts';
import { MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS, MAX_UINT32, MESSAGE_VERSION } from './constants.ts';
import { encodeSignalMessage, verifySignalMessageMac, type DecodedSignalMessage } from './envelope.ts';
import { E2eError } from './errors.ts';
import { deriveMessageKeys, messageKeySeed, nextChainKey, rootStep } from './kdf.ts';
import { agree, generateKeyPair, type KeyPair } from './keys.ts';
import type { RandomSource } from './random.ts';

/** A skipped counter's message-key seed, kept until its message arrives. */
export interface StoredMessageKey {
  readonly index: number;
  readonly seed: Uint8Array;
}

export interface ReceivingChain {
  /** The sender's 33-byte ratchet public key. */
  readonly ratchetKey: Uint8Array;
  readonly chainKey: Uint8Array;
  /** The counter of the next message on this chain. */
  readonly index: number;
  /** Ascending by index, at most MAX_MESSAGE_KEYS. */
  readonly messageKeys: readonly StoredMessageKey[];
}

export interface SendingChain {
  readonly ratchetKeyPair: KeyPair;
  readonly chainKey: Uint8Array;
  readonly index: number;
}

/** Kept by the initiator until the first reply (8.3.1 step 6). */
export interface PendingPreKey {
  readonly preKeyId?: number | undefined;
  readonly signedPreKeyId: number;
  readonly baseKey: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/** One session state (8.4.2). */
export interface SessionState {
  readonly version: typeof MESSAGE_VERSION;
  readonly localIdentityKey: Uint8Array;
  readonly remoteIdentityKey: Uint8Array;
  readonly rootKey: Uint8Array;
  readonly sendingChain: SendingChain;
  /** Oldest first, at most MAX_RECEIVER_CHAINS. */
  readonly receivingChains: readonly ReceivingChain[];
  readonly previousCounter: number;
  readonly localRegistrationId: number;
  readonly remoteRegistrationId: number;
  readonly aliceBaseKey: Uint8Array;
  readonly pendingPreKey?: PendingPreKey | undefined;
}

/** Encrypts one message with the sending chain (8.4.3 steps 1-3, 5): the new state and the SignalMessage bytes. */
export function ratchetEncrypt(state: SessionState, plaintext: Uint8Array): { state: SessionState; message: Uint8Array } {
  const chain = state.sendingChain;
  if (chain.index >= MAX_UINT32) throw new RangeError('sending chain exhausted');
  const keys = deriveMessageKeys(messageKeySeed(chain.chainKey));
  const ciphertext = aesCbcEncrypt(keys.cipherKey, keys.iv, plaintext); // [E2E-27]
  const message = encodeSignalMessage(
    { ratchetKey: chain.ratchetKeyPair.publicKey, counter: chain.index, previousCounter: state.previousCounter, ciphertext },
    keys.macKey,
    state.localIdentityKey,
    state.remoteIdentityKey,
  );
  // [E2E-28] exactly one chain step per message.
  const sendingChain: SendingChain = { ...chain, chainKey: nextChainKey(chain.chainKey), index: chain.index + 1 };
  return { state: { ...state, sendingChain }, message };
}

/** The DH ratchet step of 8.4.4 step 2 for a new ratchet key `theirRatchetKey`. [E2E-29], [E2E-31], [E2E-32] */
function dhRatchetStep(state: SessionState, theirRatchetKey: Uint8Array, random: RandomSource): SessionState {
  const receiving = rootStep(state.rootKey, agree(state.sendingChain.ratchetKeyPair.privateKey, theirRatchetKey));
  const ourNewRatchet = generateKeyPair(random);
  const sending = rootStep(receiving.rootKey, agree(ourNewRatchet.privateKey, theirRatchetKey));
  const receivingChains = [
    ...state.receivingChains,
    { ratchetKey: theirRatchetKey, chainKey: receiving.chainKey, index: 0, messageKeys: [] },
  ];
  if (receivingChains.length > MAX_RECEIVER_CHAINS) receivingChains.shift(); // oldest chain and its keys go
  const i = state.sendingChain.index;
  return {
    ...state,
    rootKey: sending.rootKey,
    receivingChains,
    previousCounter: i > 0 ? i - 1 : 0, // [E2E-29]
    sendingChain: { ratchetKeyPair: ourNewRatchet, chainKey: sending.chainKey, index: 0 },
  };
}

/**
 * Decrypts a SignalMessage with one session state (8.4.4). Returns the new state and the plaintext; throws
 * E2E_DUPLICATE_MESSAGE, E2E_TOO_FAR_AHEAD, E2E_BAD_MAC or E2E_BAD_CIPHERTEXT. `state` is never modified.
 */
export function ratchetDecrypt(
  state: SessionState,
  message: DecodedSignalMessage,
  random: RandomSource,
): { state: SessionState; plaintext: Uint8Array } {
  if (message.version !== state.version) {
    throw new E2eError('E2E_UNSUPPORTED_VERSION', `message version ${message.version}, session ${state.version}`); // 1.
  }
  let next = state;
  let chainIndex = next.receivingChains.findIndex((c) => bytesEqual(c.ratchetKey, message.ratchetKey)); // 2.
  if (chainIndex < 0) {
    next = dhRatchetStep(next, message.ratchetKey, random);
    chainIndex = next.receivingChains.length - 1;
  }
  const chain = next.receivingChains[chainIndex]!;
  const counter = message.counter;
  let seed: Uint8Array;
  let updated: ReceivingChain;
  if (counter < chain.index) {
    // 3. a late message: its key must be stored. [E2E-35] the key is removed once used.
    const position = chain.messageKeys.findIndex((k) => k.index === counter);
    if (position < 0) throw new E2eError('E2E_DUPLICATE_MESSAGE', `counter ${counter} behind chain index ${chain.index}`);
    seed = chain.messageKeys[position]!.seed;
    updated = { ...chain, messageKeys: chain.messageKeys.filter((_, i) => i !== position) };
  } else {
    // 4. [E2E-33] bound the forward jump before doing any of its work.
    if (counter - chain.index > MAX_FORWARD_JUMPS) {
      throw new E2eError('E2E_TOO_FAR_AHEAD', `jump of ${counter - chain.index} exceeds ${MAX_FORWARD_JUMPS}`);
    }
    // 5. store the skipped keys [E2E-34], lowest counter discarded first beyond MAX_MESSAGE_KEYS.
    let chainKey = chain.chainKey;
    let messageKeys = chain.messageKeys;
    if (counter > chain.index) {
      const added: StoredMessageKey[] = [];
      for (let i = chain.index; i < counter; i++) {
        added.push({ index: i, seed: messageKeySeed(chainKey) });
        chainKey = nextChainKey(chainKey);
      }
      messageKeys = [...messageKeys, ...added];
      if (messageKeys.length > MAX_MESSAGE_KEYS) messageKeys = messageKeys.slice(messageKeys.length - MAX_MESSAGE_KEYS);
    }
    seed = messageKeySeed(chainKey);
    updated = { ...chain, chainKey: nextChainKey(chainKey), index: counter + 1, messageKeys };
  }
  const keys = deriveMessageKeys(seed);
  // 6. [E2E-36] the MAC first: remote identity as sender, local as receiver.
  if (!verifySignalMessageMac(message, keys.macKey, next.remoteIdentityKey, next.localIdentityKey)) {
    throw new E2eError('E2E_BAD_MAC', 'MAC mismatch');
  }
  const plaintext = aesCbcDecrypt(keys.cipherKey, keys.iv, message.ciphertext); // 7.
  const receivingChains = next.receivingChains.slice();
  receivingChains[chainIndex] = updated;
  // 8. the peer has received a message of this session: no more PreKeySignalMessages.
  return { state: { ...next, receivingChains, pendingPreKey: undefined }, plaintext };
}
