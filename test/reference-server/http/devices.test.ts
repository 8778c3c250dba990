// Link codes, linking, listing and deletion (sections 2.3 to 2.5), against a real server.
import t from 'tap';
import { codeOf, SEED, startTestServer } from './harness.ts';
import type { DeviceAddress } from '../../../reference-server/store/store.ts';

t.comment(`seed ${SEED} (set TICKWIRE_TEST_SEED to replay)`);

t.test('link code and linking [IDN-14] [IDN-15] [IDN-16] [IDN-18]', async (t) => {
  const s = await startTestServer({ linkCodeTtlSec: 600 });
  t.teardown(() => s.close());
  const owner = await s.register();
  const before = Date.now();
  const issued = await s.call('POST', '/v1/devices/link-codes', { auth: owner });
  t.equal(issued.status, 201);
  t.same(issued.schemaIssues, []);
  const { code, expiresAt } = issued.body as { code: string; expiresAt: number };
  t.ok(code.length >= 22, 'at least 128 bits of alphanumerics');
  t.ok(expiresAt >= before + 600_000 && expiresAt <= Date.now() + 600_000, 'expiresAt = issue time + linkCodeTtlSec × 1000');
  t.equal((await s.call('POST', '/v1/devices/link-codes')).status, 401);

  const device = s.keys.device('laptop', s.keys.preKeys(1, 2));
  const linked = await s.call('POST', '/v1/devices', { body: { linkCode: code, device } });
  t.equal(linked.status, 201);
  t.same(linked.schemaIssues, []);
  const created = linked.body as { userId: string; deviceId: number };
  t.equal(created.userId, owner.userId);
  t.not(created.deviceId, owner.deviceId);
  // Single use [IDN-18].
  const reuse = await s.call('POST', '/v1/devices', { body: { linkCode: code, device: s.keys.device() } });
  t.equal(reuse.status, 403);
  t.equal(codeOf(reuse), 'INVALID_LINK_CODE');
  t.same(reuse.schemaIssues, []);
  const never = await s.call('POST', '/v1/devices', { body: { linkCode: 'Zz0'.repeat(10), device: s.keys.device() } });
  t.equal(codeOf(never), 'INVALID_LINK_CODE');
  // The linked device authenticates with its own secret.
  const list = await s.call('GET', '/v1/devices', { auth: { ...created, secret: device.secret } });
  t.equal(list.status, 200);
  t.same(list.schemaIssues, []);

  // Concurrent links with one code: exactly one wins [IDN-18].
  const again = (await s.call('POST', '/v1/devices/link-codes', { auth: owner })).body as { code: string };
  const racers = await Promise.all(Array.from({ length: 5 }, () => s.call('POST', '/v1/devices', { body: { linkCode: again.code, device: s.keys.device() } })));
  t.equal(racers.filter((a) => a.status === 201).length, 1);
  t.equal(racers.filter((a) => codeOf(a) === 'INVALID_LINK_CODE').length, 4);
});

t.test('TOO_MANY_DEVICES leaves the code unconsumed; INVALID_LINK_CODE comes first [IDN-17] [IDN-19]', async (t) => {
  const s = await startTestServer({ maxDevicesPerUser: 2 });
  t.teardown(() => s.close());
  const owner = await s.register();
  await s.link(owner);
  const { code } = (await s.call('POST', '/v1/devices/link-codes', { auth: owner })).body as { code: string };
  const full = await s.call('POST', '/v1/devices', { body: { linkCode: code, device: s.keys.device() } });
  t.equal(full.status, 409);
  t.equal(codeOf(full), 'TOO_MANY_DEVICES');
  t.same(full.schemaIssues, []);
  const list = (await s.call('GET', '/v1/devices', { auth: owner })).body as { devices: Array<{ deviceId: number }> };
  const second = list.devices.find((d) => d.deviceId !== owner.deviceId)!;
  t.equal((await s.call('DELETE', `/v1/devices/${second.deviceId}`, { auth: owner })).status, 204);
  const now = await s.call('POST', '/v1/devices', { body: { linkCode: code, device: s.keys.device() } });
  t.equal(now.status, 201, 'the code survived the refused attempt');
});

t.test('link codes expire [IDN-17]', async (t) => {
  let clock = Date.now();
  const s = await startTestServer({ linkCodeTtlSec: 60 }, { now: () => clock });
  t.teardown(() => s.close());
  const owner = await s.register();
  const { code, expiresAt } = (await s.call('POST', '/v1/devices/link-codes', { auth: owner })).body as { code: string; expiresAt: number };
  clock = expiresAt;
  const late = await s.call('POST', '/v1/devices', { body: { linkCode: code, device: s.keys.device() } });
  t.equal(codeOf(late), 'INVALID_LINK_CODE', 'at expiresAt the code is expired');
});

