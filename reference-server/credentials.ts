// Device secrets, as both halves of the server check them (HTTP Basic auth and the WebSocket hello): the server keeps
// only a SHA-256 digest of a secret [AUT-2] and compares digests in constant time [AUT-3]. A SHA-256 digest is enough
// because the secret is at least 128 bits of client-chosen randomness (section 2.7), not a password.
import { createHash, timingSafeEqual } from 'node:crypto';

/** Hex SHA-256 of a device secret: the only form in which the server keeps it [AUT-2]. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compares two hex SHA-256 digests without an early exit [AUT-3]; lengths are fixed, so only the bytes vary. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  if (left.length !== 32 || right.length !== 32) return false;
  return timingSafeEqual(left, right);
}
