// The prekey directory (section 3) against a real server: uploads, counts, bundles, consumption under concurrency and
// across a restart, the fetch rate limit and the low-water signal.
import t from 'tap';
import type { DeviceAddress } from '../../../reference-server/store/store.ts';
import { codeOf, SEED, startTestServer } from './harness.ts';

t.comment(`seed ${SEED} (set TICKWIRE_TEST_SEED to replay)`);

interface Bundle {
  userId: string;
  devices: Array<{ deviceId: number; registrationId: number; identityKey: string; signedPreKey: { keyId: number }; oneTimePreKey?: { keyId: number; publicKey: string } }>;
}

t.test('signed prekey, one-time uploads and count [PKY-2] [PKY-3] [PKY-8] [PKY-10]', async (t) => {
  const s = await startTestServer({ prekeyBatchMax: 5, maxStoredPreKeys: 8, prekeyLowWater: 3 });
  t.teardown(() => s.close());
  const me = await s.register();
  let count = await s.call('GET', '/v1/keys/count', { auth: me });
  t.equal(count.status, 200);
  t.same(count.schemaIssues, []);
  t.same(count.body, { oneTimePreKeys: 0, lowWater: 3, signedPreKeyId: 1 });

  t.equal((await s.call('PUT', '/v1/keys/signed', { auth: me, body: { signedPreKey: s.keys.signedPreKey(1) } })).status, 204, 'same keyId again');
  const put = await s.call('PUT', '/v1/keys/signed', { auth: me, body: { signedPreKey: s.keys.signedPreKey(42) } });
  t.equal(put.status, 204);
  t.equal(put.text, '');
  const upload = await s.call('POST', '/v1/keys/one-time', { auth: me, body: { preKeys: s.keys.preKeys(42, 5) } });
  t.equal(upload.status, 200);
  t.same(upload.body, { count: 5 });
  t.same(upload.schemaIssues, []);
  count = await s.call('GET', '/v1/keys/count', { auth: me });
  t.same(count.body, { oneTimePreKeys: 5, lowWater: 3, signedPreKeyId: 42 });

  // [PKY-5] Over prekeyBatchMax, or a keyId twice in the batch: 400.
  const over = await s.call('POST', '/v1/keys/one-time', { auth: me, body: { preKeys: s.keys.preKeys(100, 6) } });
  t.equal(over.status, 400);
  const twice = s.keys.preKeys(200, 2);
  twice[1]!.keyId = 200;
  t.equal((await s.call('POST', '/v1/keys/one-time', { auth: me, body: { preKeys: twice } })).status, 400);
  t.equal((await s.call('POST', '/v1/keys/one-time', { auth: me, body: { preKeys: [] } })).status, 400, 'an empty batch');

  // [PKY-6] DUPLICATE_PREKEY_ID before [PKY-7] TOO_MANY_PREKEYS, storing nothing.
  const dup = await s.call('POST', '/v1/keys/one-time', { auth: me, body: { preKeys: [...s.keys.preKeys(44, 1), ...s.keys.preKeys(300, 4)] } });
  t.equal(dup.status, 409);
  t.equal(codeOf(dup), 'DUPLICATE_PREKEY_ID');
  t.same(dup.schemaIssues, [], 'details.keyIds present [ERR-5]');
  const keyIds = (dup.body as { error: { details: { keyIds: number[] } } }).error.details.keyIds;
  t.same(keyIds, [...keyIds].sort((a, b) => a - b), 'ascending');
  t.same(keyIds, [44], 'exactly the clashing keyIds');
  const tooMany = await s.call('POST', '/v1/keys/one-time', { auth: me, body: { preKeys: s.keys.preKeys(300, 4) } });
  t.equal(tooMany.status, 409);
  t.equal(codeOf(tooMany), 'TOO_MANY_PREKEYS');
  t.same(tooMany.schemaIssues, []);
  t.same((await s.call('GET', '/v1/keys/count', { auth: me })).body, { oneTimePreKeys: 5, lowWater: 3, signedPreKeyId: 42 }, 'nothing stored');
  t.same((await s.call('POST', '/v1/keys/one-time', { auth: me, body: { preKeys: s.keys.preKeys(300, 3) } })).body, { count: 8 });
});

