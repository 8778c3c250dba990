// Registration (section 2.2), username lookup (section 2.6), authentication (section 2.8) and the registration rate
// limit [IDN-8], against a real server.
import t from 'tap';
import { basic, codeOf, SEED, startTestServer } from './harness.ts';

t.comment(`seed ${SEED} (set TICKWIRE_TEST_SEED to replay)`);

t.test('register: 201, then USERNAME_TAKEN; lookup finds the user [IDN-6] [IDN-7] [IDN-31]', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const username = s.keys.username('alice');
  const first = await s.call('POST', '/v1/accounts', { body: { username, device: s.keys.device('phone', s.keys.preKeys(1, 3)) } });
  t.equal(first.status, 201);
  t.same(first.schemaIssues, []);
  const created = first.body as { userId: string; username: string; deviceId: number };
  t.equal(created.username, username);
  t.notMatch(first.text, /secret/i, 'the answer carries no secret [AUT-4]');
  const again = await s.call('POST', '/v1/accounts', { body: { username, device: s.keys.device() } });
  t.equal(again.status, 409);
  t.equal(codeOf(again), 'USERNAME_TAKEN');
  t.same(again.schemaIssues, []);

  const me = await s.register();
  const found = await s.call('GET', `/v1/usernames/${username}`, { auth: me });
  t.equal(found.status, 200);
  t.same(found.body, { userId: created.userId, username });
  t.same(found.schemaIssues, []);
  const missing = await s.call('GET', '/v1/usernames/nobody_here', { auth: me });
  t.equal(missing.status, 404);
  t.equal(codeOf(missing), 'UNKNOWN_USER');
  t.same(missing.schemaIssues, []);
  t.equal((await s.call('GET', `/v1/usernames/${username}`)).status, 401);
});

t.test('of concurrent registrations of one username exactly one succeeds [IDN-7]', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const username = s.keys.username('race');
  const answers = await Promise.all(Array.from({ length: 10 }, () => s.call('POST', '/v1/accounts', { body: { username, device: s.keys.device() } })));
  t.equal(answers.filter((a) => a.status === 201).length, 1);
  t.equal(answers.filter((a) => codeOf(a) === 'USERNAME_TAKEN').length, 9);
});

t.test('registration body rules [IDN-9] [TRN-6]', async (t) => {
  const s = await startTestServer({ prekeyBatchMax: 5 });
  t.teardown(() => s.close());
  const over = await s.call('POST', '/v1/accounts', { body: { username: s.keys.username(), device: s.keys.device('p', s.keys.preKeys(1, 6)) } });
  t.equal(over.status, 400, 'more than prekeyBatchMax one-time prekeys');
  const twice = s.keys.preKeys(1, 2);
  twice[1]!.keyId = 1;
  const dup = await s.call('POST', '/v1/accounts', { body: { username: s.keys.username(), device: s.keys.device('p', twice) } });
  t.equal(dup.status, 400, 'a repeated keyId');
  const name65 = await s.call('POST', '/v1/accounts', { body: { username: s.keys.username(), device: { ...s.keys.device(), name: 'n'.repeat(65) } } });
  t.equal(name65.status, 400, 'a name over 64 code points');
  const emoji = await s.call('POST', '/v1/accounts', { body: { username: s.keys.username(), device: { ...s.keys.device(), name: '📱'.repeat(64) } } });
  t.equal(emoji.status, 201, '64 code points are fine even when they are 128 UTF-16 units');
  for (const answer of [over, dup, name65]) {
    t.equal(codeOf(answer), 'BAD_REQUEST');
    t.same(answer.schemaIssues, []);
  }
});