t.test('a deleted device loses its link codes [IDN-20]', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const owner = await s.register();
  const second = await s.link(owner);
  const { code } = (await s.call('POST', '/v1/devices/link-codes', { auth: second })).body as { code: string };
  t.equal((await s.call('DELETE', `/v1/devices/${second.deviceId}`, { auth: owner })).status, 204);
  const answer = await s.call('POST', '/v1/devices', { body: { linkCode: code, device: s.keys.device() } });
  t.equal(codeOf(answer), 'INVALID_LINK_CODE');
});

t.test('device list: own devices only, ascending, lastSeenAt after authentication [IDN-22] [IDN-23]', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const owner = await s.register();
  const laptop = await s.link(owner);
  const stranger = await s.register();
  const list = await s.call('GET', '/v1/devices', { auth: owner });
  t.equal(list.status, 200);
  t.same(list.schemaIssues, []);
  const devices = (list.body as { devices: Array<{ deviceId: number; name: string; createdAt: number; lastSeenAt?: number }> }).devices;
  t.same(devices.map((d) => d.deviceId), [owner.deviceId, laptop.deviceId].sort((a, b) => a - b));
  t.same(devices.map((d) => d.name).sort(), ['laptop', 'phone']);
  const mine = devices.find((d) => d.deviceId === owner.deviceId)!;
  const theirs = devices.find((d) => d.deviceId === laptop.deviceId)!;
  t.type(mine.lastSeenAt, 'number', 'the requester just authenticated');
  t.equal(theirs.lastSeenAt, undefined, 'the laptop never authenticated');
  await s.call('GET', '/v1/keys/count', { auth: laptop });
  const after = (await s.call('GET', '/v1/devices', { auth: owner })).body as { devices: Array<{ deviceId: number; lastSeenAt?: number }> };
  t.type(after.devices.find((d) => d.deviceId === laptop.deviceId)!.lastSeenAt, 'number');
  const strangers = (await s.call('GET', '/v1/devices', { auth: stranger })).body as { devices: unknown[] };
  t.equal(strangers.devices.length, 1);
});

t.test('delete: 204, UNKNOWN_DEVICE, LAST_DEVICE, revocation, hub event [IDN-24..IDN-29] [AUT-8]', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const removed: DeviceAddress[] = [];
  s.server.ctx.hub.on('device-removed', (device) => removed.push(device));
  const alice = await s.register();
  const bob = await s.register();
  const bobLaptop = await s.link(bob);

  // Alice cannot reach Bob's device: deviceIds are looked up in her own user only [AUT-8].
  const cross = await s.call('DELETE', `/v1/devices/${bobLaptop.deviceId}`, { auth: alice });
  t.equal(cross.status, 404);
  t.equal(codeOf(cross), 'UNKNOWN_DEVICE');
  t.same(cross.schemaIssues, []);
  t.equal((await s.call('GET', '/v1/keys/count', { auth: bobLaptop })).status, 200, "Bob's laptop still works");

  const last = await s.call('DELETE', `/v1/devices/${alice.deviceId}`, { auth: alice });
  t.equal(last.status, 409);
  t.equal(codeOf(last), 'LAST_DEVICE');
  t.same(last.schemaIssues, []);
  t.equal((await s.call('DELETE', '/v1/devices/777', { auth: alice })).status, 404, 'UNKNOWN_DEVICE before LAST_DEVICE');

  const gone = await s.call('DELETE', `/v1/devices/${bobLaptop.deviceId}`, { auth: bob });
  t.equal(gone.status, 204);
  t.equal(gone.text, '');
  t.same(removed, [{ userId: bob.userId, deviceId: bobLaptop.deviceId }]);
  t.equal((await s.call('GET', '/v1/devices', { auth: bobLaptop })).status, 401, 'credentials revoked [IDN-27]');
  const again = await s.call('DELETE', `/v1/devices/${bobLaptop.deviceId}`, { auth: bob });
  t.equal(codeOf(again), 'UNKNOWN_DEVICE', 'already deleted');
  const bundle = (await s.call('GET', `/v1/users/${bob.userId}/keys`, { auth: alice })).body as { devices: Array<{ deviceId: number }> };
  t.same(bundle.devices.map((d) => d.deviceId), [bob.deviceId], 'absent from bundles [IDN-28]');

  // A device may delete itself when it has a sibling.
  const second = await s.link(alice);
  t.equal((await s.call('DELETE', `/v1/devices/${second.deviceId}`, { auth: second })).status, 204);

  // Revocation is durable [IDN-27].
  await s.restart();
  t.equal((await s.call('GET', '/v1/devices', { auth: bobLaptop })).status, 401, 'still revoked after a restart');
  t.equal((await s.call('GET', '/v1/devices', { auth: bob })).status, 200, 'the survivor still authenticates');
});
