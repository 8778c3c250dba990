// The Redis session bus on its own (no store, no sockets to clients): two or three buses on one redis-server, with
// the session claims of session/claims.ts over fake sessions. Replacement across processes [DLV-34] [DPL-2],
// concurrent claims of one device, presence transitions and snapshots [PRS-1] [PRS-2] [PRS-6], typing fan-out
// [PRS-11], and the reaping of a process whose lease expired [DPL-7].
import t from 'tap';
import { Redis } from 'ioredis';
import type { BusHandlers, PresenceState, TypingState } from '../../../reference-server/cluster/bus.ts';
import { RedisBus } from '../../../reference-server/cluster/redis-bus.ts';
import { createLogger } from '../../../reference-server/logger.ts';
import { SessionClaims } from '../../../reference-server/session/claims.ts';
import { SessionRegistry } from '../../../reference-server/session/registry.ts';
import type { DeviceAddress } from '../../../reference-server/store/store.ts';
import { RedisServer } from '../store/redis/redis-server.ts';

const log = createLogger('silent');

class FakeSession {
  claim: number | undefined;
  ended = false;
  constructor(readonly address: DeviceAddress, readonly name: string) {}
  replaced(): void {
    this.ended = true;
  }
}

interface Node {
  bus: RedisBus;
  claims: SessionClaims<FakeSession>;
  registry: SessionRegistry<FakeSession>;
  presence: PresenceState[];
  typing: Array<{ to: string; from: DeviceAddress; state: TypingState }>;
}

async function node(t: { teardown(fn: () => unknown): void }, redis: RedisServer, id: string, leaseTtlMs = 10_000): Promise<Node> {
  const bus = new RedisBus(redis.url, { now: Date.now, log, leaseTtlMs, processId: id });
  const registry = new SessionRegistry<FakeSession>();
  const claims = new SessionClaims<FakeSession>(bus, registry);
  const out: Node = { bus, claims, registry, presence: [], typing: [] };
  const handlers: BusHandlers = {
    replace: (device, claim) => claims.replace(device, claim),
    presence: (state) => out.presence.push(state),
    typing: (to, from, state) => out.typing.push({ to, from, state }),
    prekeysLow: () => undefined,
    deviceRemoved: () => undefined,
    resync: () => undefined,
    lost: () => undefined,
  };
  await bus.start(handlers);
  t.teardown(() => bus.close());
  return out;
}