t.test('registrationsPerMinute per source address, shared with POST /v1/devices [IDN-8] [LIM-10] [ERR-4]', async (t) => {
  const s = await startTestServer({ registrationsPerMinute: 3 });
  t.teardown(() => s.close());
  const owner = await s.register();
  const code = await s.call('POST', '/v1/devices/link-codes', { auth: owner });
  // A link attempt with an unknown code reaches the rate-limit check, so it counts whatever its outcome.
  const bogus = await s.call('POST', '/v1/devices', { body: { linkCode: 'AAAAAAAAAAAAAAAAAAAAAAAA', device: s.keys.device() } });
  t.equal(codeOf(bogus), 'INVALID_LINK_CODE');
  await s.register();
  const limited = await s.call('POST', '/v1/devices', { body: { linkCode: (code.body as { code: string }).code, device: s.keys.device() } });
  t.equal(limited.status, 429);
  t.equal(codeOf(limited), 'RATE_LIMITED');
  t.same(limited.schemaIssues, []);
  const retryAfterMs = (limited.body as { error: { retryAfterMs: number } }).error.retryAfterMs;
  t.ok(retryAfterMs >= 1 && retryAfterMs <= 60_000, `retryAfterMs ${retryAfterMs} within the window`);
  t.equal(limited.headers.get('retry-after'), String(Math.ceil(retryAfterMs / 1000)));
  const alsoLimited = await s.call('POST', '/v1/accounts', { body: { username: s.keys.username(), device: s.keys.device() } });
  t.equal(alsoLimited.status, 429, 'accounts and links share one count');
  // The refused link created nothing [IDN-8].
  const list = await s.call('GET', '/v1/devices', { auth: owner });
  t.equal((list.body as { devices: unknown[] }).devices.length, 1);
});

t.test('authentication failures are one identical 401 [AUT-6] [AUT-7]', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const alice = await s.register();
  const bob = await s.register();
  const headers = [
    undefined,
    'Bearer abc',
    'Basic',
    'Basic !!!!',
    'Basic ' + Buffer.from('no-colon').toString('base64'),
    'Basic ' + Buffer.from(`${alice.userId}:${alice.secret}`).toString('base64'),
    'Basic ' + Buffer.from(`${alice.userId}.01:${alice.secret}`).toString('base64'),
    basic({ ...alice, secret: s.keys.secret() }),
    basic({ ...alice, deviceId: 99 }),
    basic({ ...alice, userId: 'nosuchuser' }),
    // Alice's secret cannot act for Bob [AUT-8].
    basic({ userId: bob.userId, deviceId: bob.deviceId, secret: alice.secret }),
  ];
  const bodies = new Set<string>();
  for (const header of headers) {
    const answer = await s.call('GET', '/v1/devices', header === undefined ? {} : { auth: header });
    t.equal(answer.status, 401, `${header ?? 'no header'} → 401`);
    t.equal(answer.headers.get('www-authenticate'), 'Basic realm="tickwire"');
    t.same(answer.schemaIssues, []);
    bodies.add(answer.text);
  }
  t.equal(bodies.size, 1, 'the same body whichever part was wrong');
  // The scheme name in any letter case [AUT-6].
  const lower = 'basic ' + basic(alice).slice(6);
  t.equal((await s.call('GET', '/v1/devices', { auth: lower })).status, 200);
  t.equal((await s.call('GET', '/v1/devices', { auth: 'BASIC ' + basic(alice).slice(6) })).status, 200);
});

t.test('username lookups are rate-limited per device [SEC-6]', async (t) => {
  const s = await startTestServer({}, { config: { usernameLookupsPerMinute: 2 } });
  t.teardown(() => s.close());
  const me = await s.register();
  const other = await s.register();
  t.equal((await s.call('GET', `/v1/usernames/${other.username}`, { auth: me })).status, 200);
  t.equal((await s.call('GET', '/v1/usernames/nobody_here', { auth: me })).status, 404);
  const limited = await s.call('GET', `/v1/usernames/${other.username}`, { auth: me });
  t.equal(limited.status, 429);
  t.same(limited.schemaIssues, []);
  t.equal((await s.call('GET', `/v1/usernames/${me.username}`, { auth: other })).status, 200, 'another device has its own count');
});
