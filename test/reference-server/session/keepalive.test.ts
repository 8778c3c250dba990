// The keepalive timer of one session (reference-server/session/keepalive.ts) on its own, with a short idle timeout
// (the server's allowed minimum is 30 s; idle.test.ts checks that end to end).
import t from 'tap';
import { Keepalive } from '../../../reference-server/session/keepalive.ts';

const IDLE_MS = 200;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('[KAL-3] a pong in the same millisecond as its ping still counts: pings go on, no IDLE_TIMEOUT', async (t) => {
  const pings: string[] = [];
  let idle = false;
  const keepalive: Keepalive = new Keepalive({
    now: Date.now,
    idleTimeoutMs: IDLE_MS,
    // Answered at once, as a client on loopback may: the pong's arrival has the ping's timestamp.
    ping: (id) => {
      pings.push(id);
      keepalive.touch();
    },
    idle: () => (idle = true),
  });
  keepalive.start();
  t.teardown(() => keepalive.stop());
  await sleep(IDLE_MS * 4);
  t.notOk(idle, 'a session that answers every ping is never idle');
  t.ok(pings.length >= 4, `a ping every idleTimeoutMs / 2 of silence (${pings.length} in ${IDLE_MS * 4} ms)`);
  t.same(pings.slice(0, 3), ['srv.1', 'srv.2', 'srv.3']);
});

t.test('[KAL-5] an unanswered ping is not repeated, and the session ends after idleTimeoutMs of silence', async (t) => {
  const pings: string[] = [];
  let idleAt = 0;
  const started = Date.now();
  const keepalive = new Keepalive({ now: Date.now, idleTimeoutMs: IDLE_MS, ping: (id) => pings.push(id), idle: () => (idleAt = Date.now()) });
  keepalive.start();
  t.teardown(() => keepalive.stop());
  await sleep(IDLE_MS * 2);
  t.same(pings, ['srv.1'], 'one ping half-way');
  t.ok(idleAt - started >= IDLE_MS, `idle after ${idleAt - started} ms`);
});

t.test('any frame is life: touches keep a session open without pings', async (t) => {
  const pings: string[] = [];
  let idle = false;
  const keepalive = new Keepalive({ now: Date.now, idleTimeoutMs: IDLE_MS, ping: (id) => pings.push(id), idle: () => (idle = true) });
  keepalive.start();
  t.teardown(() => keepalive.stop());
  for (let i = 0; i < 10; i++) {
    await sleep(IDLE_MS / 5);
    keepalive.touch();
  }
  t.notOk(idle);
  t.same(pings, [], 'no ping while frames keep arriving');
});
