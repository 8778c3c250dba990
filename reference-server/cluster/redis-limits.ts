// The rate limits of section 6.5 and the failed-authentication delay of SEC-8, counted in Redis so that every
// process of a service shares one count: N processes behind one port (or N hosts) must not allow N times the limit.
// The same sliding window as the in-process limiter (http/rate-limit.ts): a request counts for exactly the 60 s that
// follow it, a refused request is not counted [PKY-17] [LIM-9], and a refusal says when the oldest counted request
// leaves the window [LIM-10].
//
// Keys (one per limited key, each its own hash tag, so a Redis Cluster spreads them; every script touches one key, so
// the limits work unchanged on a cluster named by a redis+cluster:// URL, connection.ts):
//   tw:{<key>}:rl:<limit>   zset   member "<processId>:<n>" scored with the time it was counted (Redis's clock)
//   tw:{<address>}:af       zset   the same for failed authentications from a source address [SEC-8]
// Both expire one window after their last entry, so idle keys cost nothing.
//
// Time is Redis's own (TIME inside the script): processes on hosts with drifting clocks still share one window.
// When Redis cannot answer, a limited request is refused with StoreUnavailableError (503 TEMPORARILY_UNAVAILABLE,
// never a silent pass), and a failed authentication falls back to this process's own count (the answer is a
// failure either way; only its delay is at stake).
import { createHash, randomBytes } from 'node:crypto';
import { AuthThrottle, DELAY_STEP_MS, MAX_DELAY_MS, type AuthFailures } from '../auth-throttle.ts';
import type { Logger } from '../context.ts';
import type { RateDecision, RateLimiter } from '../http/rate-limit.ts';
import { close, connect, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_OPEN_TIMEOUT_MS, defineScripts, open, runScript, unavailable, type RedisClient } from '../store/redis/connection.ts';
import type { LuaScript } from '../store/redis/scripts.ts';

function script(name: string, lua: string): LuaScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS window. ARGV limit, windowMs, member. Returns {1, 0} when counted, {0, retryAfterMs} when refused.
 * A request at time t counts for every request before t + window; at exactly t + window it has left.
 */
export const TAKE = script(
  'rate-take',
  `${NOW_MS}
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return {0, wait}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`,
);

/** KEYS failures. ARGV keep, windowMs, member. Counts one failure and returns the failures now in the window. */
export const FAIL = script(
  'auth-fail',
  `${NOW_MS}
local keep = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(keep + 1))
redis.call('PEXPIRE', KEYS[1], window)
return redis.call('ZCARD', KEYS[1])
`,
);

/** A limiter whose count lives in Redis: every answer is a round trip, and a failed one rejects. */
export interface SharedRateLimiter extends RateLimiter {
  take(key: string): Promise<RateDecision>;
}

export const rateKey = (limit: string, key: string) => `tw:{${key}}:rl:${limit}`;
export const authFailuresKey = (address: string) => `tw:{${address}}:af`;

export interface RedisLimitsOptions {
  log: Logger;
  commandTimeoutMs?: number;
  openTimeoutMs?: number;
  /** Defaults to 60 s, the window of every limit in section 6.5. */
  windowMs?: number;
  /** The clock of the local fallback of the authentication delay. */
  now?: () => number;
}

/** One connection to Redis for all the shared counters of a process. */
export class RedisLimits {
  private readonly prefix = randomBytes(6).toString('base64url');
  private serial = 0;
  private readonly windowMs: number;
  private lastErrorLog = 0;

  private constructor(
    private readonly redis: RedisClient,
    private readonly options: RedisLimitsOptions,
  ) {
    this.windowMs = options.windowMs ?? 60_000;
  }

  static async open(url: string, options: RedisLimitsOptions): Promise<RedisLimits> {
    let limits: RedisLimits | undefined;
    const redis = connect(url, 'tickwire-limits', {
      commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      onError: (error) => limits?.logError(error),
    });
    defineScripts(redis, [TAKE, FAIL]);
    limits = new RedisLimits(redis, options);
    await open(redis, options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS);
    return limits;
  }

  /** A limiter of `limit` requests per window, named `name` in its keys (every process must use the same name). */
  limiter(name: string, limit: number): SharedRateLimiter {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`rate limit must be a positive integer (got ${limit})`);
    return {
      take: async (key: string): Promise<RateDecision> => {
        let reply: unknown;
        try {
          reply = await runScript(this.redis, TAKE, [rateKey(name, key)], [limit, this.windowMs, this.member()]);
        } catch (error) {
          throw unavailable(error);
        }
        const [counted, wait] = reply as [number, number];
        return counted === 1 ? { ok: true } : { ok: false, retryAfterMs: Number(wait) };
      },
    };
  }

  /** The SEC-8 delay, counted across the service; this process's own count when Redis does not answer. */
  authFailures(freeFailures: number): AuthFailures {
    if (!Number.isSafeInteger(freeFailures) || freeFailures < 0) throw new RangeError(`free failures must be a non-negative integer (got ${freeFailures})`);
    const keep = freeFailures + Math.ceil(MAX_DELAY_MS / DELAY_STEP_MS);
    const local = new AuthThrottle(freeFailures, this.options.now ?? Date.now, this.windowMs);
    return {
      failed: async (address: string): Promise<number> => {
        const ownCount = local.failed(address);
        try {
          const count = Number(await runScript(this.redis, FAIL, [authFailuresKey(address)], [keep, this.windowMs, this.member()]));
          const excess = count - freeFailures;
          return excess > 0 ? Math.min(MAX_DELAY_MS, excess * DELAY_STEP_MS) : 0;
        } catch (error) {
          this.logError(error);
          return ownCount;
        }
      },
    };
  }

  async close(): Promise<void> {
    await close(this.redis);
  }

  /** Unique among every entry any process adds: a random prefix per process and a counter. */
  private member(): string {
    this.serial += 1;
    return `${this.prefix}:${this.serial}`;
  }

  private logError(error: unknown): void {
    // Connection errors repeat every reconnect attempt while Redis is down: one line every 10 s is enough.
    const at = Date.now();
    if (at - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = at;
    this.options.log.warn('limits.redis_error', { error: error instanceof Error ? error.message : String(error) });
  }
}
