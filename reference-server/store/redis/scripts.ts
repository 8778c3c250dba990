// The store's Lua scripts. Each one changes the keys of ONE user (one hash tag, so one Redis Cluster slot), declares
// every key it touches in KEYS, and runs atomically: Redis executes a script whole, with nothing else in between, and
// with `appendfsync always` answers only once its effects are fsynced to the append-only file (a script that breaks
// off half-way is never answered, and Redis drops an unfinished MULTI/EXEC from the file's tail on load). The calling
// code (redis-store.ts) runs them with EVALSHA, falling back to EVAL when Redis does not know the script yet.
//
// Values of several parts are joined with '|'; the part that may hold anything comes last. Numbers are passed and
// stored as decimal strings (int() below), never in Lua's '%.14g' form, which would round seqs above 10^14.
import { createHash } from 'node:crypto';

export interface LuaScript {
  name: string;
  lua: string;
  sha: string;
}

const PRELUDE = `
local function int(n) return string.format('%d', n) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- One device's one-time prekeys in the order zset: members '<deviceId, 10 digits>:<serial, 16 digits>:<keyId>'.
local PK_PREFIX = 28
local function pk_range(deviceId)
  local d = tonumber(deviceId)
  return '[' .. string.format('%010d:', d), '(' .. string.format('%010d;', d)
end
local function add_prekeys(pk, pkq, deviceId, first, argv, offset, n)
  for i = 0, n - 1 do
    local keyId = argv[offset + 2 * i]
    local field = deviceId .. ':' .. keyId
    -- A keyId repeated within one upload keeps its first place and its last value, as a Map would.
    if redis.call('HEXISTS', pk, field) == 0 then
      redis.call('ZADD', pkq, 0, string.format('%010d:%016d:', tonumber(deviceId), first + i) .. keyId)
    end
    redis.call('HSET', pk, field, argv[offset + 2 * i + 1])
  end
end
local function take_prekey(pk, pkq, deviceId)
  local lo, hi = pk_range(deviceId)
  local first = redis.call('ZRANGEBYLEX', pkq, lo, hi, 'LIMIT', 0, 1)[1]
  if not first then return false, false end
  local keyId = string.sub(first, PK_PREFIX + 1)
  local field = deviceId .. ':' .. keyId
  local publicKey = redis.call('HGET', pk, field)
  redis.call('ZREM', pkq, first)
  redis.call('HDEL', pk, field)
  return keyId, publicKey
end
`;

