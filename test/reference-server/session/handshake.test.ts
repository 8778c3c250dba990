// The WebSocket endpoint and authentication over real sockets (sections 1.3, 1.4, 2.9): subprotocol, hello,
// welcome, and every error a connection can meet before and around authentication.
import t from 'tap';
import { request } from 'node:http';
import { checkServerFrame, defaultLimits, WS_SUBPROTOCOL } from '../../../spec/index.ts';
import { openSession, registerUser, startTestServer, TestClient, sleep } from '../helpers.ts';

/** A raw upgrade request, so that the test controls every header. */
function rawUpgrade(url: string, path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method, headers });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers });
    });
    req.on('error', reject);
    req.end();
  });
}

const upgradeHeaders = (extra: Record<string, string> = {}) => ({
  Connection: 'Upgrade',
  Upgrade: 'websocket',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version': '13',
  ...extra,
});

t.test('the upgrade (section 1.3)', async (t) => {
  const server = await startTestServer(t);

  t.test('[TRN-15] selects tickwire.v1 among the offered subprotocols', async (t) => {
    const answer = await rawUpgrade(server.url, '/v1/ws', upgradeHeaders({ 'Sec-WebSocket-Protocol': `tickwire.v0, ${WS_SUBPROTOCOL}` }));
    t.equal(answer.status, 101);
    t.equal(answer.headers['sec-websocket-protocol'], WS_SUBPROTOCOL);
  });

  t.test('[TRN-17] refuses an upgrade that does not offer tickwire.v1 with 400 UNSUPPORTED_SUBPROTOCOL', async (t) => {
    for (const offered of [undefined, 'tickwire.v2', 'chat']) {
      const answer = await rawUpgrade(server.url, '/v1/ws', upgradeHeaders(offered === undefined ? {} : { 'Sec-WebSocket-Protocol': offered }));
      t.equal(answer.status, 400, `offered ${offered}`);
      t.match(answer.headers['content-type'], /^application\/json; charset=utf-8$/);
      t.same(JSON.parse(answer.body).error.code, 'UNSUPPORTED_SUBPROTOCOL');
    }
  });

  t.test('[TRN-18] an invalid upgrade request is BAD_REQUEST, checked before the subprotocol', async (t) => {
    const answer = await rawUpgrade(server.url, '/v1/ws', upgradeHeaders({ 'Sec-WebSocket-Key': 'short' }));
    t.equal(answer.status, 400);
    t.equal(JSON.parse(answer.body).error.code, 'BAD_REQUEST');
    const version = await rawUpgrade(server.url, '/v1/ws', upgradeHeaders({ 'Sec-WebSocket-Version': '8', 'Sec-WebSocket-Protocol': WS_SUBPROTOCOL }));
    t.equal(version.status, 400);
    t.equal(JSON.parse(version.body).error.code, 'BAD_REQUEST');
  });

  t.test('[TRN-8] an upgrade to another path is NOT_FOUND; the query string takes no part', async (t) => {
    const other = await rawUpgrade(server.url, '/v1/wss', upgradeHeaders({ 'Sec-WebSocket-Protocol': WS_SUBPROTOCOL }));
    t.equal(other.status, 404);
    t.equal(JSON.parse(other.body).error.code, 'NOT_FOUND');
    const query = await rawUpgrade(server.url, '/v1/ws?x=1', upgradeHeaders({ 'Sec-WebSocket-Protocol': WS_SUBPROTOCOL }));
    t.equal(query.status, 101);
  });
});

