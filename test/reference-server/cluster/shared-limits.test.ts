// [DPL-8] The limits of section 6.5 and the SEC-8 delay are counted over every process of a service that shares Redis:
// first the counters themselves (two RedisLimits, as two processes would hold), then two `tickwire serve` processes
// on one redis-server, as an operator runs them. A Redis that does not answer refuses limited requests with
// StoreUnavailableError (503 TEMPORARILY_UNAVAILABLE), never lets them through uncounted.
import t from 'tap';
import { Redis } from 'ioredis';
import { RedisLimits, rateKey } from '../../../reference-server/cluster/redis-limits.ts';
import type { Logger } from '../../../reference-server/context.ts';
import { StoreUnavailableError } from '../../../reference-server/store/errors.ts';
import { basicAuth, deviceRegistration, http, registerUser, sleep, username } from '../helpers.ts';
import { RedisServer } from '../store/redis/redis-server.ts';
import { ServeProcess, tempDir } from './serve-process.ts';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

t.test('the counters: two processes share one sliding window', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.dispose());
  const windowMs = 1500;
  const [p1, p2] = await Promise.all([RedisLimits.open(redis.url, { log: quiet, windowMs }), RedisLimits.open(redis.url, { log: quiet, windowMs })]);
  t.teardown(() => Promise.all([p1.close(), p2.close()]));

  t.test('N requests pass whichever process counts them; the next is refused on both [LIM-8] [LIM-9]', async (t) => {
    const a = p1.limiter('fetches', 5);
    const b = p2.limiter('fetches', 5);
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await (i % 2 === 0 ? a : b).take('dev-1'));
    t.same(decisions, Array.from({ length: 5 }, () => ({ ok: true })), 'five requests over two processes pass');
    const refusedA = await a.take('dev-1');
    const refusedB = await b.take('dev-1');
    t.equal(refusedA.ok, false, 'the sixth is refused on the first process');
    t.equal(refusedB.ok, false, 'and on the second');
    if (!refusedA.ok) t.ok(refusedA.retryAfterMs >= 1 && refusedA.retryAfterMs <= windowMs, `[LIM-10] retryAfterMs ${refusedA.retryAfterMs} within the window`);
    t.same(await a.take('dev-2'), { ok: true }, 'another key has its own count');
    t.equal((await b.take('dev-1')).ok, false, 'refusals are not counted, but the limit still holds');
  });

  t.test('a refused request is not counted, and the window slides [PKY-17] [LIM-10]', async (t) => {
    const a = p1.limiter('slide', 2);
    const b = p2.limiter('slide', 2);
    t.same(await a.take('k'), { ok: true });
    await sleep(windowMs / 2);
    t.same(await b.take('k'), { ok: true });
    // Many refusals: none of them may push the window's end further out.
    let refusal = await a.take('k');
    for (let i = 0; i < 20; i++) refusal = await (i % 2 ? a : b).take('k');
    t.equal(refusal.ok, false);
    const wait = refusal.ok ? 0 : refusal.retryAfterMs;
    t.ok(wait <= windowMs / 2 + 50, `[LIM-10] the first request leaves the window in ${wait} ms, not later`);
    await sleep(wait + 20);
    t.same(await b.take('k'), { ok: true }, 'once the first request left the window, one more passes');
    t.equal((await a.take('k')).ok, false, 'and only one');
  });

  t.test('idle keys expire with their window', async (t) => {
    await p1.limiter('expiry', 3).take('gone');
    const probe = new Redis(redis.url);
    t.teardown(() => probe.quit());
    const ttl = await probe.pttl(rateKey('expiry', 'gone'));
    t.ok(ttl > 0 && ttl <= windowMs, `PTTL ${ttl} ms`);
  });

  t.test('failed authentications are counted over both processes [SEC-8]', async (t) => {
    const f1 = p1.authFailures(2);
    const f2 = p2.authFailures(2);
    const delays = [];
    for (let i = 0; i < 6; i++) delays.push(await (i % 2 === 0 ? f1 : f2).failed('198.51.100.7'));
    t.same(delays, [0, 0, 25, 50, 75, 100], 'each failure past the two free ones waits 25 ms more, whichever process saw it');
    t.equal(await f1.failed('198.51.100.8'), 0, 'another address starts from nothing');
  });

  t.test('Redis unreachable: limited requests are refused with StoreUnavailableError, never passed [DPL-8]', async (t) => {
    const a = p1.limiter('down', 100);
    const failures = p1.authFailures(0);
    await redis.stop();
    await t.rejects(a.take('k'), StoreUnavailableError);
    t.equal(await failures.failed('203.0.113.9'), 25, '[SEC-8] the delay falls back to this process\'s own count');
    await redis.restart();
    let recovered = false;
    for (let i = 0; i < 100 && !recovered; i++) {
      recovered = await a.take('k').then(() => true, () => false);
      if (!recovered) await sleep(100);
    }
    t.ok(recovered, 'the counters recover by themselves when Redis is back');
  });
});

t.test('two serve processes on one Redis enforce one limit [DPL-8] [IDN-8] [PKY-17] [SEC-8]', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.dispose());
  const args = () => [
    '--port', '0', '--redis', redis.url, '--data-dir', tempDir(t), '--log-level', 'error',
    '--registrations-per-minute', '4', '--prekey-fetches-per-minute', '3', '--auth-failures-per-minute', '1',
    '--ack-timeout-ms', '1000', '--shutdown-grace-ms', '2000',
  ];
  const [A, B] = await Promise.all([ServeProcess.start(t, args()), ServeProcess.start(t, args())]);

  // Registrations per source address (127.0.0.1 for both): four pass, alternating A and B, then both refuse.
  const users = [];
  for (let i = 0; i < 4; i++) users.push(await registerUser(i % 2 === 0 ? A : B));
  for (const server of [A, B]) {
    const refused = await http(server, 'POST', '/v1/accounts', { body: { username: username(), device: deviceRegistration() } });
    t.equal(refused.status, 429, `[IDN-8] the fifth registration is refused by ${server === A ? 'A' : 'B'}`);
    t.match(refused.body, { error: { code: 'RATE_LIMITED', retryAfterMs: Number } });
  }

  // Prekey bundle fetches per requesting device: three over both processes, then refused.
  const [alice, bob] = users as [(typeof users)[number], (typeof users)[number]];
  const path = `/v1/users/${bob.userId}/keys?deviceId=${bob.deviceId}`;
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await http(i % 2 === 0 ? A : B, 'GET', path, { auth: alice })).status);
  t.same(statuses, [200, 200, 200, 429, 429], '[PKY-17] three fetches over A and B, then refused on both');

  // [SEC-8] One free failure per address, then each failure waits 25 ms more, counted over A and B: the sixth
  // failure waits at least 125 ms (each process counting alone would hold it 50 ms).
  const wrong = { ...alice, secret: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
  let last = 0;
  for (let i = 0; i < 6; i++) {
    const started = performance.now();
    const answer = await fetch(`${(i % 2 === 0 ? A : B).url}/v1/devices`, { headers: { authorization: basicAuth(wrong) } });
    await answer.text();
    t.equal(answer.status, 401);
    last = performance.now() - started;
  }
  t.ok(last >= 120, `the sixth failure was held ${last.toFixed(0)} ms`);

  // Redis stopped: a limited request is refused with 503, not let through.
  await redis.stop();
  const down = await http(B, 'GET', path, { auth: alice });
  t.equal(down.status, 503, 'Redis down: 503');
  t.match(down.body, { error: { code: 'TEMPORARILY_UNAVAILABLE' } });
  await redis.restart();
});
