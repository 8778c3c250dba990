// Section 3 of PROTOCOL.md: the prekey directory. Uploading one-time prekeys and counting them, rotating the signed
// prekey, fetching bundles (per device, without the requester's own device, each one-time prekey handed out once even
// under concurrent fetches, none left → no member), the bundle-fetch rate limit and the low-water notification.
// Limits come from the server's `welcome`; bundle fetches that meet 429 RATE_LIMITED wait `retryAfterMs` and retry
// (PKY-17: a 429 consumes nothing), so the cases stay fair to a server with a small `prekeyFetchesPerMinute`.
import type { Limits, PreKey, PreKeyBundleResponse, PreKeyCountResponse, OneTimePreKeysResponse } from '../../spec/index.ts';
import type { HttpResult } from '../../reference-client/wire/http.ts';
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { httpErrorOf, must } from '../expect.ts';

/** Uploads beyond this many batches make a case UNSUPPORTED rather than slow. */
const MAX_UPLOAD_BATCHES = 50;
/** Bundle fetches the rate-limit case makes at most before expecting 429. */
const MAX_RATE_LIMIT_PROBE = 200;
/** Total concurrent fetches of the one-time prekey race. */
const RACE_FETCHES = 20;
/** Devices fetching one target's bundle at once in the per-target limit case, and fetches each. */
const TARGET_REQUESTERS = 3;
const FETCHES_PER_REQUESTER = 4;
/**
 * How long a case listens for prekeys_low frames that may still come: a server may coalesce the notifications of
 * consumptions within one second into one frame (PKY-21), so a second and some margin for the network.
 */
const COALESCE_MS = 1500;

/** The limits the server advertises, read from the `welcome` of a session of `device`. */
async function limitsOf(ctx: CaseContext, device: Device): Promise<Limits> {
  return (await ctx.connect(device)).limits;
}

/** `n` one-time prekeys with keyIds `first`, `first + 1`, … */
function preKeys(ctx: CaseContext, first: number, n: number): PreKey[] {
  return Array.from({ length: n }, (_, i) => ({ keyId: first + i, publicKey: ctx.material.publicKey() }));
}

async function upload(ctx: CaseContext, device: Device, keys: PreKey[]): Promise<HttpResult<OneTimePreKeysResponse>> {
  return ctx.http<OneTimePreKeysResponse>('uploadOneTimePreKeys', { body: { preKeys: keys }, credentials: device });
}

/** Uploads `keys` in batches of at most `prekeyBatchMax`, each answered 200 (PKY-8). */
async function uploadAll(ctx: CaseContext, device: Device, keys: PreKey[], limits: Limits): Promise<void> {
  for (let i = 0; i < keys.length; i += limits.prekeyBatchMax) {
    must.status(await upload(ctx, device, keys.slice(i, i + limits.prekeyBatchMax)), 200, 'PKY-8', `uploading prekeys from keyId ${keys[i]!.keyId}`);
  }
}

async function count(ctx: CaseContext, device: Device): Promise<PreKeyCountResponse> {
  const result = await ctx.http<PreKeyCountResponse>('getPreKeyCount', { credentials: device });
  must.status(result, 200, 'PKY-10', `prekey count of ${device.label}`);
  return result.body;
}