t.test('bundles: per device, self excluded, deviceId query, unknown user and device [PKY-11..PKY-16]', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const alice = await s.register({ oneTimePreKeys: [] });
  const bob = await s.register({ oneTimePreKeys: [] });
  const bobLaptop = await s.link(bob, { oneTimePreKeys: [] });
  await s.call('POST', '/v1/keys/one-time', { auth: bob, body: { preKeys: s.keys.preKeys(1, 2) } });

  const all = await s.call('GET', `/v1/users/${bob.userId}/keys`, { auth: alice });
  t.equal(all.status, 200);
  t.same(all.schemaIssues, []);
  const bundle = all.body as Bundle;
  t.equal(bundle.userId, bob.userId);
  t.same(bundle.devices.map((d) => d.deviceId), [bob.deviceId, bobLaptop.deviceId].sort((a, b) => a - b), 'ascending deviceId');
  const phone = bundle.devices.find((d) => d.deviceId === bob.deviceId)!;
  const laptop = bundle.devices.find((d) => d.deviceId === bobLaptop.deviceId)!;
  t.equal(phone.oneTimePreKey?.keyId, 1);
  t.notOk('oneTimePreKey' in laptop, 'omitted, not null, when none is left [PKY-16]');
  t.notMatch(all.text, /secret/i);

  // [PKY-12] Own user: the requesting device is left out, and its own keys are not consumed.
  const own = await s.call('GET', `/v1/users/${bob.userId}/keys`, { auth: bobLaptop });
  t.same((own.body as Bundle).devices.map((d) => d.deviceId), [bob.deviceId]);
  const alone = await s.call('GET', `/v1/users/${alice.userId}/keys`, { auth: alice });
  t.same(alone.body, { userId: alice.userId, devices: [] });
  t.same(alone.schemaIssues, []);
  t.same((await s.call('GET', '/v1/keys/count', { auth: bob })).body, { oneTimePreKeys: 0, lowWater: 10, signedPreKeyId: 1 });

  // [PKY-13] The deviceId query: exactly one entry.
  const one = await s.call('GET', `/v1/users/${bob.userId}/keys?deviceId=${bobLaptop.deviceId}`, { auth: alice });
  t.same((one.body as Bundle).devices.map((d) => d.deviceId), [bobLaptop.deviceId]);
  // [PKY-14] UNKNOWN_USER, then UNKNOWN_DEVICE.
  const noUser = await s.call('GET', '/v1/users/nosuchuser/keys?deviceId=999', { auth: alice });
  t.equal(noUser.status, 404);
  t.equal(codeOf(noUser), 'UNKNOWN_USER');
  t.same(noUser.schemaIssues, []);
  const noDevice = await s.call('GET', `/v1/users/${bob.userId}/keys?deviceId=999`, { auth: alice });
  t.equal(noDevice.status, 404);
  t.equal(codeOf(noDevice), 'UNKNOWN_DEVICE');
  t.same(noDevice.schemaIssues, []);
  t.equal((await s.call('GET', `/v1/users/${bob.userId}/keys`)).status, 401);
});

t.test('50 concurrent fetches share 20 one-time prekeys: each keyId at most once [PKY-15]', async (t) => {
  const s = await startTestServer({ prekeyFetchesPerMinute: 100 });
  t.teardown(() => s.close());
  const target = await s.register({ oneTimePreKeys: s.keys.preKeys(1000, 20) });
  const requesters = await Promise.all(Array.from({ length: 5 }, () => s.register()));
  const answers = await Promise.all(
    Array.from({ length: 50 }, (_, i) => s.call('GET', `/v1/users/${target.userId}/keys`, { auth: requesters[i % requesters.length]! })),
  );
  t.ok(answers.every((a) => a.status === 200 && a.schemaIssues.length === 0), 'every fetch is a valid 200');
  const handed = answers.map((a) => (a.body as Bundle).devices[0]?.oneTimePreKey?.keyId).filter((k): k is number => k !== undefined);
  t.equal(handed.length, 20, 'exactly 20 fetches got a one-time prekey');
  t.equal(new Set(handed).size, 20, 'no keyId twice');
  t.ok(handed.every((k) => k >= 1000 && k < 1020));
  t.same((await s.call('GET', '/v1/keys/count', { auth: target })).body, { oneTimePreKeys: 0, lowWater: 10, signedPreKeyId: 1 });

  // After a restart a consumed prekey is never handed out again.
  await s.call('POST', '/v1/keys/one-time', { auth: target, body: { preKeys: s.keys.preKeys(2000, 3) } });
  const first = (await s.call('GET', `/v1/users/${target.userId}/keys`, { auth: requesters[0]! })).body as Bundle;
  const consumed = first.devices[0]!.oneTimePreKey!.keyId;
  await s.restart();
  const after: number[] = [];
  for (let i = 0; i < 4; i++) {
    const b = (await s.call('GET', `/v1/users/${target.userId}/keys`, { auth: requesters[1]! })).body as Bundle;
    const k = b.devices[0]!.oneTimePreKey?.keyId;
    if (k !== undefined) after.push(k);
  }
  t.equal(after.length, 2, 'the two unconsumed keys, then none');
  t.notOk(after.includes(consumed), `keyId ${consumed} is not handed out again`);
  t.notOk(after.some((k) => handed.includes(k)));
});