function script(name: string, body: string): LuaScript {
  const lua = `${PRELUDE}\n${body}`;
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** KEYS user, devices, spk, pk, pkq. ARGV username, createdAt, device JSON, signed prekey JSON, n, n × (keyId, publicKey). */
export const CREATE_USER = script(
  'create-user',
  `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'username', ARGV[1], 'createdAt', ARGV[2], 'nextDeviceId', 2, 'pkSerial', n)
redis.call('HSET', KEYS[2], '1', ARGV[3])
redis.call('HSET', KEYS[3], '1', ARGV[4])
add_prekeys(KEYS[4], KEYS[5], '1', 0, ARGV, 6, n)
return 1
`,
);

/**
 * KEYS user, links. ARGV codeHash, deviceId that obtained it (0: none), expiresAt, now ('' when unknown), sweep period.
 * Drops the user's expired codes at most once per sweep period by the callers' clock (IDN-17: they can never be used).
 */
export const CREATE_LINK_CODE = script(
  'create-link-code',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[4] ~= '' then
  local now = tonumber(ARGV[4])
  local swept = redis.call('HGET', KEYS[1], 'linksSweptAt')
  if not swept or now - tonumber(swept) >= tonumber(ARGV[5]) then
    redis.call('HSET', KEYS[1], 'linksSweptAt', ARGV[4])
    local all = redis.call('HGETALL', KEYS[2])
    for i = 1, #all, 2 do
      local v = all[i + 1]
      if tonumber(string.sub(v, string.find(v, '|', 1, true) + 1)) <= now then redis.call('HDEL', KEYS[2], all[i]) end
    end
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
`,
);

/**
 * KEYS user, devices, spk, pk, pkq, links. ARGV codeHash, now, maxDevices, device JSON, signed prekey JSON, n,
 * n × (keyId, publicKey). Consumes the code and adds the device in one step; a refusal for the device count leaves it.
 */
export const LINK_DEVICE = script(
  'link-device',
  `
local code = redis.call('HGET', KEYS[6], ARGV[1])
if not code then return {'invalid-code'} end
local sep = string.find(code, '|', 1, true)
local by = string.sub(code, 1, sep - 1)
if tonumber(string.sub(code, sep + 1)) <= tonumber(ARGV[2]) or (by ~= '0' and redis.call('HEXISTS', KEYS[2], by) == 0) then
  redis.call('HDEL', KEYS[6], ARGV[1])
  return {'invalid-code'}
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'invalid-code'} end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return {'too-many-devices'} end
redis.call('HDEL', KEYS[6], ARGV[1])
local id = int(redis.call('HINCRBY', KEYS[1], 'nextDeviceId', 1) - 1)
local n = tonumber(ARGV[6])
local first = redis.call('HINCRBY', KEYS[1], 'pkSerial', n) - n
redis.call('HSET', KEYS[2], id, ARGV[4])
redis.call('HSET', KEYS[3], id, ARGV[5])
add_prekeys(KEYS[4], KEYS[5], id, first, ARGV, 7, n)
return {'linked', id}
`,
);

/**
 * KEYS user, devices, spk, pk, pkq, links, seqs, queue, enqueuedAt. ARGV deviceId, events channel, event text.
 * Removes the device with its queue, prekeys and the link codes it obtained; refuses the user's last device.
 */
export const REMOVE_DEVICE = script(
  'remove-device',
  `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {'unknown-device'} end
if redis.call('HLEN', KEYS[2]) <= 1 then return {'last-device'} end
local queued = redis.call('XLEN', KEYS[8])
redis.call('DEL', KEYS[8], KEYS[9])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
local lo, hi = pk_range(ARGV[1])
for _, member in ipairs(redis.call('ZRANGEBYLEX', KEYS[5], lo, hi)) do
  redis.call('HDEL', KEYS[4], ARGV[1] .. ':' .. string.sub(member, PK_PREFIX + 1))
end
redis.call('ZREMRANGEBYLEX', KEYS[5], lo, hi)
local all = redis.call('HGETALL', KEYS[6])
for i = 1, #all, 2 do
  local v = all[i + 1]
  if string.sub(v, 1, string.find(v, '|', 1, true) - 1) == ARGV[1] then redis.call('HDEL', KEYS[6], all[i]) end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return {'removed', queued}
`,
);

/** KEYS devices, spk. ARGV deviceId, signed prekey JSON. */
export const SET_SIGNED_PREKEY = script(
  'set-signed-prekey',
  `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`,
);

/** KEYS user, devices, pk, pkq. ARGV deviceId, maxStored, n, n × (keyId, publicKey). All stored or none [PKY-6] [PKY-7]. */
export const ADD_PREKEYS = script(
  'add-prekeys',
  `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {'unknown-device'} end
local n = tonumber(ARGV[3])
local clashes, seen = {}, {}
for i = 0, n - 1 do
  local keyId = ARGV[4 + 2 * i]
  if not seen[keyId] then
    seen[keyId] = true
    if redis.call('HEXISTS', KEYS[3], ARGV[1] .. ':' .. keyId) == 1 then table.insert(clashes, tonumber(keyId)) end
  end
end
if #clashes > 0 then
  table.sort(clashes)
  return {'duplicate', clashes}
end
local lo, hi = pk_range(ARGV[1])
if redis.call('ZLEXCOUNT', KEYS[4], lo, hi) + n > tonumber(ARGV[2]) then return {'too-many'} end
local first = redis.call('HINCRBY', KEYS[1], 'pkSerial', n) - n
add_prekeys(KEYS[3], KEYS[4], ARGV[1], first, ARGV, 4, n)
return {'stored', redis.call('ZLEXCOUNT', KEYS[4], lo, hi)}
`,
);

/**
 * KEYS user, devices, spk, pk, pkq. ARGV deviceId ('' for every device), excluded deviceId ('' for none).
 * Takes the oldest one-time prekey of each device: popped inside the script, so no two fetches ever get the same key,
 * and durable before the bundle is answered [PKY].
 */
export const TAKE_BUNDLES = script(
  'take-bundles',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown-user'} end
local ids = {}
if ARGV[1] ~= '' then
  if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {'unknown-device'} end
  ids[1] = tonumber(ARGV[1])
else
  for _, id in ipairs(redis.call('HKEYS', KEYS[2])) do table.insert(ids, tonumber(id)) end
  table.sort(ids)
end
local out = {'bundles'}
for _, d in ipairs(ids) do
  local id = int(d)
  if id ~= ARGV[2] then
    local keyId, publicKey = take_prekey(KEYS[4], KEYS[5], id)
    local lo, hi = pk_range(id)
    table.insert(out, {id, redis.call('HGET', KEYS[2], id), redis.call('HGET', KEYS[3], id), keyId, publicKey, redis.call('ZLEXCOUNT', KEYS[5], lo, hi)})
  end
end
return out
`,
);