/** GET /v1/users/{userId}/keys; a 429 RATE_LIMITED is waited out (`retryAfterMs`, not case time) and retried. */
async function fetchBundle(ctx: CaseContext, requester: Device, userId: string, deviceId?: number): Promise<HttpResult<PreKeyBundleResponse>> {
  for (let attempt = 0; ; attempt++) {
    const result = await ctx.http<PreKeyBundleResponse>('getPreKeyBundle', {
      params: { userId },
      ...(deviceId === undefined ? {} : { query: { deviceId } }),
      credentials: requester,
    });
    const error = httpErrorOf(result);
    if (result.status !== 429 || error?.code !== 'RATE_LIMITED' || attempt >= 5) return result;
    const waitMs = Math.min(61_000, typeof error.retryAfterMs === 'number' ? error.retryAfterMs : 1000) + 50;
    ctx.note(`bundle fetch rate-limited; waiting ${waitMs} ms`);
    ctx.extend(waitMs);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

/** A fetch that must succeed (PKY-11 / PKY-13). */
async function bundle(ctx: CaseContext, requester: Device, target: User, deviceId?: number): Promise<PreKeyBundleResponse> {
  const result = await fetchBundle(ctx, requester, target.userId, deviceId);
  must.status(result, 200, deviceId === undefined ? 'PKY-11' : 'PKY-13', `bundle of ${target.label}${deviceId === undefined ? '' : `/${deviceId}`} for ${requester.label}`);
  must.equal(result.body.userId, target.userId, 'PKY-11', 'userId of the bundle');
  return result.body;
}

/** The registered keys of `device` as a bundle entry shows them (PKY-1), without the one-time prekey. */
function expectedEntry(device: Device) {
  const r = device.registration;
  return { deviceId: device.deviceId, registrationId: r.registrationId, identityKey: r.identityKey, signedPreKey: r.signedPreKey };
}

function withoutOneTime(entry: PreKeyBundleResponse['devices'][number]) {
  const { oneTimePreKey: _, ...rest } = entry;
  return rest;
}

export const cases: ConformanceCase[] = [
  {
    id: '3.2/upload-and-count',
    requirements: ['PKY-8', 'PKY-10'],
    level: 'must',
    title: 'uploading one-time prekeys answers 200 {count}; GET /v1/keys/count reports that count, lowWater and the signed prekey id',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const limits = await limitsOf(ctx, device);
      must.equal(await count(ctx, device), { oneTimePreKeys: 0, lowWater: limits.prekeyLowWater, signedPreKeyId: device.registration.signedPreKey.keyId }, 'PKY-10', 'count before any upload');
      const n = Math.min(3, limits.prekeyBatchMax, limits.maxStoredPreKeys);
      const first = await upload(ctx, device, preKeys(ctx, 100, n));
      must.status(first, 200, 'PKY-8', 'first upload');
      must.equal(first.body, { count: n }, 'PKY-8', 'answer to the first upload');
      if (limits.maxStoredPreKeys > n) {
        const second = await upload(ctx, device, preKeys(ctx, 200, 1));
        must.status(second, 200, 'PKY-8', 'second upload');
        must.equal(second.body, { count: n + 1 }, 'PKY-8', 'answer to the second upload');
      }
      const total = Math.min(n + 1, limits.maxStoredPreKeys);
      must.equal((await count(ctx, device)).oneTimePreKeys, total, 'PKY-10', 'oneTimePreKeys after the uploads');
    },
  },
  {
    id: '3.2/invalid-batch-bad-request',
    requirements: ['PKY-5'],
    level: 'must',
    title: 'a batch that repeats a keyId or exceeds prekeyBatchMax answers 400 BAD_REQUEST and stores nothing',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const limits = await limitsOf(ctx, device);
      const repeated = preKeys(ctx, 10, 2);
      repeated[1]!.keyId = 10;
      must.httpError(await upload(ctx, device, repeated), 400, 'BAD_REQUEST', 'PKY-5', 'a batch repeating keyId 10');
      must.httpError(await upload(ctx, device, preKeys(ctx, 1000, limits.prekeyBatchMax + 1)), 400, 'BAD_REQUEST', 'PKY-5', `a batch of prekeyBatchMax + 1 (${limits.prekeyBatchMax + 1})`);
      must.equal((await count(ctx, device)).oneTimePreKeys, 0, 'PKY-5', 'oneTimePreKeys after the rejected batches');
    },
  },
  {
    id: '3.2/duplicate-prekey-id',
    requirements: ['PKY-6'],
    level: 'must',
    title: 'a batch reusing keyIds of stored one-time prekeys answers 409 DUPLICATE_PREKEY_ID with details.keyIds ascending, storing nothing',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const limits = await limitsOf(ctx, device);
      if (limits.prekeyBatchMax < 3 || limits.maxStoredPreKeys < 3) ctx.unsupported(`needs prekeyBatchMax and maxStoredPreKeys of at least 3 (${limits.prekeyBatchMax}, ${limits.maxStoredPreKeys})`);
      must.status(await upload(ctx, device, preKeys(ctx, 10, 3)), 200, 'PKY-8', 'storing keyIds 10..12');
      const clash = [...preKeys(ctx, 13, 1), ...preKeys(ctx, 12, 1), ...preKeys(ctx, 10, 1)];
      const result = await upload(ctx, device, clash);
      must.httpError(result, 409, 'DUPLICATE_PREKEY_ID', 'PKY-6', 'uploading keyIds 13, 12, 10');
      must.equal(httpErrorOf(result)?.details, { keyIds: [10, 12] }, 'PKY-6', 'details of DUPLICATE_PREKEY_ID');
      must.equal((await count(ctx, device)).oneTimePreKeys, 3, 'PKY-6', 'oneTimePreKeys after the rejected batch (13 not stored)');
    },
  },
  {
    id: '3.2/too-many-prekeys',
    requirements: ['PKY-7', 'PKY-6'],
    level: 'must',
    title: 'an upload beyond maxStoredPreKeys answers 409 TOO_MANY_PREKEYS and stores nothing; a duplicate keyId is reported first',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const limits = await limitsOf(ctx, device);
      const max = limits.maxStoredPreKeys;
      if (Math.ceil(max / limits.prekeyBatchMax) > MAX_UPLOAD_BATCHES) ctx.unsupported(`filling maxStoredPreKeys (${max}) takes more than ${MAX_UPLOAD_BATCHES} uploads`);
      await uploadAll(ctx, device, preKeys(ctx, 1, max), limits);
      must.equal((await count(ctx, device)).oneTimePreKeys, max, 'PKY-8', 'oneTimePreKeys when full');
      must.httpError(await upload(ctx, device, preKeys(ctx, max + 1, 1)), 409, 'TOO_MANY_PREKEYS', 'PKY-7', 'one more prekey than maxStoredPreKeys');
      const result = await upload(ctx, device, preKeys(ctx, 1, 1));
      must.httpError(result, 409, 'DUPLICATE_PREKEY_ID', 'PKY-7', 'a full store and a duplicate keyId: PKY-6 comes first');
      must.equal(httpErrorOf(result)?.details, { keyIds: [1] }, 'PKY-6', 'details of DUPLICATE_PREKEY_ID');
      must.equal((await count(ctx, device)).oneTimePreKeys, max, 'PKY-7', 'oneTimePreKeys after the rejected uploads');
    },
  },
  {
    id: '3.1/signed-prekey-rotation',
    requirements: ['PKY-2', 'PKY-3', 'PKY-1', 'PKY-10'],
    level: 'must',
    title: 'PUT /v1/keys/signed answers 204 whatever the keyId; bundles and the count show the new signed prekey, the identity key stays',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ prekeys: 1 });
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const oneTimeKeyId = b1.registration.oneTimePreKeys![0]!.keyId;
      const current = b1.registration.signedPreKey.keyId;
      // PKY-3: the keyId of the current signed prekey, then one used by a one-time prekey.
      for (const keyId of [current, oneTimeKeyId === current ? current + 1 : oneTimeKeyId]) {
        const signedPreKey = ctx.material.signedPreKey(b1.registration.identityKey, keyId);
        must.status(await ctx.http('putSignedPreKey', { body: { signedPreKey }, credentials: b1 }), 204, 'PKY-3', `a signed prekey with keyId ${keyId}`);
        must.equal((await count(ctx, b1)).signedPreKeyId, keyId, 'PKY-2', 'signedPreKeyId after the rotation');
        const entry = (await bundle(ctx, a1, bob, b1.deviceId)).devices[0];
        must.equal(entry?.signedPreKey, signedPreKey, 'PKY-2', 'signedPreKey of the bundle after the rotation');
        must.equal(entry?.identityKey, b1.registration.identityKey, 'PKY-1', 'identityKey after the rotation');
      }
    },
  },
  {
    id: '3.3/bundle-per-device',
    requirements: ['PKY-11', 'PKY-12', 'PKY-13', 'PKY-1', 'PKY-16'],
    level: 'must',
    title: "a bundle has one entry per device in ascending deviceId order, the requester's own device left out; ?deviceId narrows it",
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 3 });
      const a1 = alice.devices[0]!;
      const sorted = [...bob.devices].sort((x, y) => x.deviceId - y.deviceId);
      const all = await bundle(ctx, a1, bob);
      must.equal(all.devices.map(withoutOneTime), sorted.map(expectedEntry), 'PKY-11', `bundle of ${bob.label} for another user`);
      must.hold(all.devices.every((d) => !('oneTimePreKey' in d)), 'PKY-16', 'no oneTimePreKey member for devices without one-time prekeys', all.devices);
      const own = bob.devices[1]!;
      const mine = await bundle(ctx, own, bob);
      must.equal(mine.devices.map((d) => d.deviceId), sorted.filter((d) => d !== own).map((d) => d.deviceId), 'PKY-12', `bundle of its own user for ${own.label}`);
      const single = await bundle(ctx, a1, bob, own.deviceId);
      must.equal(single.devices.map(withoutOneTime), [expectedEntry(own)], 'PKY-13', `bundle of ${own.label} alone`);
      must.equal((await bundle(ctx, a1, alice)).devices, [], 'PKY-12', 'a one-device user fetching its own bundle');
    },
  },
  {
    id: '3.3/unknown-user-and-device',
    requirements: ['PKY-14'],
    level: 'must',
    title: 'a bundle of an unknown user answers 404 UNKNOWN_USER, of an unknown device of a known user 404 UNKNOWN_DEVICE',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a1 = alice.devices[0]!;
      const nobody = `nobody-${ctx.material.rng.int(1, 1e9)}`;
      must.httpError(await fetchBundle(ctx, a1, nobody), 404, 'UNKNOWN_USER', 'PKY-14', 'unknown user');
      must.httpError(await fetchBundle(ctx, a1, nobody, 1), 404, 'UNKNOWN_USER', 'PKY-14', 'unknown user with ?deviceId');
      must.httpError(await fetchBundle(ctx, a1, bob.userId, 2147483647), 404, 'UNKNOWN_DEVICE', 'PKY-14', 'unknown device of a known user');
    },
  },
  {
    id: '3.3/one-time-prekey-handed-out-once',
    requirements: ['PKY-15', 'PKY-16', 'PKY-10'],
    level: 'must',
    title: 'under concurrent fetches every one-time prekey is handed out at most once; once none is left entries omit oneTimePreKey',
    async run(ctx) {
      const alice = await ctx.user();
      const carol = await ctx.user();
      const bob = await ctx.user();
      const b1 = bob.devices[0]!;
      const limits = await limitsOf(ctx, alice.devices[0]!);
      const perRequester = Math.min(limits.prekeyFetchesPerMinute, RACE_FETCHES / 2);
      const fetches = perRequester * 2;
      const stored = Math.max(1, Math.min(limits.prekeyBatchMax, limits.maxStoredPreKeys, fetches - Math.ceil(fetches / 4)));
      const uploaded = preKeys(ctx, 500, stored);
      await uploadAll(ctx, b1, uploaded, limits);
      const requesters = [alice.devices[0]!, carol.devices[0]!];
      const results = await Promise.all(requesters.flatMap((r) => Array.from({ length: perRequester }, () => fetchBundle(ctx, r, bob.userId, b1.deviceId))));
      for (const result of results) must.status(result, 200, 'PKY-13', 'a concurrent bundle fetch');
      const handed = results.map((r) => r.body.devices[0]?.oneTimePreKey).filter((k): k is PreKey => k !== undefined);
      const ids = handed.map((k) => k.keyId);
      must.equal(new Set(ids).size, ids.length, 'PKY-15', `distinct one-time prekeys across ${fetches} concurrent fetches (got keyIds ${ids.join(', ')})`);
      for (const key of handed) must.hold(uploaded.some((u) => u.keyId === key.keyId && u.publicKey === key.publicKey), 'PKY-15', 'an uploaded one-time prekey', key);
      must.equal(handed.length, Math.min(stored, fetches), 'PKY-15', `fetches answered with a one-time prekey (${stored} stored, ${fetches} fetches)`);
      must.equal((await count(ctx, b1)).oneTimePreKeys, stored - handed.length, 'PKY-15', 'oneTimePreKeys left after the fetches');
      if (handed.length === stored) {
        const entry = (await bundle(ctx, alice.devices[0]!, bob, b1.deviceId)).devices[0]!;
        must.hold(!('oneTimePreKey' in entry), 'PKY-16', 'no oneTimePreKey member once all are consumed', entry);
        must.equal(withoutOneTime(entry), expectedEntry(b1), 'PKY-1', 'the rest of the entry once all are consumed');
      }
    },
  },
  {
    id: '3.3/bundle-fetch-rate-limited',
    requirements: ['PKY-17'],
    level: 'must',
    title: 'a device over prekeyFetchesPerMinute gets 429 RATE_LIMITED with retryAfterMs, and the fetch consumes nothing',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ prekeys: 1 });
      const a1 = alice.devices[0]!;
      const limit = (await limitsOf(ctx, a1)).prekeyFetchesPerMinute;
      if (limit > MAX_RATE_LIMIT_PROBE) ctx.unsupported(`prekeyFetchesPerMinute ${limit} is above the ${MAX_RATE_LIMIT_PROBE} fetches this case makes`);
      // Fetching its own one-device user's bundle counts (PKY-17) and consumes nothing of anyone's.
      for (let i = 0; i < limit; i++) {
        const result = await ctx.http('getPreKeyBundle', { params: { userId: alice.userId }, credentials: a1 });
        if (result.status === 429) ctx.unsupported(`fetch ${i + 1} of ${limit} met 429: the server also limits fetches per target user (PKY-18)`);
        must.status(result, 200, 'PKY-17', `fetch ${i + 1} of ${limit}`);
      }
      const over = await ctx.http('getPreKeyBundle', { params: { userId: bob.userId }, credentials: a1 });
      must.httpError(over, 429, 'RATE_LIMITED', 'PKY-17', `fetch ${limit + 1} within 60 s`);
      const retryAfterMs = httpErrorOf(over)?.retryAfterMs;
      must.hold(typeof retryAfterMs === 'number' && retryAfterMs >= 0, 'PKY-17', 'a retryAfterMs', over.body);
      must.equal((await count(ctx, bob.devices[0]!)).oneTimePreKeys, 1, 'PKY-17', 'one-time prekeys of the target after the refused fetch');
    },
  },
  {
    id: '3.4/prekeys-low-after-fetch',
    requirements: ['PKY-20'],
    level: 'must',
    title: 'a fetch that leaves a device below prekeyLowWater sends prekeys_low {remaining, lowWater} to its session',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const b1 = bob.devices[0]!;
      const b = await ctx.connect(b1);
      const limits = b.limits;
      const lowWater = limits.prekeyLowWater;
      if (lowWater === 0) ctx.unsupported('the server advertises prekeyLowWater 0 (prekeys_low disabled)');
      if (Math.ceil(lowWater / limits.prekeyBatchMax) > MAX_UPLOAD_BATCHES) ctx.unsupported(`uploading prekeyLowWater (${lowWater}) keys takes more than ${MAX_UPLOAD_BATCHES} uploads`);
      await uploadAll(ctx, b1, preKeys(ctx, 1, lowWater), limits);
      const entry = (await bundle(ctx, alice.devices[0]!, bob, b1.deviceId)).devices[0];
      must.hold(entry?.oneTimePreKey !== undefined, 'PKY-15', 'a one-time prekey in the bundle', entry);
      // Frames sent before the fetch (PKY-22 at session start, when the device had none) report another `remaining`.
      const low = await b.next('prekeys_low', 'PKY-20', (f) => f.remaining === lowWater - 1);
      must.equal(low, { type: 'prekeys_low', remaining: lowWater - 1, lowWater }, 'PKY-20', 'prekeys_low after the fetch');
    },
  },
  {
    id: '3.4/prekeys-low-on-session-start',
    requirements: ['PKY-22'],
    level: 'must',
    title: 'a session of a device with fewer than prekeyLowWater one-time prekeys gets prekeys_low after welcome',
    async run(ctx) {
      const bob = await ctx.user();
      const b = await ctx.connect(bob.devices[0]!);
      const lowWater = b.limits.prekeyLowWater;
      if (lowWater === 0) ctx.unsupported('the server advertises prekeyLowWater 0 (prekeys_low disabled)');
      const low = await b.next('prekeys_low', 'PKY-22');
      must.equal(low, { type: 'prekeys_low', remaining: 0, lowWater }, 'PKY-22', 'prekeys_low of a device without one-time prekeys');
    },
  },
  {
    id: '3.3/per-target-limit-consumes-nothing',
    requirements: ['PKY-18', 'PKY-15'],
    level: 'must',
    title: 'concurrent fetches of one target by several devices get 200, or 429 RATE_LIMITED under a per-target limit that consumes nothing',
    async run(ctx) {
      const bob = await ctx.user();
      const b1 = bob.devices[0]!;
      const requesters: Device[] = [];
      for (let i = 0; i < TARGET_REQUESTERS; i++) requesters.push((await ctx.user()).devices[0]!);
      const limits = await limitsOf(ctx, requesters[0]!);
      // Each requester stays within its own limit (PKY-17), so only a per-target limit (PKY-18) may refuse a fetch.
      const perRequester = Math.min(limits.prekeyFetchesPerMinute, FETCHES_PER_REQUESTER);
      const stored = Math.min(limits.prekeyBatchMax, limits.maxStoredPreKeys, Math.max(1, Math.floor((TARGET_REQUESTERS * perRequester) / 2)));
      const uploaded = preKeys(ctx, 1, stored);
      await uploadAll(ctx, b1, uploaded, limits);
      const results = await Promise.all(
        requesters.flatMap((r) => Array.from({ length: perRequester }, () => ctx.http<PreKeyBundleResponse>('getPreKeyBundle', { params: { userId: bob.userId }, query: { deviceId: b1.deviceId }, credentials: r }))),
      );
      let answered = 0;
      for (const result of results) {
        if (result.status === 429) {
          must.httpError(result, 429, 'RATE_LIMITED', 'PKY-18', 'a fetch refused by a per-target limit');
          const retryAfterMs = httpErrorOf(result)?.retryAfterMs;
          must.hold(typeof retryAfterMs === 'number' && retryAfterMs >= 1, 'PKY-18', 'a retryAfterMs of at least 1 ms with RATE_LIMITED', result.body);
        } else {
          must.status(result, 200, 'PKY-13', 'a concurrent bundle fetch');
          answered++;
        }
      }
      const handed = results.flatMap((r) => (r.status === 200 && r.body.devices[0]?.oneTimePreKey ? [r.body.devices[0].oneTimePreKey] : []));
      must.equal(new Set(handed.map((k) => k.keyId)).size, handed.length, 'PKY-15', `distinct one-time prekeys (keyIds ${handed.map((k) => k.keyId).join(', ')})`);
      must.equal(handed.length, Math.min(stored, answered), 'PKY-15', `200 answers carrying a one-time prekey (${stored} stored, ${answered} answered 200)`);
      must.equal((await count(ctx, b1)).oneTimePreKeys, stored - handed.length, 'PKY-18', `one-time prekeys left after ${results.length - answered} refused fetches`);
    },
  },
  {
    id: '3.4/prekeys-low-coalesced-or-separate',
    requirements: ['PKY-20', 'PKY-21'],
    level: 'must',
    title: 'fetches in quick succession below prekeyLowWater get one prekeys_low each, or fewer coalesced ones; the last carries the latest remaining',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const limits = await limitsOf(ctx, a1);
      const lowWater = limits.prekeyLowWater;
      if (lowWater === 0) ctx.unsupported('the server advertises prekeyLowWater 0 (prekeys_low disabled)');
      if (Math.ceil(lowWater / limits.prekeyBatchMax) > MAX_UPLOAD_BATCHES) ctx.unsupported(`uploading prekeyLowWater (${lowWater}) keys takes more than ${MAX_UPLOAD_BATCHES} uploads`);
      // Exactly lowWater keys: not fewer than lowWater, so the session starts without a prekeys_low (PKY-22).
      await uploadAll(ctx, b1, preKeys(ctx, 1, lowWater), limits);
      const b = await ctx.connect(b1);
      const mark = b.received.length;
      const fetches = Math.min(3, lowWater);
      for (let i = 0; i < fetches; i++) {
        const entry = (await bundle(ctx, a1, bob, b1.deviceId)).devices[0];
        must.hold(entry?.oneTimePreKey !== undefined, 'PKY-15', 'a one-time prekey in the bundle', entry);
      }
      const latest = lowWater - fetches;
      await b.next('prekeys_low', 'PKY-20', (f) => f.remaining === latest);
      await b.quiet(COALESCE_MS);
      const frames = b.received.slice(mark).map((r) => r.frame).filter((f) => f.type === 'prekeys_low');
      for (const frame of frames) {
        // Separate frames carry each count in turn, a coalesced one the latest: never a count the device did not have.
        must.hold(frame.lowWater === lowWater && frame.remaining >= latest && frame.remaining < lowWater, 'PKY-20', `remaining between ${latest} and ${lowWater - 1}, lowWater ${lowWater}`, frame);
      }
      must.equal(frames.at(-1), { type: 'prekeys_low', remaining: latest, lowWater }, 'PKY-21', `the last prekeys_low after ${fetches} fetches`);
    },
  },
  {
    id: '3.4/prekeys-low-not-stored',
    requirements: ['PKY-23', 'PKY-22'],
    level: 'must',
    title: "a prekeys_low due while the device has no session is not kept for later: back at lowWater, its next session gets none",
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const limits = await limitsOf(ctx, a1);
      const lowWater = limits.prekeyLowWater;
      if (lowWater === 0) ctx.unsupported('the server advertises prekeyLowWater 0 (prekeys_low disabled)');
      if (Math.ceil(lowWater / limits.prekeyBatchMax) > MAX_UPLOAD_BATCHES) ctx.unsupported(`uploading prekeyLowWater (${lowWater}) keys takes more than ${MAX_UPLOAD_BATCHES} uploads`);
      await uploadAll(ctx, b1, preKeys(ctx, 1, lowWater), limits);
      // The fetch leaves bob's device below lowWater while it has no session: PKY-20 would notify a session.
      const entry = (await bundle(ctx, a1, bob, b1.deviceId)).devices[0];
      must.hold(entry?.oneTimePreKey !== undefined, 'PKY-15', 'a one-time prekey in the bundle', entry);
      must.status(await upload(ctx, b1, preKeys(ctx, lowWater + 1, 1)), 200, 'PKY-8', 'topping the device up to lowWater again');
      must.equal((await count(ctx, b1)).oneTimePreKeys, lowWater, 'PKY-10', 'one-time prekeys after the top-up');
      // Not fewer than lowWater at session start, so PKY-22 sends nothing; a stored notification would show here.
      const b = await ctx.connect(b1);
      await b.next('queue_empty', 'DLV-25');
      await b.quiet(COALESCE_MS);
      must.equal(b.received.map((r) => r.frame).filter((f) => f.type === 'prekeys_low'), [], 'PKY-23', 'prekeys_low frames on a session that starts at lowWater');
    },
  },
];
