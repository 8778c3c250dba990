// [SEC-8] Failed authentications per source address, on HTTP and in hello, slow down guessing: the first
// `freeFailures` failures within 60 s are answered at once, and each further failure is answered DELAY_STEP_MS later
// than the one before, up to MAX_DELAY_MS. Only the timing changes; the answers stay those of AUT-7 and AUT-12.
// Successful authentications are never delayed, so a legitimate client sharing an address with a guesser is not
// slowed down, and a guesser learns nothing it did not learn from the answer itself.
//
// Memory is bounded: an address keeps the times of at most freeFailures + MAX_DELAY_MS / DELAY_STEP_MS failures, and
// addresses without a failure in the last window are swept out at most once per window.

/** Each failure past the free ones waits this much longer than the previous one. */
export const DELAY_STEP_MS = 25;
/** The longest any answer is held: enough to make guessing slow, short enough not to pin many sockets for long. */
export const MAX_DELAY_MS = 1000;
/** Failures per address per window answered without delay (server option `--auth-failures-per-minute`). */
export const DEFAULT_FREE_AUTH_FAILURES = 20;

/** Counts failed authentications per source address; `failed` gives how long to hold the answer [SEC-8]. */
export interface AuthFailures {
  failed(address: string): number | Promise<number>;
}

export class AuthThrottle implements AuthFailures {
  private readonly failures = new Map<string, number[]>();
  private lastSweep: number;
  private readonly keep: number;

  constructor(
    private readonly freeFailures: number,
    private readonly now: () => number,
    private readonly windowMs = 60_000,
  ) {
    if (!Number.isSafeInteger(freeFailures) || freeFailures < 0) throw new RangeError(`free failures must be a non-negative integer (got ${freeFailures})`);
    this.keep = freeFailures + Math.ceil(MAX_DELAY_MS / DELAY_STEP_MS);
    this.lastSweep = now();
  }

  /** Records a failed authentication from `address`; returns how many milliseconds to hold its answer. */
  failed(address: string): number {
    const now = this.now();
    this.sweep(now);
    let times = this.failures.get(address);
    if (!times) this.failures.set(address, (times = []));
    const cutoff = now - this.windowMs;
    let drop = 0;
    while (drop < times.length && times[drop]! <= cutoff) drop++;
    if (times.length - drop >= this.keep) drop++;
    if (drop > 0) times.splice(0, drop);
    times.push(now);
    const excess = times.length - this.freeFailures;
    return excess > 0 ? Math.min(MAX_DELAY_MS, excess * DELAY_STEP_MS) : 0;
  }

  /** Addresses currently tracked (for tests and metrics). */
  get size(): number {
    return this.failures.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    const cutoff = now - this.windowMs;
    for (const [address, times] of this.failures) if (times[times.length - 1]! <= cutoff) this.failures.delete(address);
  }
}

/** Resolves after `ms` milliseconds (at once for 0). */
export function hold(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