async function until(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

t.test('Redis session bus', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.dispose());

  t.test('a claim on B ends the session held on A before it resolves [DLV-34] [DPL-2]', async (t) => {
    const a = await node(t, redis, 'A');
    const b = await node(t, redis, 'B');
    const device = { userId: 'u1', deviceId: 1 };
    const onA = new FakeSession(device, 'a');
    t.equal(await a.claims.claim(onA), true, 'the first session wins');
    t.equal(onA.claim, 1);
    const onB = new FakeSession(device, 'b');
    const won = await b.claims.claim(onB);
    t.equal(won, true, 'the later claim wins');
    t.equal(onB.claim, 2, 'claims grow per device across processes');
    t.equal(onA.ended, true, 'A ended its session before the claim on B resolved');
    // Release the replaced one: the holder is B's, so the user stays online [DLV-37].
    a.claims.release(onA);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const [state] = await a.bus.presence(['u1']);
    t.equal(state!.online, true, '[DLV-37] the replaced session leaves the user online');
    b.claims.release(onB);
    await until('offline on A', () => a.presence.some((p) => p.userId === 'u1' && !p.online));
    const offline = a.presence.find((p) => p.userId === 'u1' && !p.online)!;
    t.type(offline.lastSeenAt, 'number', '[PRS-2] the offline transition carries the last-seen time');
    t.same(
      a.presence.filter((p) => p.userId === 'u1').map((p) => p.online),
      [true, false],
      '[PRS-6] one online and one offline transition, seen by A',
    );
    await until('the same on B', () => b.presence.filter((p) => p.userId === 'u1').length === 2);
    t.same(b.presence.filter((p) => p.userId === 'u1'), a.presence.filter((p) => p.userId === 'u1'), 'every process hears the same transitions');
    const [after] = await b.bus.presence(['u1']);
    t.same(after, offline, 'a snapshot agrees with the last transition');
  });

  t.test('concurrent claims of one device on three processes keep exactly one session [DPL-2]', async (t) => {
    const nodes = [await node(t, redis, 'C1'), await node(t, redis, 'C2'), await node(t, redis, 'C3')];
    for (let round = 0; round < 20; round++) {
      const device = { userId: `race${round}`, deviceId: 1 };
      const sessions = nodes.flatMap((_, i) => [new FakeSession(device, `${i}a`), new FakeSession(device, `${i}b`)]);
      // When a claim resolves true its session is welcomed: every session welcomed before must have ended by then.
      const welcomed: FakeSession[] = [];
      let overlaps = 0;
      await Promise.all(
        sessions.map(async (s, i) => {
          const won = await nodes[Math.floor(i / 2)]!.claims.claim(s);
          // A session that lost ends itself, as the connection does.
          if (!won) s.ended = true;
          else {
            overlaps += welcomed.filter((w) => !w.ended).length;
            welcomed.push(s);
          }
        }),
      );
      t.equal(overlaps, 0, `round ${round}: never two welcomed sessions at once`);
      const alive = sessions.filter((s) => !s.ended);
      t.equal(alive.length, 1, `round ${round}: one session left`);
      const best = Math.max(...sessions.map((s) => s.claim ?? 0));
      t.equal(alive[0]?.claim, best, `round ${round}: the highest claim is the survivor`);
      for (const [i, s] of sessions.entries()) nodes[Math.floor(i / 2)]!.claims.release(s);
    }
  });

  t.test('typing reaches every process once [PRS-11]', async (t) => {
    const a = await node(t, redis, 'TA');
    const b = await node(t, redis, 'TB');
    a.bus.typing('bob', { userId: 'alice', deviceId: 2 }, 'started');
    await until('typing on B', () => b.typing.length === 1);
    t.same(b.typing[0], { to: 'bob', from: { userId: 'alice', deviceId: 2 }, state: 'started' });
    t.equal(a.typing.length, 1, 'the sending process delivers to its own sessions once, not again from Redis');
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.equal(a.typing.length, 1);
  });

  t.test('the claims of a process whose lease expired are released [DPL-7]', async (t) => {
    const a = await node(t, redis, 'RA', 1000);
    const raw = new Redis(redis.url);
    t.teardown(() => raw.quit());
    // What a process "ghost" leaves behind when it is SIGKILLed holding carol's device 1 (redis-scripts.ts layout).
    await raw.hset('tw:{carol}:bus:presence', 'c:1', 1, 'v', 1);
    await raw.hset('tw:{carol}:bus:owners', '1', 'ghost 1');
    await raw.hset('tw:bus:proc:ghost', 'carol 1', 1);
    await raw.zadd('tw:bus:procs', Date.now() + 60_000, 'ghost');
    t.equal((await a.bus.presence(['carol']))[0]!.online, true, 'online while the lease lasts');
    // A hello meanwhile does not wait for the dead process: nobody receives on its channel.
    const device = { userId: 'carol', deviceId: 1 };
    const fresh = new FakeSession(device, 'fresh');
    const started = Date.now();
    t.equal(await a.claims.claim(fresh), true);
    t.equal(fresh.claim, 2);
    t.ok(Date.now() - started < 1000, 'no wait for an answer from a process that is gone');
    a.claims.release(fresh);
    await until('carol offline', () => a.presence.some((p) => p.userId === 'carol' && !p.online));
    // Again, and this time the lease expires.
    await raw.hset('tw:{carol}:bus:owners', '1', 'ghost 3');
    await raw.hset('tw:bus:proc:ghost', 'carol 1', 1);
    await raw.zadd('tw:bus:procs', Date.now() - 1, 'ghost');
    a.presence.length = 0;
    await until('carol offline after the reap', () => a.presence.some((p) => p.userId === 'carol' && !p.online), 5000);
    t.equal((await a.bus.presence(['carol']))[0]!.online, false, "the reaper released the dead process's claim");
    t.equal(await raw.zscore('tw:bus:procs', 'ghost'), null, 'and forgot the process');
    t.equal(await raw.exists('tw:bus:proc:ghost'), 0);
  });
});
