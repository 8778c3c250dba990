// The fuzzer's clock: a stall of the fuzzer's own process does not count against the server. An answer that reached
// the socket while this process was blocked is read before a deadline set earlier fires; with a plain setTimeout the
// deadline fires first, which is the false "no answer" this clock exists to prevent.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { activeNow, activeTimeout, startStallWatch, stallReport } from '../../fuzz/clock.ts';

function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // A busy loop: this process cannot run anything else, as in a long garbage collection or a paused machine.
  }
}

/** A server in another process (this one is about to block) that answers every connection at once. */
async function answeringServer(t: Test): Promise<number> {
  const child = spawn(process.execPath, ['-e', "const s = require('net').createServer((c) => { c.on('error', () => {}); c.end('answer'); }); s.listen(0, '127.0.0.1', () => console.log(s.address().port));"], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill();
  });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return Number(line.toString().trim());
}

/** Connects, sets a 100 ms deadline, blocks this process for 400 ms, and says what came first. */
async function race(port: number, deadline: (fn: () => void, ms: number) => void): Promise<string[]> {
  const events: string[] = [];
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.on('data', () => events.push('answer'));
  const fired = new Promise<void>((resolve) =>
    deadline(() => {
      events.push('deadline');
      resolve();
    }, 100),
  );
  block(400);
  await fired;
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.destroy();
  return events;
}

t.test('a deadline set before a stall of this process fires after the answer that arrived during it', async (t) => {
  const port = await answeringServer(t);
  const plain = await race(port, (fn, ms) => setTimeout(fn, ms));
  t.same(plain, ['deadline', 'answer'], 'a plain timer fires first (the false finding)');
  startStallWatch();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const before = stallReport().stalls;
  const watched = await race(port, (fn, ms) => activeTimeout(fn, ms));
  t.same(watched, ['answer', 'deadline'], 'the answer is read first, and the deadline still fires');
  const after = stallReport();
  t.ok(after.stalls > before, 'the stall was noticed');
  t.ok(after.longestMs >= 250, `its length was measured (${after.longestMs} ms)`);
});

t.test('active time runs with the wall clock when nothing stalls, and a cleared deadline never fires', async (t) => {
  startStallWatch();
  const a = activeNow();
  const wall = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const activeSpent = activeNow() - a;
  const wallSpent = performance.now() - wall;
  t.ok(activeSpent <= wallSpent + 1, 'never faster than the wall clock');
  let fired = false;
  const timer = activeTimeout(() => (fired = true), 20);
  timer.clear();
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.equal(fired, false);
});
