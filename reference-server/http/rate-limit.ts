// Sliding-window rate limits: "N requests per 60 seconds" counted over the exact preceding window, not over
// fixed clock minutes, so that a burst straddling a minute boundary cannot get 2N through (section 6.5).
//
// Each key keeps the times of its counted requests in the window, at most N of them (a refused request is not
// counted, so the list never grows past N). Memory is therefore N numbers per active key; keys idle for a whole
// window are swept out at most once per window, on the next call, without a timer that would keep the process alive.
import { DEFAULT_USERNAME_LOOKUPS_PER_MINUTE, type ServerConfig } from '../config.ts';
import { ProtocolError } from '../errors.ts';

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

/** A limit on requests per key: this process's own (SlidingWindowLimiter) or shared by a service (cluster/redis-limits.ts). */
export interface RateLimiter {
  /** Counts one request for `key` unless the limit is reached; a shared limiter rejects with StoreUnavailableError. */
  take(key: string): RateDecision | Promise<RateDecision>;
}

/** Counts one request for `key`, or throws the protocol's RATE_LIMITED error [ERR-4] with its retryAfterMs [LIM-10]. */
export async function enforce(limiter: RateLimiter, key: string, what: string): Promise<void> {
  const decision = await limiter.take(key);
  if (!decision.ok) {
    throw new ProtocolError('RATE_LIMITED', `too many ${what}; retry in ${decision.retryAfterMs} ms`, {
      retryAfterMs: decision.retryAfterMs,
    });
  }
}

export class SlidingWindowLimiter implements RateLimiter {
  private readonly hits = new Map<string, number[]>();
  private lastSweep: number;

  constructor(
    /** Requests allowed per window. */
    private readonly limit: number,
    private readonly now: () => number,
    private readonly windowMs = 60_000,
  ) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`rate limit must be a positive integer (got ${limit})`);
    if (!Number.isSafeInteger(windowMs) || windowMs < 1) throw new RangeError(`window must be a positive integer (got ${windowMs})`);
    this.lastSweep = now();
  }

  /**
   * Counts one request for `key` unless the limit is reached. A refused request is not counted [PKY-17], and its
   * `retryAfterMs` is the time until the oldest counted request leaves the window [LIM-10].
   */
  take(key: string): RateDecision {
    const now = this.now();
    this.sweep(now);
    const cutoff = now - this.windowMs;
    let times = this.hits.get(key);
    if (times) {
      // A request at time t counts for every request before t + window; at exactly t + window it has left.
      let drop = 0;
      while (drop < times.length && times[drop]! <= cutoff) drop++;
      if (drop > 0) times.splice(0, drop);
    } else {
      times = [];
      this.hits.set(key, times);
    }
    // [LIM-8] Never refuse while fewer than N counted requests lie in the window; [LIM-9] refuse at N or more.
    if (times.length >= this.limit) {
      const oldest = times[times.length - this.limit]!;
      // [LIM-10] At least 1 ms: the moment the oldest counted request leaves the window, this one would pass.
      return { ok: false, retryAfterMs: Math.max(1, oldest + this.windowMs - now) };
    }
    times.push(now);
    return { ok: true };
  }

  /** Number of keys currently tracked (for tests and metrics). */
  get size(): number {
    return this.hits.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    const cutoff = now - this.windowMs;
    for (const [key, times] of this.hits) {
      if (times.length === 0 || times[times.length - 1]! <= cutoff) this.hits.delete(key);
    }
  }
}

/** The limiters of the HTTP API, one per limit of section 6.5 that concerns HTTP requests. */
export interface HttpRateLimits {
  /** `registrationsPerMinute`: POST /v1/accounts and POST /v1/devices per source address [IDN-8]. */
  registrations: RateLimiter;
  /** `prekeyFetchesPerMinute`: GET /v1/users/{userId}/keys per requesting device [PKY-17]. */
  prekeyFetches: RateLimiter;
  /** `usernameLookupsPerMinute` (server option): GET /v1/usernames/{username} per requesting device [SEC-6]. */
  usernameLookups: RateLimiter;
}

/**
 * The limiters of a configuration, made by `make` (a name shared by every process of a service, and the limit):
 * this process's own by default.
 */
export function createHttpRateLimits(
  config: Pick<ServerConfig, 'limits' | 'usernameLookupsPerMinute'>,
  now: () => number,
  make: (name: string, limit: number) => RateLimiter = (_name, limit) => new SlidingWindowLimiter(limit, now),
): HttpRateLimits {
  return {
    registrations: make('registrations', config.limits.registrationsPerMinute),
    prekeyFetches: make('prekey-fetches', config.limits.prekeyFetchesPerMinute),
    usernameLookups: make('username-lookups', config.usernameLookupsPerMinute ?? DEFAULT_USERNAME_LOOKUPS_PER_MINUTE),
  };
}
