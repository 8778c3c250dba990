// Keepalive (sections 6.1, 6.2). Slow: idleTimeoutMs cannot go below its allowed minimum of 30 s.
import t from 'tap';
import { openSession, registerUser, startTestServer } from '../helpers.ts';

t.test('[KAL-3] a server ping half-way, [KAL-5] IDLE_TIMEOUT / 4408 after idleTimeoutMs of silence', { timeout: 60_000 }, async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0, idleTimeoutMs: 30_000 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const { client: silent } = await openSession(server, alice);
  const { client: live } = await openSession(server, bob);
  const started = Date.now();
  const ping = await live.nextOf('ping', () => true, 20_000);
  t.ok(Date.now() - started >= 14_500, 'the ping comes after idleTimeoutMs / 2');
  live.send({ type: 'pong', id: ping.id });
  await silent.nextOf('ping', () => true, 5_000);
  t.match(await silent.nextOf('error', () => true, 20_000), { code: 'IDLE_TIMEOUT' });
  t.same(await silent.closed, { code: 4408, reason: 'IDLE_TIMEOUT' });
  t.ok(Date.now() - started >= 29_900, 'not before idleTimeoutMs');
  t.notOk(live.isClosed, 'a session that answered the ping stays open');
  await live.close();
});
