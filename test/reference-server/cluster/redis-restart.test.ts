// Redis killed (SIGKILL) and started again under a steady stream of sends to `tickwire serve --redis`: while it is
// gone, sends are answered TEMPORARILY_UNAVAILABLE, never send_ok [MSG-18]; once it is back the same server process
// accepts sends again without anyone touching it; and every send it acknowledged, before, during or after, is in the
// recipient's queue exactly once, in order [MSG-12] [DLV-7]. A send answered TEMPORARILY_UNAVAILABLE may or may not
// have been stored (MSG-18): it may be there, at most once. A hello while Redis is gone is told to try again later
// [AUT-20].
import t from 'tap';
import type { DeliverFrame, MessageItem } from '../../../spec/index.ts';
import { openSession, registerUser, sendFrame, sleep, TestClient } from '../helpers.ts';
import { RedisServer } from '../store/redis/redis-server.ts';
import { ServeProcess, TEST_SERVER_ARGS, tempDir } from './serve-process.ts';

/** Time between two sends of the stream. */
const SEND_EVERY_MS = 10;

t.test('Redis restarting under load: no false ACK, recovery by itself, nothing acknowledged lost', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.dispose());
  const server = await ServeProcess.start(t, ['--port', '0', '--redis', redis.url, '--data-dir', tempDir(t), '--log-level', 'error', ...TEST_SERVER_ARGS]);
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const { client: a } = await openSession(server, alice);
  await a.nextOf('queue_empty');

  const acked: string[] = [];
  const unavailable: string[] = [];
  const other: string[] = [];
  let phase: 'before' | 'down' | 'after' = 'before';
  const answered = { before: 0, down: 0, after: 0 };
  let ackedAfterRestart = 0;
  const pending: Array<Promise<void>> = [];
  const sendOne = (client: TestClient) => {
    const frame = sendFrame(bob.userId, [bob.deviceId]);
    const at = phase;
    pending.push(
      client.request(frame, 30_000).then((answer) => {
        answered[at]++;
        if (answer.type === 'send_ok') {
          acked.push(frame.messageId);
          if (at === 'after') ackedAfterRestart++;
        } else if (answer.type === 'error' && answer.code === 'TEMPORARILY_UNAVAILABLE') unavailable.push(frame.messageId);
        else other.push(`${frame.messageId}: ${JSON.stringify(answer)}`);
      }),
    );
  };

  for (let i = 0; i < 50; i++) {
    sendOne(a);
    await sleep(SEND_EVERY_MS);
  }
  await redis.kill();
  phase = 'down';
  for (let i = 0; i < 50; i++) {
    sendOne(a);
    await sleep(SEND_EVERY_MS);
  }
  await Promise.all(pending);
  // [AUT-20] A hello that needs Redis while it is gone: TEMPORARILY_UNAVAILABLE with its id, close 1013, no welcome.
  const early = await TestClient.connect(server);
  const refused = await early.request({ type: 'hello', id: 'h-down', userId: bob.userId, deviceId: bob.deviceId, secret: bob.secret }, 30_000);
  t.match(refused, { type: 'error', id: 'h-down', code: 'TEMPORARILY_UNAVAILABLE', retryAfterMs: Number }, '[AUT-20] hello answered TEMPORARILY_UNAVAILABLE');
  t.same(await early.closed, { code: 1013, reason: 'TEMPORARILY_UNAVAILABLE' }, '[AUT-20] and closed with 1013 (try again later)');
  await redis.restart();
  phase = 'after';
  // Recovery without operator action: the same process, the same session, accepting sends again.
  const deadline = Date.now() + 30_000;
  while (ackedAfterRestart < 20 && Date.now() < deadline) {
    sendOne(a);
    await sleep(SEND_EVERY_MS);
    if (pending.length % 20 === 0) await Promise.all(pending);
  }
  await Promise.all(pending);

  t.same(other, [], 'every send answered send_ok or TEMPORARILY_UNAVAILABLE');
  t.ok(unavailable.length >= 1, `[MSG-18] sends while Redis was gone were refused (${unavailable.length} TEMPORARILY_UNAVAILABLE)`);
  t.ok(ackedAfterRestart >= 20, `the server accepts sends again by itself after the restart (${ackedAfterRestart} acknowledged)`);
  t.ok(answered.down > 0, `sends during the outage were answered (${answered.down})`);

  // Every acknowledged message is in bob's queue exactly once, in the order it was acknowledged; an unavailable one
  // at most once; nothing else. Bob connects as a client would: a hello told to try again later [AUT-20] (the
  // session bus's own connection to Redis may come back a little after the store's) is tried again after
  // retryAfterMs, on a new connection.
  let b: TestClient | undefined;
  let tries = 0;
  for (const until = Date.now() + 30_000; !b; ) {
    tries++;
    const attempt = await TestClient.connect(server);
    const answer = await attempt.request({ type: 'hello', id: `h-bob-${tries}`, userId: bob.userId, deviceId: bob.deviceId, secret: bob.secret }, 30_000);
    if (answer.type === 'welcome') b = attempt;
    else if (answer.type === 'error' && answer.code === 'TEMPORARILY_UNAVAILABLE' && Date.now() < until) {
      await attempt.closed;
      await sleep(answer.retryAfterMs ?? 1000);
    } else throw new Error(`bob's hello: ${JSON.stringify(answer)}`);
  }
  t.comment(`bob's session opened after ${tries} hello(s)`);
  const delivered: MessageItem[] = [];
  for (;;) {
    const frame = await b.next((f) => f.type === 'deliver' || f.type === 'queue_empty', 30_000);
    if (frame.type === 'queue_empty') break;
    const items = (frame as DeliverFrame).items.filter((i): i is MessageItem => i.kind === 'message');
    delivered.push(...items);
    b.send({ type: 'ack', upTo: (frame as DeliverFrame).items.at(-1)!.seq });
  }
  const ids = delivered.map((i) => i.messageId);
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  t.same(acked.filter((id) => !counts.has(id)), [], '[MSG-12] no acknowledged message is missing');
  t.same([...counts].filter(([, n]) => n > 1), [], 'none is there twice');
  const allowed = new Set([...acked, ...unavailable]);
  t.same(ids.filter((id) => !allowed.has(id)), [], 'nothing that was not sent');
  const ackedSet = new Set(acked);
  t.same(ids.filter((id) => ackedSet.has(id)), acked, '[DLV-7] the acknowledged ones in the order they were acknowledged');
  await Promise.all([a.close(), b.close()]);
});
