// Sections 2.1 to 2.6 of PROTOCOL.md: registration, usernames, linking, device lists with lastSeenAt, deletion and
// user lookup. Cases read deviceIds only from the server's answers (IDN-4 fixes no numbering).
import type { DeviceListResponse, DeviceRegistration, LinkCodeResponse, PreKeyCountResponse, RegisterResponse, UserLookupResponse } from '../../spec/index.ts';
import { generateKeyPair, xeddsaSign, type RandomSource } from '../../reference-client/e2e/index.ts';
import type { HttpResult } from '../../reference-client/wire/http.ts';
import { freshUsername } from '../fixtures.ts';
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { as, httpErrorOf, must } from '../expect.ts';
import { send, sendOk } from '../messaging.ts';
import { expectFatal } from './1-transport-websocket.ts';

const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Registrations the rate-limit case makes at most before it gives up waiting for 429. */
const MAX_REGISTRATION_PROBE = 30;
/** Devices per user above this make the TOO_MANY_DEVICES case UNSUPPORTED rather than slow. */
const MAX_DEVICES_PROBE = 64;

/**
 * Bits one character of these identifiers can carry, from the alphabet they use (separators `-` and `_` aside):
 * decimal, hexadecimal, alphanumeric, or the 64 characters of base64url.
 */
function bitsPerChar(samples: readonly string[]): number {
  const all = samples.join('').replace(/[-_]/g, '');
  if (/^[0-9]*$/.test(all)) return Math.log2(10);
  if (/^[0-9a-f]*$/.test(all) || /^[0-9A-F]*$/.test(all)) return 4;
  if (/^[0-9A-Za-z]*$/.test(all)) return Math.log2(62);
  return 6;
}

/**
 * How many bits tell `a` from `b`, estimated as the differing character positions (and the length difference), each
 * worth `bits`. Two random values of n bits differ by about n; a counter or a clock differs in its last few characters.
 */
function differingBits(a: string, b: string, bits: number): number {
  let differing = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) differing++;
  return differing * bits;
}

/** The median of `differingBits` over every pair of `values`: a robust estimate of the random bits in each. */
function spreadBits(values: readonly string[]): number {
  const bits = bitsPerChar(values);
  const pairs: number[] = [];
  for (let i = 0; i < values.length; i++) for (let j = i + 1; j < values.length; j++) pairs.push(differingBits(values[i]!, values[j]!, bits));
  pairs.sort((x, y) => x - y);
  return Math.round(pairs[Math.floor(pairs.length / 2)]!);
}

