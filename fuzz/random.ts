// Seeded randomness for the fuzzer. One run seed derives one seed per input (`inputSeed`), so that input number n of
// a run is the same bytes whatever ran before it, on however many workers: a failure can be regenerated from the run
// seed and its index alone, and a saved corpus file carries both.
import { randomBytes } from 'node:crypto';

/** mulberry32: small, fast and seedable (the same generator as test/lib/seeded-random.ts); never for secrets. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(table: ReadonlyArray<readonly [number, T]>): T {
    const total = table.reduce((sum, [w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [w, value] of table) {
      if ((r -= w) < 0) return value;
    }
    return table[table.length - 1]![1];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    // Four bytes per draw: the generator gives 32 good bits.
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(Math.floor(this.next() * 4294967296), i);
    for (; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }

  /** A string of `n` characters drawn from `alphabet`. */
  string(n: number, alphabet: string): string {
    let out = '';
    for (let i = 0; i < n; i++) out += alphabet[Math.floor(this.next() * alphabet.length)];
    return out;
  }

  /** Sizes skewed towards small ones, up to `max`: most mutations are near a boundary, a few are huge. */
  size(max: number): number {
    const r = this.next();
    if (r < 0.5) return this.int(0, Math.min(max, 8));
    if (r < 0.8) return this.int(0, Math.min(max, 128));
    if (r < 0.95) return this.int(0, Math.min(max, 4096));
    return this.int(0, max);
  }
}

/** FNV-1a over the decimal index, mixed with the run seed: the seed of input `index` of a run. */
export function inputSeed(runSeed: number, index: number): number {
  let h = 0x811c9dc5 ^ (runSeed >>> 0);
  const text = String(index);
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995);
  h ^= h >>> 15;
  return h >>> 0;
}

/** A fresh run seed, printed at the start of every run so that the run can be repeated with --seed. */
export function randomSeed(): number {
  return randomBytes(4).readUInt32BE(0);
}
