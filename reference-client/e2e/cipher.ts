// AES-256-CBC with PKCS#7 padding (PROTOCOL.md 8.4.1; rust/crypto/src/aes_cbc.rs), on @noble/ciphers.
import { cbc } from '@noble/ciphers/aes.js';
import { assertBytes } from './bytes.ts';
import { AES_BLOCK_LENGTH, CIPHER_KEY_LENGTH, IV_LENGTH } from './constants.ts';
import { E2eError } from './errors.ts';

/** [E2E-27] AES-256-CBC, PKCS#7: the output is a positive multiple of 16 bytes. */
export function aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  assertBytes(key, 'key', CIPHER_KEY_LENGTH);
  assertBytes(iv, 'iv', IV_LENGTH);
  assertBytes(plaintext, 'plaintext');
  return cbc(key, iv).encrypt(plaintext);
}

/** Decrypts and strips PKCS#7; E2E_BAD_CIPHERTEXT for an empty or unaligned input or invalid padding. [E2E-36] */
export function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  assertBytes(key, 'key', CIPHER_KEY_LENGTH);
  assertBytes(iv, 'iv', IV_LENGTH);
  assertBytes(ciphertext, 'ciphertext');
  if (ciphertext.length === 0 || ciphertext.length % AES_BLOCK_LENGTH !== 0) {
    throw new E2eError('E2E_BAD_CIPHERTEXT', `ciphertext length ${ciphertext.length} is not a positive multiple of 16`);
  }
  try {
    return cbc(key, iv).decrypt(ciphertext);
  } catch {
    throw new E2eError('E2E_BAD_CIPHERTEXT', 'invalid PKCS#7 padding');
  }
}
