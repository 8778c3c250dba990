// Sections 2.1 to 2.6 of PROTOCOL.md: registration, usernames, linking, device lists with lastSeenAt, deletion and
// user lookup. Cases read deviceIds only from the server's answers (IDN-4 fixes no numbering).
import type { DeviceListResponse, LinkCodeResponse, UserLookupResponse } from '../../spec/index.ts';
import { freshUsername } from '../fixtures.ts';
import type { ConformanceCase } from '../case.ts';
import { as, must } from '../expect.ts';
import { send, sendOk } from '../messaging.ts';
import { expectFatal } from './1-transport-websocket.ts';

const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

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
];
