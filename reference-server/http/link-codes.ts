// Link codes (section 2.3): generation with at least 128 bits of entropy [IDN-15], and the hash under which the store
// keeps them, so that the code itself is never stored. The store consumes a code atomically with the new device
// [IDN-18] and invalidates the codes of a deleted device [IDN-20], since it is told which device obtained each code.
import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** 32 characters of a 62-letter alphabet: log2(62) × 32 ≈ 190 bits, above the 128 of [IDN-15]. */
export const LINK_CODE_LENGTH = 32;

/** A fresh link code from the CSPRNG, by rejection sampling so that every character is uniform [IDN-15]. */
export function generateLinkCode(length = LINK_CODE_LENGTH): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: bytes at or above it would bias the first characters of the alphabet.
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

/** Hex SHA-256 of a link code: the store never sees the code itself. */
export function hashLinkCode(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('hex');
}