/** KEYS user, devices. The account as [username, createdAt, deviceIds], or nil. */
export const GET_ACCOUNT = script(
  'get-account',
  `
local u = redis.call('HMGET', KEYS[1], 'username', 'createdAt')
if not u[1] then return false end
return {u[1], u[2], redis.call('HKEYS', KEYS[2])}
`,
);

/** KEYS devices, spk. ARGV deviceId. [device JSON, signed prekey JSON], each nil when absent. */
export const GET_DEVICE = script(
  'get-device',
  `
return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[1])}
`,
);

/**
 * KEYS the sender's deduplication claim. ARGV to, serverTime, forgetAfter, ttlMs, leaseMs, value to replace ('' for
 * none). Step 1 of a send (see the send protocol in redis-store.ts). The claim is 'serverTime|forgetAfter|leaseUntil|to'.
 * Answers ['claimed', value, leaseUntil, fresh] or ['other', value, to, leaseUntil, now] for a live claim of the same
 * messageId to another recipient.
 */
export const CLAIM_SEND = script(
  'claim-send',
  `
local to, serverTime, leaseMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[5])
local now = now_ms()
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[6] then
  local st, fa, lu, claimTo = string.match(current, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if tonumber(fa) > serverTime then
    if claimTo == to then
      local value = st .. '|' .. fa .. '|' .. int(now + leaseMs) .. '|' .. to
      redis.call('SET', KEYS[1], value, 'KEEPTTL')
      return {'claimed', value, now + leaseMs, 0}
    end
    return {'other', current, claimTo, tonumber(lu), now}
  end
end
local value = ARGV[2] .. '|' .. ARGV[3] .. '|' .. int(now + leaseMs) .. '|' .. to
redis.call('SET', KEYS[1], value, 'PX', ARGV[4])
return {'claimed', value, now + leaseMs, 1}
`,
);

/** KEYS key. ARGV value. Deletes the key only if it still holds the value. */
export const DELETE_IF = script(
  'delete-if',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
);

/**
 * KEYS user, devices, seqs, acceptance marker, n × (queue, enqueuedAt). ARGV fromUser, fromDevice, toUser, serverTime,
 * forgetAfter, ttlMs, deadline (ms, 0 for none), maxQueueItems, events channel, event prefix, n,
 * n × (deviceId, item JSON). Step 2 of a send: the checks of [MSG-2] from deduplication on, in order, then every item
 * and the acceptance marker at once.
 */
export const ENQUEUE_MESSAGE = script(
  'enqueue-message',
  `
local fromUser, fromDevice, toUser = ARGV[1], ARGV[2], ARGV[3]
local serverTime = tonumber(ARGV[4])
local marker = redis.call('GET', KEYS[4])
if marker then
  local sep = string.find(marker, '|', 1, true)
  if tonumber(string.sub(marker, sep + 1)) > serverTime then return {'duplicate', string.sub(marker, 1, sep - 1)} end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown-user'} end
local n = tonumber(ARGV[11])
local toSelf = toUser == fromUser
local expected, expectedSet = {}, {}
for _, id in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not (toSelf and id == fromDevice) then
    local d = tonumber(id)
    table.insert(expected, d)
    expectedSet[d] = true
  end
end
table.sort(expected)
local given, givenSet, repeated = {}, {}, false
for i = 1, n do
  local d = tonumber(ARGV[10 + 2 * i])
  if givenSet[d] then repeated = true else givenSet[d] = true; table.insert(given, d) end
end
local exact = #expected > 0 and not repeated and #given == #expected
if exact then for _, d in ipairs(given) do if not expectedSet[d] then exact = false; break end end end
if not exact then
  local missing, extra = {}, {}
  for _, d in ipairs(expected) do if not givenSet[d] then table.insert(missing, d) end end
  for _, d in ipairs(given) do if #expected == 0 or not expectedSet[d] then table.insert(extra, d) end end
  table.sort(extra)
  return {'stale-devices', missing, extra}
end
local full = {}
for i = 1, n do
  if redis.call('XLEN', KEYS[3 + 2 * i]) >= tonumber(ARGV[8]) then table.insert(full, tonumber(ARGV[10 + 2 * i])) end
end
if #full > 0 then
  table.sort(full)
  return {'queue-full', full}
end
if tonumber(ARGV[7]) > 0 and now_ms() >= tonumber(ARGV[7]) then return {'lease-expired'} end
local out = {'accepted'}
for i = 1, n do
  local id = ARGV[10 + 2 * i]
  local q = KEYS[3 + 2 * i]
  local seq = int(redis.call('HINCRBY', KEYS[3], id, 1))
  redis.call('XADD', q, seq .. '-0', 'k', 'm', 'j', ARGV[11 + 2 * i])
  redis.call('ZADD', KEYS[4 + 2 * i], ARGV[4], seq)
  redis.call('PUBLISH', ARGV[9], ARGV[10] .. ' ' .. id .. ' ' .. seq)
  table.insert(out, id)
  table.insert(out, seq)
  table.insert(out, redis.call('XLEN', q))
end
redis.call('SET', KEYS[4], ARGV[4] .. '|' .. ARGV[5], 'PX', ARGV[6])
return out
`,
);

