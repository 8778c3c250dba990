// Sources of randomness. Production code draws from the platform CSPRNG [E2E-2], [E2E-13]; tests, vectors and
// benchmarks pass a seeded source so every run can be replayed. Every function that needs randomness takes a
// RandomSource argument: there is no hidden global generator.
import { sha256 } from '@noble/hashes/sha2.js';
import { assertBytes, concatBytes, utf8 } from './bytes.ts';

/** Returns `length` fresh random bytes. */
export type RandomSource = (length: number) => Uint8Array;

/** The platform CSPRNG (Web Crypto `getRandomValues`, present in Node ≥ 19 and browsers). */
export const secureRandom: RandomSource = (length) => {
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65_536) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + 65_536)));
  }
  return out;
};

/**
 * A deterministic stream SHA-256(seed ‖ counter) for tests, vectors and benchmarks. NOT for production keys: anyone
 * who knows the seed knows every key.
 */
export function seededRandom(seed: string | Uint8Array): RandomSource {
  const seedBytes = typeof seed === 'string' ? utf8(seed) : seed;
  assertBytes(seedBytes, 'seed');
  let counter = 0;
  let buffer = new Uint8Array(0);
  let offset = 0;
  return (length) => {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (offset === buffer.length) {
        const block = new Uint8Array(4);
        new DataView(block.buffer).setUint32(0, counter++);
        buffer = sha256(concatBytes(seedBytes, block));
        offset = 0;
      }
      const take = Math.min(length - filled, buffer.length - offset);
      out.set(buffer.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
    }
    return out;
  };
}

/** A source that hands out the given chunks in order (vectors list every key in draw order), then fails. */
export function scriptedRandom(chunks: Uint8Array[]): RandomSource {
  let next = 0;
  return (length) => {
    const chunk = chunks[next++];
    if (chunk === undefined) throw new RangeError('scripted random source exhausted');
    if (chunk.length !== length) throw new RangeError(`scripted chunk ${next - 1} has ${chunk.length} bytes, ${length} wanted`);
    return Uint8Array.from(chunk);
  };
}