t.test('prekeyFetchesPerMinute per requesting device; refused fetches consume nothing [PKY-17] [LIM-10]', async (t) => {
  const s = await startTestServer({ prekeyFetchesPerMinute: 3 });
  t.teardown(() => s.close());
  const target = await s.register({ oneTimePreKeys: s.keys.preKeys(1, 10) });
  const me = await s.register();
  const other = await s.register();
  t.equal((await s.call('GET', `/v1/users/${target.userId}/keys`, { auth: me })).status, 200);
  t.equal((await s.call('GET', '/v1/users/nosuchuser/keys', { auth: me })).status, 404, 'counts whatever its outcome');
  t.equal((await s.call('GET', `/v1/users/${target.userId}/keys`, { auth: me })).status, 200);
  const limited = await s.call('GET', `/v1/users/${target.userId}/keys`, { auth: me });
  t.equal(limited.status, 429);
  t.equal(codeOf(limited), 'RATE_LIMITED');
  t.same(limited.schemaIssues, []);
  const retryAfterMs = (limited.body as { error: { retryAfterMs: number } }).error.retryAfterMs;
  t.ok(retryAfterMs >= 1 && retryAfterMs <= 60_000);
  t.equal(limited.headers.get('retry-after'), String(Math.ceil(retryAfterMs / 1000)));
  t.same((await s.call('GET', '/v1/keys/count', { auth: target })).body, { oneTimePreKeys: 8, lowWater: 10, signedPreKeyId: 1 }, 'the refused fetch consumed nothing');
  t.equal((await s.call('GET', `/v1/users/${target.userId}/keys`, { auth: other })).status, 200, 'another device has its own count');
  const bad = await s.call('GET', `/v1/users/${target.userId}/keys?deviceId=0`, { auth: me });
  t.equal(bad.status, 400, 'a bad parameter is 400 before the rate limit');
});

t.test('prekeys-low reaches the hub when a fetch leaves fewer than prekeyLowWater [PKY-20]', async (t) => {
  const s = await startTestServer({ prekeyLowWater: 2 });
  t.teardown(() => s.close());
  const events: Array<[DeviceAddress, number]> = [];
  s.server.ctx.hub.on('prekeys-low', (device, remaining) => events.push([device, remaining]));
  const target = await s.register({ oneTimePreKeys: s.keys.preKeys(1, 3) });
  const me = await s.register();
  const fetch = () => s.call('GET', `/v1/users/${target.userId}/keys`, { auth: me });
  await fetch(); // 2 left: not below 2
  t.same(events, []);
  await fetch(); // 1 left
  await fetch(); // 0 left
  await fetch(); // none consumed: no event
  const address = { userId: target.userId, deviceId: target.deviceId };
  t.same(events, [[address, 1], [address, 0]]);
});

t.test('prekeyLowWater 0 disables the signal [PKY-20]', async (t) => {
  const s = await startTestServer({ prekeyLowWater: 0 });
  t.teardown(() => s.close());
  let events = 0;
  s.server.ctx.hub.on('prekeys-low', () => events++);
  const target = await s.register({ oneTimePreKeys: s.keys.preKeys(1, 1) });
  const me = await s.register();
  await s.call('GET', `/v1/users/${target.userId}/keys`, { auth: me });
  t.equal(events, 0);
});
