// `tickwire serve --workers N --redis URL`: N worker processes behind one port (Node's cluster module) with a primary
// that prints the ready line once they all listen, restarts a worker that dies, and passes SIGTERM on so that every
// worker shuts down gracefully [KAL-13]. `--workers` above 1 without `--redis` is a usage error.
import t from 'tap';
import { openSession, registerUser } from '../helpers.ts';
import { RedisServer } from '../store/redis/redis-server.ts';
import { ServeProcess, servingPid, TEST_SERVER_ARGS, tempDir } from './serve-process.ts';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pids that answer GET /metrics over `tries` fresh connections. */
async function pidsBehind(url: string, tries = 30): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < tries; i++) pids.add(await servingPid(url));
  return pids;
}

t.test('--workers above 1 without --redis is a usage error naming both options', async (t) => {
  const { code, stderr, stdout } = await ServeProcess.run(['--workers', '3', '--port', '0', '--data-dir', tempDir(t)]);
  t.equal(code, 2, 'exit code 2');
  t.match(stderr, /--workers/, 'names --workers');
  t.match(stderr, /--redis/, 'names --redis');
  t.notMatch(stdout, /tickwire serving on/, 'serves nothing');
});

t.test('--workers 3 --redis: one port, three worker processes, one service', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.dispose());
  const server = await ServeProcess.start(t, ['--workers', '3', '--redis', redis.url, '--port', '0', '--data-dir', tempDir(t), '--log-level', 'info', ...TEST_SERVER_ARGS]);
  t.equal(server.pid, server.child.pid, 'the ready line names the primary');
  t.equal(server.output.match(/tickwire serving on/g)?.length, 1, 'one ready line for the whole service');
  const pids = await pidsBehind(server.url);
  t.equal(pids.size, 3, 'three processes answer on the one port');
  t.notOk(pids.has(server.pid), 'the primary serves nothing itself');

  // A worker that dies is replaced.
  const victim = [...pids][0]!;
  process.kill(victim, 'SIGKILL');
  await server.logged('primary.worker_died', (line) => line['pid'] === victim);
  const replacement = await server.logged('primary.worker_listening', (line) => typeof line['pid'] === 'number' && !pids.has(line['pid']));
  let after = await pidsBehind(server.url);
  for (let i = 0; i < 5 && after.size < 3; i++) after = await pidsBehind(server.url);
  t.equal(after.size, 3, 'three processes again');
  t.ok(after.has(replacement['pid'] as number), 'the replacement serves');
  t.notOk(after.has(victim), 'the dead one does not');

  // One service: a user registered through one worker sends to one whose session is on another.
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const sessions = await Promise.all([openSession(server, alice), openSession(server, bob)]);
  const [a, b] = sessions.map((s) => s.client) as [(typeof sessions)[0]['client'], (typeof sessions)[0]['client']];
  t.match(await a.request({ type: 'send', id: 's1', messageId: 'm-workers-1', to: bob.userId, envelopes: [{ deviceId: bob.deviceId, type: 'ratchet', body: 'aGVsbG8=' }] }), { type: 'send_ok' });
  t.match(await b.nextOf('deliver', (f) => f.items.some((i) => i.kind === 'message')), { items: [{ messageId: 'm-workers-1' }] }, 'delivered whatever worker holds the session');

  // SIGTERM: every worker ends its sessions with SERVER_RESTART and 1012, then the primary exits 0.
  const workers = [...after];
  server.signal('SIGTERM');
  for (const client of [a, b]) {
    t.match(await client.nextOf('error', (f) => f.code === 'SERVER_RESTART', 20_000), { code: 'SERVER_RESTART' }, '[KAL-13]');
    t.equal((await client.closed).code, 1012, '[KAL-13] close 1012');
  }
  const exit = await server.exited;
  t.same(exit, { code: 0, signal: null }, 'the primary exits 0 once the workers have');
  t.same(workers.filter(alive), [], 'no worker is left running');
  // A worker whose event loop stayed alive after its shutdown (the IPC channel to the primary did) would have been
  // ended by the fallback timer, which logs server.forced_exit.
  t.same(server.logs().filter((line) => line.event === 'server.forced_exit'), [], 'every worker exited by itself, not by the fallback timer');
});
