// The Lua scripts of the Redis session bus (redis-bus.ts). Each runs atomically on the shard of its keys; the per-user
// keys share the hash tag `{<userId>}`. Key layout (next to the store's, reference-server/store/redis/keys.ts):
//
//   tw:{U}:bus:owners     hash    deviceId → "<processId> <claim>": the claim holding the device's session [DLV-34]
//   tw:{U}:bus:presence   hash    c:<deviceId> → last claim number of the device (never decreases); v → the version of
//                                 U's last presence transition; seen → U's last-seen time [PRS-2]
//   tw:{U}:bus:delivered  hash    deviceId → the highest seq ever written in a deliver frame for the device [DLV-10]
//   tw:{U}:bus:seen       hash    deviceId → the device's latest authentication time (ms), from any process [IDN-23]
//   tw:bus:procs          zset    processId → when its lease expires (ms, Redis server clock)
//   tw:bus:proc:<P>       hash    "<userId> <deviceId>" → 1 for each device process P holds or is claiming
//   tw:bus                channel presence transitions, typing, prekeys_low, device removals (JSON, member k)
//   tw:bus:p:<P>          channel requests to process P and their answers (replace / replaced)
//
// A user is online exactly while tw:{U}:bus:owners is not empty [PRS-1]: a claim adds or overwrites its device's
// entry, a release deletes it only if it still names that claim. So a replacement (the entry overwritten by a later
// claim) is no transition [DLV-37], and the transitions are published from inside the scripts, in the order Redis
// made them, each with the version it produced.
import { createHash } from 'node:crypto';
import type { RedisClient } from '../store/redis/connection.ts';

export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** EVALSHA, loading the script with EVAL when Redis does not know it (first use, or after a restart). */
  async run(redis: RedisClient, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * KEYS owners, presence. ARGV deviceId, processId, broadcast channel, userId.
 * Takes the next claim of the device and makes it the holder; publishes `online` when U had no holder.
 * Returns {claim, previous holder or ''}.
 */
export const CLAIM = new LuaScript(`
local claim = redis.call('HINCRBY', KEYS[2], 'c:' .. ARGV[1], 1)
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local wasOnline = redis.call('HLEN', KEYS[1]) > 0
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. claim)
if not wasOnline then
  local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
  redis.call('PUBLISH', ARGV[3], cjson.encode({k = 'presence', u = ARGV[4], on = true, v = v}))
end
return {claim, previous or ''}
`);

/**
 * KEYS owners, presence. ARGV deviceId, holder, mode ('exact': the holder must be exactly ARGV[2]; 'prefix': it must
 * start with ARGV[2]), broadcast channel, userId, now (ms).
 * Removes the device's holder if it matches; publishes `offline` with the last-seen time when U has no holder left.
 * Returns 1 when it removed the holder, 0 otherwise.
 */
export const RELEASE = new LuaScript(`
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if not holder then return 0 end
if ARGV[3] == 'exact' then
  if holder ~= ARGV[2] then return 0 end
elseif string.sub(holder, 1, string.len(ARGV[2])) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then
  local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
  redis.call('HSET', KEYS[2], 'seen', ARGV[6])
  redis.call('PUBLISH', ARGV[4], cjson.encode({k = 'presence', u = ARGV[5], on = false, at = ARGV[6], v = v}))
end
return 1
`);

/** KEYS owners, presence. Returns {holders, version, last-seen or ''}: one consistent reading of U's presence. */
export const SNAPSHOT = new LuaScript(`
local holders = redis.call('HLEN', KEYS[1])
local meta = redis.call('HMGET', KEYS[2], 'v', 'seen')
return {holders, meta[1] or '0', meta[2] or ''}
`);

/**
 * KEYS procs. ARGV processId, ttl (ms), mode ('join' or 'renew'). Sets the process's lease to expire ttl from now on
 * the Redis clock. 'renew' of a lease that is gone (the process was declared dead and reaped) restores nothing and
 * returns 0; otherwise returns 1.
 */
export const LEASE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == 'renew' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
`);

/** KEYS procs. ARGV limit. The processes whose lease expired, on the Redis clock. */
export const EXPIRED = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`);

/**
 * KEYS delivered (or seen). ARGV deviceId, value. Raises the device's field to value; never lowers it. Serves the
 * delivered marks [DLV-10] and the authentication times [IDN-23] alike.
 */
export const RAISE_FIELD = new LuaScript(`
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
`);
