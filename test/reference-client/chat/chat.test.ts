// `tickwire chat` as a script drives it: two chat processes and a reference server, all real child processes, talking
// through pipes. Every wait is bounded and every child is killed by its PID in teardown.
import t from 'tap';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/tickwire.js', import.meta.url));
const WAIT_MS = 20_000;

interface Proc {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr: string[];
  /** Waits for the first line matching `pattern` that was printed after line `from` (default: any). */
  waitFor(pattern: RegExp, from?: number, ms?: number): Promise<RegExpMatchArray>;
  send(line: string): void;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcessWithoutNullStreams>();
const dir = mkdtempSync(join(tmpdir(), 'tickwire-chat-'));

t.teardown(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function start(name: string, args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'pipe', env: { ...process.env, NO_COLOR: '1' } });
  children.add(child);
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const collect = (into: string[]) => {
    let rest = '';
    return (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop()!;
      into.push(...parts);
      for (const wake of waiters) wake();
    };
  };
  child.stdout.on('data', collect(lines));
  child.stderr.on('data', collect(stderr));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    stderr,
    exited,
    send: (line) => void child.stdin.write(`${line}\n`),
    waitFor(pattern, from = 0, ms = WAIT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const line of lines.slice(from)) {
            const match = line.match(pattern);
            if (match) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(match);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name}: no line matching ${pattern} within ${ms} ms; output:\n${lines.join('\n')}\nstderr:\n${stderr.join('\n')}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
}

/** Bounded wait for a process to exit. */
async function exitOf(proc: Proc, ms = WAIT_MS): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms`)), ms)));
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A loopback port that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function chat(name: string, url: string, extra: string[] = []): Proc {
  return start(name, ['chat', '--url', url, '--name', name, '--state-dir', join(dir, name), ...extra]);
}

let url: string | undefined;

t.before(async () => {
  const server = start('server', ['serve', '--port', '0', '--data-dir', join(dir, 'server'), '--registrations-per-minute', '1000', '--log-level', 'warn']);
  [, url] = await server.waitFor(/tickwire serving on (http:\/\/\S+)/);
  t.teardown(async () => {
    server.child.kill('SIGTERM');
    await exitOf(server);
  });
});

t.test('two chats: message, ticks, read receipt, reply, presence, quit, restart', async (t) => {

  const alice = chat('alice', url!);
  const bob = chat('bob', url!);
  await alice.waitFor(/^registered alice \(user \S+, device 1\)/);
  await bob.waitFor(/^registered bob /);
  await alice.waitFor(/^connected to /);
  await bob.waitFor(/^connected to /);

  alice.send('/to bob');
  await alice.waitFor(/^chatting with bob$/);
  await alice.waitFor(/^bob is online$/);
  alice.send('hello bob');
  const [, id] = await alice.waitFor(/^\[\d\d:\d\d\] you → bob: hello bob \(id ([A-Za-z0-9_-]+)\)$/);
  await alice.waitFor(new RegExp(`^tick ${id} sent$`));
  await bob.waitFor(/^\[\d\d:\d\d\] alice: hello bob$/);
  await alice.waitFor(new RegExp(`^tick ${id} delivered$`));
  t.ok(alice.lines.indexOf(`tick ${id} sent`) < alice.lines.indexOf(`tick ${id} delivered`), 'sent comes before delivered');
  t.notOk(alice.lines.includes(`tick ${id} read`), 'not read before /read');

  bob.send('/to alice');
  await bob.waitFor(/^alice is online$/);
  bob.send('/read');
  await bob.waitFor(/^marked 1 message from alice read$/);
  await alice.waitFor(new RegExp(`^tick ${id} read$`));

  bob.send('hi alice');
  await alice.waitFor(/^\[\d\d:\d\d\] bob: hi alice$/);

  const mark = alice.lines.length;
  bob.send('/quit');
  t.equal(await exitOf(bob), 0, 'bob exits 0 on /quit');
  await alice.waitFor(/^bob was last seen \d\d:\d\d$/, mark);

  alice.send('/quit');
  t.equal(await exitOf(alice), 0, 'alice exits 0 on /quit');

  const again = chat('alice', url!);
  await again.waitFor(/^opened alice \(user \S+, device 1\)/);
  await again.waitFor(/^connected to /);
  t.notOk(again.lines.some((line) => line.startsWith('registered')), 'a restart does not register again');
  again.send('/to bob');
  await again.waitFor(/^bob was last seen \d\d:\d\d$/);

  again.send('/link');
  const [, code] = await again.waitFor(/^link code ([A-Za-z0-9]+) /);
  const laptop = start('alice laptop', ['chat', '--url', url!, '--name', 'alice', '--state-dir', join(dir, 'alice2'), '--link-code', code!]);
  await laptop.waitFor(/^linked new device of alice \(user \S+, device 2\)/);
  laptop.send('/to alice');
  laptop.send('note to self');
  await again.waitFor(/^\[\d\d:\d\d\] alice \(device 2\): note to self$/);
  laptop.child.stdin.end();
  again.child.stdin.end();
  t.equal(await exitOf(laptop), 0, 'end of input exits 0');
  t.equal(await exitOf(again), 0, 'end of input exits 0');
});

t.test('SIGTERM exits 0; errors print one line and exit 2', async (t) => {
  const first = start('carol', ['chat', '--url', url!, '--name', 'carol', '--state-dir', join(dir, 'carol1')]);
  await first.waitFor(/^connected to /);
  first.child.kill('SIGTERM');
  t.equal(await exitOf(first), 0, 'SIGTERM exits 0');

  const taken = start('carol again', ['chat', '--url', url!, '--name', 'carol', '--state-dir', join(dir, 'carol2')]);
  const closed = `http://127.0.0.1:${await closedPort()}`;
  const unreachable = start('dave', ['chat', '--url', closed, '--name', 'dave', '--state-dir', join(dir, 'dave')]);
  const reopenUnreachable = start('carol offline', ['chat', '--url', closed, '--name', 'carol', '--state-dir', join(dir, 'carol1'), '--connect-timeout', '2']);
  const usage = start('usage', ['chat', '--name', 'erin']);
  const help = start('help', ['chat', '--help']);
  const [takenCode, unreachableCode, reopenCode, usageCode, helpCode] = await Promise.all(
    [taken, unreachable, reopenUnreachable, usage, help].map((p) => exitOf(p)),
  );

  t.equal(takenCode, 2, 'a taken name exits 2');
  t.equal(taken.stderr.filter((line) => line !== '').length, 1, 'one line');
  t.match(taken.stderr[0], /^tickwire chat: cannot register carol at .*USERNAME_TAKEN/);
  t.equal(unreachableCode, 2, 'an unreachable server exits 2');
  t.equal(unreachable.stderr.filter((line) => line !== '').length, 1, 'one line');
  t.match(unreachable.stderr[0], /^tickwire chat: cannot register dave at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  t.equal(reopenCode, 2, 'a reopened device that cannot connect in time exits 2');
  t.match(reopenUnreachable.stderr, [/^tickwire chat: cannot connect to http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/]);
  t.equal(usageCode, 2, 'a missing --url exits 2');
  t.equal(helpCode, 0);
  t.match(help.lines.join('\n'), /Usage: tickwire chat --url <url> --name <username>/);
});
