// Every constant and bound of PROTOCOL.md section 8 (table 8.8), in one place. Values fixed by the wire format carry
// their libsignal source (paths relative to libsignal v0.73.3); the bounds carry the trade-off they make.

/** Key type byte of a serialised Curve25519 public key ("DJB"), rust/core/src/curve.rs `KeyType::Djb`. [E2E-3] */
export const KEY_TYPE_DJB = 0x05;
/** Length of a u-coordinate and of a private key, rust/core/src/curve/curve25519.rs. */
export const PUBLIC_KEY_LENGTH = 32;
export const PRIVATE_KEY_LENGTH = 32;
/** 0x05 followed by the 32-byte u-coordinate. [E2E-3], [E2E-4] */
export const SERIALIZED_PUBLIC_KEY_LENGTH = 33;
/** X25519 output length (`AGREEMENT_LENGTH`). */
export const AGREEMENT_LENGTH = 32;
/** XEdDSA signature length (`SIGNATURE_LENGTH`). */
export const SIGNATURE_LENGTH = 64;
/** XEdDSA random input Z, 64 bytes per signature. [E2E-13] */
export const XEDDSA_RANDOM_LENGTH = 64;
/** XEdDSA nonce hash prefix: 0xFE then 31 × 0xFF, the little-endian 2^256 − 2 (the paper's hash1). [E2E-12] */
export const XEDDSA_HASH1_PREFIX: Uint8Array = Uint8Array.from([0xfe, ...new Array<number>(31).fill(0xff)]);

/** X3DH "discontinuity bytes" in front of the DH results (rust/protocol/src/ratchet.rs). [E2E-18] */
export const X3DH_DISCONTINUITY: Uint8Array = new Uint8Array(32).fill(0xff);
/** HKDF info strings (ASCII). [E2E-19], [E2E-26] */
export const X3DH_INFO = 'WhisperText';
export const ROOT_STEP_INFO = 'WhisperRatchet';
export const MESSAGE_KEYS_INFO = 'WhisperMessageKeys';
/** Root and chain keys are 32 bytes; X3DH and root steps output both (64 bytes). */
export const ROOT_KEY_LENGTH = 32;
export const CHAIN_KEY_LENGTH = 32;
/** Message keys: HKDF output of 80 bytes split 32 (AES key) + 32 (HMAC key) + 16 (CBC IV). */
export const CIPHER_KEY_LENGTH = 32;
export const MAC_KEY_LENGTH = 32;
export const IV_LENGTH = 16;
export const MESSAGE_KEYS_LENGTH = CIPHER_KEY_LENGTH + MAC_KEY_LENGTH + IV_LENGTH;
/** HMAC inputs of a chain step (rust/protocol/src/ratchet/keys.rs `MESSAGE_KEY_SEED`, `CHAIN_KEY_SEED`). */
export const MESSAGE_KEY_SEED = 0x01;
export const CHAIN_KEY_SEED = 0x02;
/** AES block size; ciphertexts are a positive multiple of it (PKCS#7). [E2E-27] */
export const AES_BLOCK_LENGTH = 16;

/** Session and message version 3 (`CIPHERTEXT_MESSAGE_PRE_KYBER_VERSION`). [E2E-23] */
export const MESSAGE_VERSION = 3;
/**
 * Version byte we write: (3 << 4) | 3. libsignal ≥ v0.24.0 writes 0x34 for version 3; every reader looks at the
 * high nibble only, so both interoperate. [E2E-37], [E2E-41]
 */
export const VERSION_BYTE = 0x33;
/** Truncated HMAC-SHA256 length of a SignalMessage (`SignalMessage::MAC_LENGTH`). [E2E-39] */
export const MAC_LENGTH = 8;
/** Envelope type names of section 8.5.5 and libsignal's message type numbers (2 = Whisper, 3 = PreKey). */
export const ENVELOPE_TYPE_RATCHET = 'ratchet';
export const ENVELOPE_TYPE_PREKEY = 'prekey';
export const LIBSIGNAL_TYPE_WHISPER = 2;
export const LIBSIGNAL_TYPE_PREKEY = 3;
/** Longest varint a protobuf decoder accepts (64 bits in 7-bit groups). [E2E-43] */
export const MAX_VARINT_BYTES = 10;
export const MAX_UINT32 = 0xffff_ffff;

/**
 * How far ahead of a receiving chain's index a counter may be (rust/protocol/src/consts.rs). A larger value
 * tolerates longer message loss within one chain; a smaller one bounds the HMAC work a single forged-looking message
 * can force (each skipped counter costs two HMACs before the MAC can be checked). [E2E-33]
 */
export const MAX_FORWARD_JUMPS = 25_000;
/**
 * Skipped message keys stored per receiving chain, oldest discarded first. Bounds the memory and the size of a
 * persisted session; a message delayed by more than this many later messages of its chain becomes undecryptable.
 * [E2E-34]
 */
export const MAX_MESSAGE_KEYS = 2_000;
/**
 * Receiving chains kept per session state. Each DH ratchet step of the peer adds one; keeping a few lets late
 * messages of earlier chains decrypt, at the price of their stored keys staying in memory. [E2E-32]
 */
export const MAX_RECEIVER_CHAINS = 5;
/**
 * Archived session states kept per peer device, newest first. Lets messages of a replaced session (reinstall,
 * simultaneous initiation) still decrypt; each costs a full state in storage and a trial decryption. [E2E-51]
 */
export const ARCHIVED_STATES_MAX_LENGTH = 40;
/**
 * How long an initiator keeps sending PreKeySignalMessages without any reply before it must set up a new session
 * (30 days). Longer tolerates a peer that stays offline; shorter limits how long one base key and one-time prekey
 * stay in use. [E2E-55]
 */
export const MAX_UNACKNOWLEDGED_SESSION_AGE_MS = 30 * 24 * 60 * 60 * 1000;

/** registrationId range (KeyHelper.java). [E2E-9] */
export const REGISTRATION_ID_MIN = 1;
export const REGISTRATION_ID_MAX = 16_380;
/** Prekey keyId range, 24 bits, 0 valid (Medium.java). [E2E-10] */
export const PREKEY_ID_MIN = 0;
export const PREKEY_ID_MAX = 0xff_ffff;

/** The field prime p = 2^255 − 19 and the Ed25519 group order l (section 8.1.1). */
export const FIELD_PRIME = (1n << 255n) - 19n;
export const GROUP_ORDER = (1n << 252n) + 27742317777372353535851937790883648493n;

/**
 * u-coordinates for which X25519 yields zero for every clamped scalar (8.1.2). With the canonical-encoding rule only
 * the first five can pass [E2E-5]; [E2E-6] rejects them.
 */
export const LOW_ORDER_POINTS: readonly string[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];