/**
 * KEYS user, devices, seqs, queue, enqueuedAt. ARGV deviceId, maxQueueItems ('' when exempt [RCP-9]), enqueuedAt,
 * events channel, event prefix, n, n × receipt JSON. Appends n receipt items to one device's queue.
 */
export const ENQUEUE_RECEIPTS = script(
  'enqueue-receipts',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown-user'} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {'unknown-device'} end
if ARGV[2] ~= '' and redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[2]) then return {'queue-full'} end
local n = tonumber(ARGV[6])
local seqs = {}
local seq = '0'
for i = 1, n do
  seq = int(redis.call('HINCRBY', KEYS[3], ARGV[1], 1))
  redis.call('XADD', KEYS[4], seq .. '-0', 'k', 'r', 'j', ARGV[6 + i])
  redis.call('ZADD', KEYS[5], ARGV[3], seq)
  table.insert(seqs, seq)
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. ARGV[1] .. ' ' .. seq)
return {'accepted', redis.call('XLEN', KEYS[4]), seqs}
`,
);

/**
 * KEYS user, queue, enqueuedAt, outbox. ARGV deviceId, at, maxReceiptIds, seqs... Step 1 of an acknowledgement (see
 * redis-store.ts): removes the items and, in the same atomic write, records the delivered receipts they owe in the
 * user's receipt outbox: one entry {d, at, max, t (Redis time), m: [[fromUserId, fromDeviceId, messageId], ...]}.
 * Answers [queue length after, removed seqs, entry id ('' when no message item was removed), m].
 */
export const ACK_ITEMS = script(
  'ack-items',
  `
local removed, owed = {}, {}
for i = 4, #ARGV do
  local id = ARGV[i] .. '-0'
  local entry = redis.call('XRANGE', KEYS[2], id, id)[1]
  if entry then
    local fields, kind, json = entry[2], '', ''
    for f = 1, #fields, 2 do
      if fields[f] == 'k' then kind = fields[f + 1] elseif fields[f] == 'j' then json = fields[f + 1] end
    end
    redis.call('XDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[3], ARGV[i])
    table.insert(removed, ARGV[i])
    if kind == 'm' then
      local m = cjson.decode(json)
      table.insert(owed, {m.f[1], int(m.f[2]), m.id})
    end
  end
end
local entryId = ''
if #owed > 0 then
  entryId = ARGV[1] .. '.' .. int(redis.call('HINCRBY', KEYS[1], 'ackSerial', 1))
  redis.call('HSET', KEYS[4], entryId, cjson.encode({d = ARGV[1], at = ARGV[2], max = ARGV[3], t = int(now_ms()), m = owed}))
end
return {redis.call('XLEN', KEYS[2]), removed, entryId, owed}
`,
);

/** KEYS queue, enqueuedAt. ARGV cutoff, limit. Removes up to `limit` items enqueued before the cutoff: [removed, looked at]. */
export const EXPIRE_ITEMS = script(
  'expire-items',
  `
local seqs = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, seq in ipairs(seqs) do
  removed = removed + redis.call('XDEL', KEYS[1], seq .. '-0')
  redis.call('ZREM', KEYS[2], seq)
end
return {removed, #seqs}
`,
);