t.test('authentication (section 2.9)', async (t) => {
  const server = await startTestServer(t, { limits: { helloTimeoutMs: 1000, window: 64, prekeyLowWater: 0 } });
  const alice = await registerUser(server);

  t.test('[AUT-13] [AUT-14] [AUT-15] [LIM-1] welcome carries the session, the identity and every advertised limit', async (t) => {
    const first = await openSession(server, alice, { receiveMax: 5, client: { name: 'tests', version: '1' } });
    t.equal(first.welcome.userId, alice.userId);
    t.equal(first.welcome.deviceId, alice.deviceId);
    t.match(first.welcome.sessionId, /^[A-Za-z0-9_-]{1,64}$/);
    t.ok(checkServerFrame(first.welcome).ok, 'welcome validates against its schema');
    t.same(Object.keys(first.welcome.limits).sort(), Object.keys(defaultLimits()).sort());
    t.equal(first.welcome.limits.window, 5, 'window = min(window, receiveMax)');
    const second = await openSession(server, alice, { receiveMax: 1000 });
    t.equal(second.welcome.limits.window, 64, 'window = configured window when receiveMax is larger');
    t.not(second.welcome.sessionId, first.welcome.sessionId);
    await second.client.close();
  });

  t.test('[AUT-12] wrong credentials: AUTH_FAILED echoing the hello id, close 4401, same for every wrong part', async (t) => {
    const variants = [
      { userId: alice.userId, deviceId: alice.deviceId, secret: 'A'.repeat(43) },
      { userId: alice.userId, deviceId: alice.deviceId + 100, secret: alice.secret },
      { userId: 'nobody-here', deviceId: 1, secret: alice.secret },
    ];
    for (const credentials of variants) {
      const client = await TestClient.connect(server);
      const answer = await client.request({ type: 'hello', id: 'h-bad', ...credentials });
      t.match(answer, { type: 'error', id: 'h-bad', code: 'AUTH_FAILED' });
      t.same(await client.closed, { code: 4401, reason: 'AUTH_FAILED' });
    }
  });

  t.test('[AUT-11] a first frame that is not a valid hello: UNAUTHENTICATED, close 4401', async (t) => {
    for (const first of [{ type: 'ping', id: 'p1' }, { type: 'nonsense', id: 'x1' }, { id: 'x2' }, { type: 'hello', id: 'h1', userId: alice.userId }]) {
      const client = await TestClient.connect(server);
      client.send(first);
      const error = await client.nextOf('error');
      t.equal(error.code, 'UNAUTHENTICATED', JSON.stringify(first));
      t.equal(error.id, first.id, 'the valid id is echoed');
      t.same(await client.closed, { code: 4401, reason: 'UNAUTHENTICATED' });
    }
  });

  t.test('[TRN-23] a binary message: BINARY_NOT_SUPPORTED, close 1003 (before and after hello)', async (t) => {
    const client = await TestClient.connect(server);
    client.sendRaw(Buffer.from('{"type":"hello"}'), true);
    t.equal((await client.nextOf('error')).code, 'BINARY_NOT_SUPPORTED');
    t.same(await client.closed, { code: 1003, reason: 'BINARY_NOT_SUPPORTED' });
    const { client: session } = await openSession(server, alice);
    session.sendRaw(Buffer.from([1, 2, 3]), true);
    t.equal((await session.nextOf('error')).code, 'BINARY_NOT_SUPPORTED');
    t.same(await session.closed, { code: 1003, reason: 'BINARY_NOT_SUPPORTED' });
  });

  t.test('[TRN-24] a text message that is not a JSON object: MALFORMED_FRAME, close 4400', async (t) => {
    for (const text of ['not json', '[1,2]', '42', '"hello"', 'null']) {
      const { client } = await openSession(server, alice);
      client.sendRaw(text);
      const error = await client.nextOf('error');
      t.equal(error.code, 'MALFORMED_FRAME', text);
      t.notOk('id' in error);
      t.same(await client.closed, { code: 4400, reason: 'MALFORMED_FRAME' });
    }
    const early = await TestClient.connect(server);
    early.sendRaw('{oops');
    t.equal((await early.nextOf('error')).code, 'MALFORMED_FRAME', 'before hello too');
    t.equal((await early.closed).code, 4400);
  });

  t.test('[TRN-21] a message over maxFrameBytes closes with 1009', async (t) => {
    const { client, welcome } = await openSession(server, alice);
    client.sendRaw(JSON.stringify({ type: 'ping', id: 'big', pad: 'x'.repeat(welcome.limits.maxFrameBytes) }));
    const closed = await client.closed;
    t.equal(closed.code, 1009);
    t.equal(closed.reason, 'FRAME_TOO_LARGE');
  });

  t.test('[AUT-10] no first data message within helloTimeoutMs: HELLO_TIMEOUT, close 4408', async (t) => {
    const client = await TestClient.connect(server);
    const started = Date.now();
    client.ws.ping();
    const error = await client.nextOf('error', () => true, 3000);
    t.equal(error.code, 'HELLO_TIMEOUT');
    t.same(await client.closed, { code: 4408, reason: 'HELLO_TIMEOUT' });
    t.ok(Date.now() - started >= 950, 'not before helloTimeoutMs');
  });

  t.test('[AUT-17] hello on a session: ALREADY_AUTHENTICATED, the session goes on', async (t) => {
    const { client } = await openSession(server, alice);
    const answer = await client.request({ type: 'hello', id: 'again', userId: alice.userId, deviceId: alice.deviceId, secret: alice.secret });
    t.match(answer, { type: 'error', id: 'again', code: 'ALREADY_AUTHENTICATED' });
    t.match(await client.request({ type: 'ping', id: 'still' }), { type: 'pong', id: 'still' });
    await client.close();
  });

  t.test('[AUT-19] [AUT-16] frames sent before welcome are processed after it, in order', async (t) => {
    const client = await TestClient.connect(server);
    client.send({ type: 'hello', id: 'h-pipe', userId: alice.userId, deviceId: alice.deviceId, secret: alice.secret });
    client.send({ type: 'ping', id: 'p-pipe' });
    client.send({ type: 'bogus', id: 'b-pipe' });
    await client.nextOf('pong', (f) => f.id === 'p-pipe');
    await client.nextOf('error', (f) => f.id === 'b-pipe');
    const types = client.received.map((f) => f.type);
    t.equal(types[0], 'welcome', 'welcome comes first');
    t.ok(types.indexOf('pong') < types.indexOf('error'), 'answers in order');
    await client.close();
  });
});