/** POST /v1/devices; a 429 RATE_LIMITED (a registration limit, IDN-8) is waited out and retried. */
async function linkAttempt(ctx: CaseContext, linkCode: string, device: DeviceRegistration): Promise<HttpResult> {
  for (let attempt = 0; ; attempt++) {
    const result = await ctx.http('linkDevice', { body: { linkCode, device } });
    const error = httpErrorOf(result);
    if (result.status !== 429 || error?.code !== 'RATE_LIMITED' || attempt >= 5) return result;
    const waitMs = Math.min(61_000, typeof error.retryAfterMs === 'number' ? error.retryAfterMs : 1000) + 50;
    ctx.note(`linking rate-limited; waiting ${waitMs} ms`);
    ctx.extend(waitMs);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

async function linkCode(ctx: CaseContext, device: Device): Promise<string> {
  const result = await ctx.http<LinkCodeResponse>('createLinkCode', { credentials: device });
  must.status(result, 201, 'IDN-14', `a link code for ${device.label}`);
  return result.body.code;
}

async function deviceIds(ctx: CaseContext, user: User): Promise<number[]> {
  const list = await ctx.http<DeviceListResponse>('listDevices', { credentials: user.devices[0]! });
  must.status(list, 200, 'IDN-22', `devices of ${user.label}`);
  return list.body.devices.map((d) => d.deviceId);
}

/** A DeviceRegistration whose signed prekey carries a valid XEdDSA signature by its identity key (section 8.2). */
function signedRegistration(ctx: CaseContext, name: string): { device: DeviceRegistration; sign: (keyId: number) => DeviceRegistration['signedPreKey'] } {
  const random: RandomSource = (n) => new Uint8Array(ctx.material.rng.bytes(n));
  const identity = generateKeyPair(random);
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
  const sign = (keyId: number) => {
    const pair = generateKeyPair(random);
    return { keyId, publicKey: b64(pair.publicKey), signature: b64(xeddsaSign(identity.privateKey, pair.publicKey, random)) };
  };
  return { device: { ...ctx.material.deviceRegistration(name), identityKey: b64(identity.publicKey), signedPreKey: sign(1) }, sign };
}

/** The same signed prekey with one bit of its signature's R flipped: 64 bytes still (TRN-14), no longer valid. */
function spoiled(signedPreKey: DeviceRegistration['signedPreKey']): DeviceRegistration['signedPreKey'] {
  const signature = Buffer.from(signedPreKey.signature, 'base64');
  signature[5]! ^= 0x01;
  return { ...signedPreKey, signature: signature.toString('base64') };
}

export const cases: ConformanceCase[] = [
  {
    id: '2.2/register-creates-user',
    requirements: ['IDN-6', 'IDN-1', 'IDN-4', 'IDN-31', 'AUT-4'],
    level: 'must',
    title: 'registration answers 201 {userId, username, deviceId}; the username then resolves to that userId',
    async run(ctx) {
      const username = freshUsername();
      const device = ctx.material.deviceRegistration('first');
      const result = await ctx.http<{ userId: string; username: string; deviceId: number }>('register', { body: { username, device } });
      must.status(result, 201, 'IDN-6');
      must.equal(result.body.username, username, 'IDN-6', 'username echoed');
      must.hold(USER_ID.test(result.body.userId), 'IDN-1', 'a userId matching ^[A-Za-z0-9_-]{1,64}$', result.body.userId);
      must.hold(result.body.deviceId >= 1 && result.body.deviceId <= 2147483647, 'IDN-4', 'a deviceId in 1..2147483647', result.body.deviceId);
      must.hold(!JSON.stringify(result.body).includes(device.secret), 'AUT-4', 'no secret in the answer', result.body);
      const other = await ctx.user();
      const lookup = await ctx.http<UserLookupResponse>('lookupUser', { params: { username }, credentials: other.devices[0]! });
      must.status(lookup, 200, 'IDN-31');
      must.equal(lookup.body, { userId: result.body.userId, username }, 'IDN-31');
      must.hold(other.userId !== result.body.userId, 'IDN-1', 'distinct userIds for distinct users', other.userId);
    },
  },
  {
    id: '2.2/username-taken',
    requirements: ['IDN-7', 'IDN-5'],
    level: 'must',
    title: 'registering a taken username answers 409 USERNAME_TAKEN and creates nothing',
    async run(ctx) {
      const first = await ctx.user();
      const device = ctx.material.deviceRegistration('second');
      must.httpError(await ctx.http('register', { body: { username: first.username, device } }), 409, 'USERNAME_TAKEN', 'IDN-7');
      const lookup = await ctx.http<UserLookupResponse>('lookupUser', { params: { username: first.username }, credentials: first.devices[0]! });
      must.equal(lookup.body.userId, first.userId, 'IDN-5', 'the username still names the first user');
      const list = await ctx.http<DeviceListResponse>('listDevices', { credentials: first.devices[0]! });
      must.equal(list.body.devices.map((d) => d.deviceId), [first.devices[0]!.deviceId], 'IDN-7', 'the first user gained no device');
    },
  },
  {
    id: '2.2/concurrent-registrations-one-wins',
    requirements: ['IDN-7'],
    level: 'must',
    title: 'of concurrent registrations of one username exactly one succeeds',
    async run(ctx) {
      const username = freshUsername();
      const results = await Promise.all(
        [0, 1, 2].map(() => ctx.http('register', { body: { username, device: ctx.material.deviceRegistration() } })),
      );
      const statuses = results.map((r) => r.status).sort();
      must.equal(statuses, [201, 409, 409], 'IDN-7', 'statuses of three concurrent registrations');
    },
  },
  {
    id: '2.2/repeated-prekey-id-bad-request',
    requirements: ['IDN-9'],
    level: 'must',
    title: 'a registration whose oneTimePreKeys repeat a keyId answers 400 BAD_REQUEST',
    async run(ctx) {
      const device = ctx.material.deviceRegistration('dup', 2);
      device.oneTimePreKeys![1]!.keyId = device.oneTimePreKeys![0]!.keyId;
      must.httpError(await ctx.http('register', { body: { username: freshUsername(), device } }), 400, 'BAD_REQUEST', 'IDN-9');
    },
  },
  {
    id: '2.3/link-device',
    requirements: ['IDN-14', 'IDN-16', 'IDN-22', 'IDN-4'],
    level: 'must',
    title: 'a link code links a new device of the same user; the device list shows both in ascending deviceId order',
    async run(ctx) {
      const user = await ctx.user();
      const before = Date.now();
      const code = await ctx.http<LinkCodeResponse>('createLinkCode', { credentials: user.devices[0]! });
      must.status(code, 201, 'IDN-14');
      must.hold(code.body.expiresAt > before, 'IDN-14', 'expiresAt in the future', code.body.expiresAt);
      const device = ctx.material.deviceRegistration('linked phone');
      const linked = await ctx.http<{ userId: string; deviceId: number }>('linkDevice', { body: { linkCode: code.body.code, device } });
      must.status(linked, 201, 'IDN-16');
      must.equal(linked.body.userId, user.userId, 'IDN-16', 'userId of the linked device');
      must.hold(linked.body.deviceId !== user.devices[0]!.deviceId, 'IDN-4', 'a new deviceId', linked.body.deviceId);
      const list = await ctx.http<DeviceListResponse>('listDevices', { credentials: user.devices[0]! });
      const ids = [user.devices[0]!.deviceId, linked.body.deviceId].sort((a, b) => a - b);
      must.equal(list.body.devices.map((d) => d.deviceId), ids, 'IDN-22', 'deviceIds listed');
      const named = list.body.devices.find((d) => d.deviceId === linked.body.deviceId);
      must.equal(named?.name, 'linked phone', 'IDN-22', 'name of the linked device');
    },
  },
  {
    id: '2.3/link-code-single-use',
    requirements: ['IDN-17', 'IDN-18'],
    level: 'must',
    title: 'a consumed or never-issued link code answers 403 INVALID_LINK_CODE',
    async run(ctx) {
      const user = await ctx.user();
      const code = await ctx.http<LinkCodeResponse>('createLinkCode', { credentials: user.devices[0]! });
      must.status(await ctx.http('linkDevice', { body: { linkCode: code.body.code, device: ctx.material.deviceRegistration() } }), 201, 'IDN-16');
      must.httpError(await ctx.http('linkDevice', { body: { linkCode: code.body.code, device: ctx.material.deviceRegistration() } }), 403, 'INVALID_LINK_CODE', 'IDN-18', 'second use');
      must.httpError(await ctx.http('linkDevice', { body: { linkCode: 'NeverIssued0123456789abcd', device: ctx.material.deviceRegistration() } }), 403, 'INVALID_LINK_CODE', 'IDN-17', 'never issued');
    },
  },
  {
    id: '2.3/linked-device-starts-empty',
    requirements: ['IDN-21', 'DLV-26', 'DLV-28'],
    level: 'must',
    title: 'a newly linked device gets none of the items enqueued before it existed',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      await sendOk(ctx, a, alice.devices[0]!, bob);
      const second = await ctx.link(bob);
      const b2 = await ctx.connect(second);
      must.equal((await b2.next('queue_empty', 'DLV-25')).lastSeq, 0, 'IDN-21', 'lastSeq of the new device');
      await b2.quiet(200);
      must.equal(b2.items.length, 0, 'IDN-21', 'items delivered to the new device');
    },
  },
  {
    id: '2.4/last-seen-at',
    requirements: ['IDN-23', 'IDN-22'],
    level: 'must',
    title: 'lastSeenAt is absent until a device authenticates and then the time of its latest authentication',
    async run(ctx) {
      const user = await ctx.user();
      const second = await ctx.link(user);
      let list = await ctx.http<DeviceListResponse>('listDevices', { credentials: user.devices[0]! });
      const fresh = list.body.devices.find((d) => d.deviceId === second.deviceId);
      must.hold(fresh !== undefined && fresh.lastSeenAt === undefined, 'IDN-23', 'no lastSeenAt on a device that never authenticated', fresh);
      const first = list.body.devices.find((d) => d.deviceId === user.devices[0]!.deviceId);
      must.hold(first?.lastSeenAt !== undefined, 'IDN-23', 'lastSeenAt on the device that just authenticated', first);
      const session = await ctx.connect(second);
      const helloAt = session.welcome!.serverTime;
      await session.close();
      list = await ctx.http<DeviceListResponse>('listDevices', { credentials: user.devices[0]! });
      const seen = list.body.devices.find((d) => d.deviceId === second.deviceId);
      must.hold(seen?.lastSeenAt !== undefined && Math.abs(seen.lastSeenAt - helloAt) < 5000, 'IDN-23', `lastSeenAt near the hello (${helloAt})`, seen);
    },
  },
  {
    id: '2.5/delete-device-closes-session',
    requirements: ['IDN-24', 'IDN-29', 'IDN-27', 'IDN-28', 'ERR-9'],
    level: 'must',
    title: 'deleting a device answers 204, ends its session with DEVICE_REMOVED and 4403, and revokes its credentials',
    async run(ctx) {
      const user = await ctx.user({ devices: 2 });
      const [first, second] = user.devices as [typeof user.devices[0], typeof user.devices[0]];
      const victim = await ctx.connect(second);
      must.status(await ctx.http('deleteDevice', { params: { deviceId: second.deviceId }, credentials: first }), 204, 'IDN-24');
      await expectFatal(victim, 'DEVICE_REMOVED', 4403, 'IDN-29');
      must.httpError(await ctx.http('listDevices', { credentials: second }), 401, 'UNAUTHORIZED', 'IDN-27', 'HTTP with deleted credentials');
      const again = await ctx.open({ label: second.label });
      must.errorFrame(await again.hello(second, { id: 'h-deleted' }), 'AUTH_FAILED', 'IDN-27', 'h-deleted', 'hello with deleted credentials');
      const list = await ctx.http<DeviceListResponse>('listDevices', { credentials: first });
      must.equal(list.body.devices.map((d) => d.deviceId), [first.deviceId], 'IDN-28', 'devices after the deletion');
    },
  },
  {
    id: '2.5/delete-unknown-and-last-device',
    requirements: ['IDN-25', 'IDN-26'],
    level: 'must',
    title: 'deleting an unknown device answers 404 UNKNOWN_DEVICE; deleting the only device answers 409 LAST_DEVICE',
    async run(ctx) {
      const user = await ctx.user({ devices: 2 });
      const [first, second] = user.devices as [typeof user.devices[0], typeof user.devices[0]];
      must.status(await ctx.http('deleteDevice', { params: { deviceId: second.deviceId }, credentials: first }), 204, 'IDN-24');
      must.httpError(await ctx.http('deleteDevice', { params: { deviceId: second.deviceId }, credentials: first }), 404, 'UNKNOWN_DEVICE', 'IDN-25', 'already deleted');
      must.httpError(await ctx.http('deleteDevice', { params: { deviceId: 2147483647 }, credentials: first }), 404, 'UNKNOWN_DEVICE', 'IDN-25', 'never existed');
      must.httpError(await ctx.http('deleteDevice', { params: { deviceId: first.deviceId }, credentials: first }), 409, 'LAST_DEVICE', 'IDN-26', 'the only device');
      must.status(await ctx.http('listDevices', { credentials: first }), 200, 'IDN-26', 'the last device still works');
    },
  },
  {
    id: '2.5/deleted-device-queue-discarded',
    requirements: ['IDN-28', 'MSG-6'],
    level: 'must',
    title: 'after a deletion, sends listing the deleted device get STALE_DEVICES with it in extra',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 2 });
      const [b1, b2] = bob.devices as [typeof bob.devices[0], typeof bob.devices[0]];
      const a = await ctx.connect(alice.devices[0]!);
      await sendOk(ctx, a, alice.devices[0]!, bob);
      must.status(await ctx.http('deleteDevice', { params: { deviceId: b2.deviceId }, credentials: b1 }), 204, 'IDN-24');
      const stale = await send(ctx, a, alice.devices[0]!, bob, { deviceIds: [b1.deviceId, b2.deviceId] });
      const error = as(stale.answer, 'error', 'MSG-6');
      must.errorFrame(error, 'STALE_DEVICES', 'MSG-6', stale.id);
      must.equal(error.details, { missing: [], extra: [b2.deviceId] }, 'MSG-6', 'STALE_DEVICES details');
    },
  },
  {
    id: '2.6/lookup-unknown-user',
    requirements: ['IDN-31'],
    level: 'must',
    title: 'looking up a username nobody has answers 404 UNKNOWN_USER',
    async run(ctx) {
      const user = await ctx.user();
      must.httpError(await ctx.http('lookupUser', { params: { username: freshUsername('nobody') }, credentials: user.devices[0]! }), 404, 'UNKNOWN_USER', 'IDN-31');
    },
  },
  {
    id: '2.1/user-ids-look-random',
    requirements: ['IDN-2'],
    level: 'should',
    title: 'the userIds of consecutive registrations differ like random values of at least 64 bits, not like a counter',
    async run(ctx) {
      const userIds: string[] = [];
      for (let i = 0; i < 6; i++) userIds.push((await ctx.user()).userId);
      const spread = spreadBits(userIds);
      ctx.note(`userIds ${userIds.join(', ')}: about ${spread} differing bits per pair (median)`);
      // 48 rather than 64: random characters coincide now and then, so two 64-bit values differ in fewer positions.
      must.hold(spread >= 48, 'IDN-2', 'userIds differing in about 64 random bits or more (median over pairs at least 48)', `${spread} bits (${userIds.join(', ')})`);
    },
  },
  {
    id: '2.2/registration-rate-limit',
    requirements: ['IDN-8', 'ERR-4', 'LIM-10'],
    level: 'must',
    title: 'a registration over registrationsPerMinute gets 429 RATE_LIMITED with retryAfterMs and Retry-After, creates nothing, and linking shares the count',
    async run(ctx) {
      // registrationsPerMinute is not advertised: the case registers until the first 429, up to a bound.
      const owner = await ctx.user();
      const code = await linkCode(ctx, owner.devices[0]!);
      let refused: { result: HttpResult; username: string; sentAt: number } | undefined;
      for (let i = 0; i < MAX_REGISTRATION_PROBE && !refused; i++) {
        const username = freshUsername('rl');
        const sentAt = performance.now();
        const result = await ctx.http('register', { body: { username, device: ctx.material.deviceRegistration() } });
        if (result.status === 429) refused = { result, username, sentAt };
        else must.status(result, 201, 'IDN-6', `registration ${i + 1} of the probe`);
      }
      if (!refused) return ctx.unsupported(`no 429 within ${MAX_REGISTRATION_PROBE} registrations: registrationsPerMinute is above that (the built-in server runs with 100000)`);
      const { result, username, sentAt } = refused;
      must.httpError(result, 429, 'RATE_LIMITED', 'IDN-8', `registration of ${username}`);
      const retryAfterMs = httpErrorOf(result)?.retryAfterMs;
      must.hold(typeof retryAfterMs === 'number' && Number.isInteger(retryAfterMs) && retryAfterMs >= 1 && retryAfterMs <= 60_000, 'LIM-10', 'retryAfterMs, an integer in 1..60000 for a limit per 60 s', result.body);
      const wait = retryAfterMs as number;
      must.equal(result.headers.get('retry-after'), String(Math.ceil(wait / 1000)), 'ERR-4', 'Retry-After of the 429');
      // The two endpoints share one count: until retryAfterMs has passed, linking is refused too.
      const link = await ctx.http('linkDevice', { body: { linkCode: code, device: ctx.material.deviceRegistration() } });
      const elapsed = performance.now() - sentAt;
      if (wait >= 1000 && elapsed < wait - 500) {
        must.httpError(link, 429, 'RATE_LIMITED', 'IDN-8', `a link ${Math.round(elapsed)} ms after a registration refused with retryAfterMs ${wait}`);
        must.equal(await deviceIds(ctx, owner), [owner.devices[0]!.deviceId], 'IDN-8', 'devices after the refused link');
      }
      const lookup = await ctx.http('lookupUser', { params: { username }, credentials: owner.devices[0]! });
      must.httpError(lookup, 404, 'UNKNOWN_USER', 'IDN-8', `looking up ${username}, whose registration was refused`);
    },
  },
  {
    id: '2.2/signed-prekey-signature',
    requirements: ['IDN-11', 'IDN-10', 'PKY-2'],
    level: 'must',
    title: 'a signed prekey whose signature does not verify is either accepted (no verification) or refused with 400 and nothing stored',
    async run(ctx) {
      // A server MAY verify signatures (IDN-10); one that does refuses a bad one with 400 and stores nothing (IDN-11).
      const { device, sign } = signedRegistration(ctx, 'signed');
      const username = freshUsername('sig');
      const bad = await ctx.http('register', { body: { username, device: { ...device, signedPreKey: spoiled(device.signedPreKey) } } });
      const verifies = bad.status !== 201;
      if (verifies) must.httpError(bad, 400, 'BAD_REQUEST', 'IDN-11', 'a registration whose signature does not verify');
      else ctx.note('the server accepted a registration whose signature does not verify: it does not verify at registration');
      // After a refusal nothing is stored: the username is still free for the same device, correctly signed.
      const good = verifies ? device : { ...device, secret: ctx.material.secret() };
      const registered = await ctx.http<RegisterResponse>('register', { body: { username: verifies ? username : freshUsername('sig'), device: good } });
      must.status(registered, 201, verifies ? 'IDN-11' : 'IDN-6', verifies ? `registering ${username} again, correctly signed, after the refusal` : 'a correctly signed registration');
      const credentials = { userId: registered.body.userId, deviceId: registered.body.deviceId, secret: good.secret };
      const signedPreKeyId = async () => {
        const count = await ctx.http<PreKeyCountResponse>('getPreKeyCount', { credentials });
        must.status(count, 200, 'PKY-10');
        return count.body.signedPreKeyId;
      };
      const put = await ctx.http('putSignedPreKey', { body: { signedPreKey: spoiled(sign(2)) }, credentials });
      if (put.status === 204) {
        ctx.note('the server accepted a signed prekey whose signature does not verify: it does not verify on PUT /v1/keys/signed');
        must.equal(await signedPreKeyId(), 2, 'PKY-2', 'signedPreKeyId after an accepted signed prekey');
      } else {
        must.httpError(put, 400, 'BAD_REQUEST', 'IDN-11', 'a signed prekey whose signature does not verify');
        must.equal(await signedPreKeyId(), 1, 'IDN-11', 'signedPreKeyId after the refusal (nothing stored)');
      }
      must.status(await ctx.http('putSignedPreKey', { body: { signedPreKey: sign(3) }, credentials }), 204, 'PKY-2', 'a correctly signed prekey');
      must.equal(await signedPreKeyId(), 3, 'PKY-2', 'signedPreKeyId after a correctly signed prekey');
    },
  },
  {
    id: '2.3/link-codes-look-random',
    requirements: ['IDN-15', 'IDN-14'],
    level: 'must',
    title: 'link codes have 22 or more alphanumeric characters and differ from each other like random values of 128 bits',
    async run(ctx) {
      const user = await ctx.user();
      const codes: string[] = [];
      for (let i = 0; i < 6; i++) codes.push(await linkCode(ctx, user.devices[0]!));
      for (const code of codes) must.hold(/^[A-Za-z0-9]{22,64}$/.test(code), 'IDN-15', '22 to 64 alphanumeric characters', code);
      const spread = spreadBits(codes);
      ctx.note(`link codes ${codes.join(', ')}: about ${spread} differing bits per pair (median)`);
      // 96 rather than 128: random characters coincide now and then; a counter or a clock differs in a few.
      must.hold(spread >= 96, 'IDN-15', 'codes differing in about 128 random bits (median over pairs at least 96)', `${spread} bits (${codes.join(', ')})`);
    },
  },
  {
    id: '2.3/too-many-devices',
    requirements: ['IDN-19', 'IDN-17'],
    level: 'must',
    title: 'linking beyond maxDevicesPerUser gets 409 TOO_MANY_DEVICES and, like every failed attempt, leaves the code unconsumed',
    async run(ctx) {
      const user = await ctx.user();
      const owner = user.devices[0]!;
      const probe = await ctx.connect(owner);
      const max = probe.limits.maxDevicesPerUser;
      await probe.close();
      if (max > MAX_DEVICES_PROBE) ctx.unsupported(`maxDevicesPerUser ${max} is above the ${MAX_DEVICES_PROBE} devices this case links`);
      while (user.devices.length < max) await ctx.link(user);
      const code = await linkCode(ctx, owner);
      must.httpError(await ctx.http('linkDevice', { body: { linkCode: code, device: { name: 'no keys' } } }), 400, 'BAD_REQUEST', 'TRN-6', 'a link with an invalid device');
      // A consumed code would get 403 INVALID_LINK_CODE, which comes first (IDN-17): a second 409 shows it unconsumed.
      for (const attempt of ['first', 'second']) {
        must.httpError(await linkAttempt(ctx, code, ctx.material.deviceRegistration()), 409, 'TOO_MANY_DEVICES', 'IDN-19', `${attempt} link with ${max} devices`);
      }
      must.equal((await deviceIds(ctx, user)).length, max, 'IDN-19', 'devices after the refused links');
      if (max < 2) return;
      const last = user.devices.at(-1)!;
      must.status(await ctx.http('deleteDevice', { params: { deviceId: last.deviceId }, credentials: owner }), 204, 'IDN-24');
      must.status(await linkAttempt(ctx, code, ctx.material.deviceRegistration()), 201, 'IDN-19', 'the code after the failed attempts, once a device is free');
    },
  },
  {
    id: '2.3/link-codes-die-with-their-device',
    requirements: ['IDN-20', 'IDN-17'],
    level: 'must',
    title: 'deleting a device invalidates the unconsumed link codes it obtained, and only those',
    async run(ctx) {
      const user = await ctx.user({ devices: 2 });
      const [first, second] = user.devices as [Device, Device];
      const orphans = [await linkCode(ctx, second), await linkCode(ctx, second)];
      const kept = await linkCode(ctx, first);
      must.status(await ctx.http('deleteDevice', { params: { deviceId: second.deviceId }, credentials: first }), 204, 'IDN-24');
      for (const code of orphans) {
        must.httpError(await linkAttempt(ctx, code, ctx.material.deviceRegistration()), 403, 'INVALID_LINK_CODE', 'IDN-20', `a code obtained by the deleted ${second.label}`);
      }
      must.status(await linkAttempt(ctx, kept, ctx.material.deviceRegistration()), 201, 'IDN-16', `a code obtained by ${first.label}, which still exists`);
    },
  },
];
