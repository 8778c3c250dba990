// Presence, typing and flow control over real sockets (sections 5 and 6.4).
import t from 'tap';
import { linkDevice, openSession, registerUser, startTestServer, sleep } from '../helpers.ts';

t.test('presence (section 5.1)', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0, maxPresenceBatch: 3, maxPresenceSubscriptions: 3 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const bob2 = await linkDevice(server, bob);
  const carol = await registerUser(server);
  const { client: a } = await openSession(server, alice);

  t.match(await a.request({ type: 'subscribe_presence', id: 'bad', userIds: [bob.userId, 'ghost'] }), { type: 'error', code: 'UNKNOWN_USER' }, '[PRS-3] (2) whole request');
  t.match(await a.request({ type: 'subscribe_presence', id: 'big', userIds: ['a1', 'a2', 'a3', 'a4'] }), { code: 'INVALID_FRAME' }, '[PRS-3] (1) maxPresenceBatch');
  t.match(await a.request({ type: 'subscribe_presence', id: 's1', userIds: [bob.userId, carol.userId, bob.userId] }), { type: 'subscribed' });
  const initial = [await a.nextOf('presence'), await a.nextOf('presence')];
  t.same(initial.map((p) => [p.userId, p.status]), [[bob.userId, 'offline'], [carol.userId, 'offline']], '[PRS-4] [PRS-5] one frame per distinct user, in order');
  t.notOk('lastSeenAt' in initial[0]!, '[PRS-8] no lastSeenAt when never seen');
  t.match(await a.request({ type: 'subscribe_presence', id: 's2', userIds: [alice.userId, bob.userId] }), { type: 'subscribed' }, 'own user and an existing subscription');
  t.match(await a.nextOf('presence'), { userId: alice.userId, status: 'online' });
  await a.nextOf('presence', (p) => p.userId === bob.userId);
  t.match(await a.request({ type: 'subscribe_presence', id: 's3', userIds: ['someone-new'] }), { code: 'UNKNOWN_USER' });
  const dave = await registerUser(server);
  t.match(await a.request({ type: 'subscribe_presence', id: 's4', userIds: [dave.userId] }), { code: 'TOO_MANY_SUBSCRIPTIONS' }, '[PRS-3] (3)');

  const b1 = (await openSession(server, bob)).client;
  t.match(await a.nextOf('presence'), { userId: bob.userId, status: 'online' }, '[PRS-6]');
  t.notOk('lastSeenAt' in (a.received[a.received.length - 1] as object), '[PRS-8] none with online');
  const b2 = (await openSession(server, bob2)).client;
  t.ok(await a.quietFor(200, (f) => f.type === 'presence'), 'a second device changes nothing');
  await b1.close();
  t.ok(await a.quietFor(200, (f) => f.type === 'presence'), 'still online while one device has a session');
  const before = Date.now();
  await b2.close();
  const offline = await a.nextOf('presence');
  t.match(offline, { userId: bob.userId, status: 'offline' });
  t.ok(offline.lastSeenAt! >= before - 5 && offline.lastSeenAt! <= Date.now(), '[PRS-2] lastSeenAt is when the last session closed');

  t.match(await a.request({ type: 'unsubscribe_presence', id: 'u1', userIds: [bob.userId, 'never-subscribed'] }), { type: 'unsubscribed', id: 'u1' }, '[PRS-9]');
  t.match(await a.request({ type: 'unsubscribe_presence', id: 'u2', userIds: ['a', 'b', 'c', 'd'] }), { code: 'INVALID_FRAME' }, '[PRS-18]');
  const b3 = (await openSession(server, bob)).client;
  t.ok(await a.quietFor(300, (f) => f.type === 'presence' && f.userId === bob.userId), 'no presence after unsubscribed');
  await b3.close();
  await a.close();
});

t.test('typing (section 5.2)', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0, typingPerMinute: 3 } });
  const alice = await registerUser(server);
  const alice2 = await linkDevice(server, alice);
  const bob = await registerUser(server);
  const bob2 = await linkDevice(server, bob);
  const { client: a } = await openSession(server, alice);
  const { client: a2 } = await openSession(server, alice2);
  const { client: b } = await openSession(server, bob);
  const { client: b2 } = await openSession(server, bob2);

  a.send({ type: 'typing', to: bob.userId, state: 'started', from: { userId: 'forged', deviceId: 9 } });
  for (const c of [b, b2]) t.match(await c.nextOf('typing'), { from: { userId: alice.userId, deviceId: alice.deviceId }, state: 'started' }, '[PRS-11] [AUT-9]');
  a.send({ type: 'typing', to: alice.userId, state: 'stopped' });
  t.match(await a2.nextOf('typing'), { from: { deviceId: alice.deviceId }, state: 'stopped' }, 'to own user: the other device');
  t.ok(await a.quietFor(200, (f) => f.type === 'typing'), 'never to the sending device itself');
  a.send({ type: 'typing', id: 'tu', to: 'ghost', state: 'started' });
  t.match(await a.nextOf('error'), { id: 'tu', code: 'UNKNOWN_USER' }, '[PRS-12]');
  // Three frames counted so far: the fourth is over typingPerMinute and dropped without an error [PRS-13].
  a.send({ type: 'typing', id: 'over', to: 'ghost', state: 'started' });
  a.send({ type: 'typing', to: bob.userId, state: 'stopped' });
  t.ok(await a.quietFor(300, (f) => f.type === 'error'), 'dropped silently');
  t.ok(await b.quietFor(100, (f) => f.type === 'typing'), 'not forwarded');
  await Promise.all([a.close(), a2.close(), b.close(), b2.close()]);
});

t.test('[KAL-14] a client that stops reading is closed with SLOW_CONSUMER / 4429', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0, maxFrameBytes: 65536, maxEnvelopeBytes: 16384 }, config: { maxBufferedBytes: 262144, shutdownGraceMs: 10_000 } });
  const alice = await registerUser(server);
  const { client } = await openSession(server, alice);
  client.ws.pause();
  const id = 'p'.repeat(64);
  const metricSeen = async () => /tickwire_ws_errors_total\{code="SLOW_CONSUMER"\} 1/.test(server.ctx.metrics.render());
  for (let round = 0; round < 400 && !(await metricSeen()); round++) {
    for (let i = 0; i < 500; i++) client.send({ type: 'ping', id });
    await sleep(5);
  }
  t.ok(await metricSeen(), 'the server gave up on the connection');
  client.ws.resume();
  const closed = await client.closed;
  t.same(closed, { code: 4429, reason: 'SLOW_CONSUMER' });
  t.ok(client.received.some((f) => f.type === 'error' && f.code === 'SLOW_CONSUMER'), 'the error frame came first');
});