t.test('frames on a session (sections 1.4, 1.5, 6.1)', async (t) => {
  const server = await startTestServer(t, { limits: { prekeyLowWater: 0 } });
  const alice = await registerUser(server);
  const { client } = await openSession(server, alice);

  t.test('[TRN-26] [TRN-28] INVALID_FRAME, echoing the id only when it is well-formed', async (t) => {
    t.match(await client.request({ type: 'send', id: 'inv1' }), { type: 'error', id: 'inv1', code: 'INVALID_FRAME' });
    client.send({ type: 'send', id: 'bad id with spaces' });
    const noId = await client.nextOf('error', (f) => f.code === 'INVALID_FRAME');
    t.notOk('id' in noId);
    client.send({ id: 'no-type' });
    t.match(await client.nextOf('error'), { id: 'no-type', code: 'INVALID_FRAME' });
    client.send({ type: 42, id: 'num-type' });
    t.match(await client.nextOf('error'), { id: 'num-type', code: 'INVALID_FRAME' });
  });

  t.test('[TRN-27] UNKNOWN_FRAME_TYPE, non-fatal', async (t) => {
    t.match(await client.request({ type: 'teleport', id: 'u1' }), { type: 'error', id: 'u1', code: 'UNKNOWN_FRAME_TYPE' });
    client.send({ type: 'welcome' });
    const error = await client.nextOf('error');
    t.equal(error.code, 'UNKNOWN_FRAME_TYPE', 'a server frame type is unknown from a client');
    t.notOk('id' in error);
  });

  t.test('[KAL-1] ping → pong; [KAL-15] a pong gets no answer; [TRN-30] repeated ids are each answered', async (t) => {
    client.drain();
    client.send({ type: 'pong', id: 'unsolicited' });
    t.match(await client.request({ type: 'ping', id: 'same' }), { type: 'pong', id: 'same' });
    t.match(await client.request({ type: 'ping', id: 'same' }), { type: 'pong', id: 'same' });
    t.ok(await client.quietFor(200), 'nothing else was sent');
  });

  t.test('[ERR-15] unknown members are ignored', async (t) => {
    t.match(await client.request({ type: 'ping', id: 'extra', future: { nested: true } }), { type: 'pong', id: 'extra' });
  });

  t.test('[TRN-37] TOO_MANY_PENDING beyond maxPendingRequests unanswered requests', async (t) => {
    const bob = await registerUser(server);
    const limit = (await openSession(server, bob)).welcome.limits.maxPendingRequests;
    const { client: burst } = await openSession(server, bob);
    const ids = Array.from({ length: limit * 4 }, (_, i) => `b${i}`);
    const payload = ids.map((id) => JSON.stringify({ type: 'subscribe_presence', id, userIds: [alice.userId] }));
    for (const text of payload) burst.sendRaw(text);
    const answers = await Promise.all(ids.map((id) => burst.next((f) => 'id' in f && f.id === id, 10_000)));
    const refused = answers.filter((f) => f.type === 'error' && f.code === 'TOO_MANY_PENDING').length;
    t.ok(refused > 0, `${refused} requests refused with TOO_MANY_PENDING`);
    t.ok(answers.length - refused >= limit, 'at least maxPendingRequests were served');
    t.ok(answers.every((f) => f.type === 'subscribed' || (f.type === 'error' && f.code === 'TOO_MANY_PENDING')));
    await burst.close();
  });
  t.teardown(() => client.close());
});

t.test('[KAL-13] shutdown closes every session with SERVER_RESTART / 1012', async (t) => {
  const server = await startTestServer(t);
  const alice = await registerUser(server);
  const { client } = await openSession(server, alice);
  const waiting = await TestClient.connect(server);
  await server.close();
  t.equal((await client.nextOf('error')).code, 'SERVER_RESTART');
  t.same(await client.closed, { code: 1012, reason: 'SERVER_RESTART' });
  t.equal((await waiting.closed).code, 1012);
  await sleep(10);
});


