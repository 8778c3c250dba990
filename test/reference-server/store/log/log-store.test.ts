// The embedded store over real files: the Store contract (../contract.ts, shared with the Redis store), durability
// across reopen, checkpoints, segment reclamation, body eviction, and a child process killed with SIGKILL mid-burst.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLogStore, type LogStore, type LogStoreOptions } from '../../../../reference-server/store/log/log-store.ts';
import type { QueueItem } from '../../../../reference-server/store/store.ts';
import { body, DAY, storeContract, twoUsers } from '../contract.ts';

const freshDir = () => mkdtempSync(join(tmpdir(), 'tickwire-store-'));

async function withStore(t: Test, dir: string, options: LogStoreOptions = {}): Promise<LogStore> {
  const store = await openLogStore(dir, options);
  t.teardown(() => store.close().catch(() => {}));
  return store;
}

t.test('the Store contract', async (t) => {
  storeContract(t, {
    async fresh(t) {
      const dir = freshDir();
      return { open: () => withStore(t, dir) };
    },
  });
});

t.test('checkpoints reclaim acknowledged segments and keep start-up exact; evicted bodies are read back', async (t) => {
  const dir = freshDir();
  const options = { segmentBytes: 16 * 1024, checkpointEveryBytes: 32 * 1024, cacheBytes: 2048 };
  const store = await withStore(t, dir, options);
  const { alice, bob } = await twoUsers(store);
  const sent: string[] = [];
  for (let i = 0; i < 400; i++) {
    const id = `bulk-${String(i).padStart(5, '0')}`;
    await store.enqueueMessage({ from: alice, messageId: id, to: bob.userId, envelopes: [{ deviceId: 1, type: 'prekey', body: body(id.repeat(5)) }], serverTime: 100 + i }, DAY, 10_000);
    sent.push(id);
  }
  const segmentsBefore = readdirSync(dir).filter((f) => f.endsWith('.twlog')).length;
  const all: QueueItem[] = await store.readQueue(bob, 0, 1000);
  t.equal(all.length, 400);
  t.ok(all.every((item, i) => item.kind === 'message' && item.envelope.body === body(sent[i]!.repeat(5))), 'every body, cached or read back from disk, is intact');
  t.ok(store.stats().cachedItems < 400, `only ${store.stats().cachedItems} bodies are held in memory`);
  await store.acknowledge(bob, all.slice(0, 350).map((i) => i.seq), 1000);
  for (let i = 0; i < 100; i++) await store.enqueueMessage({ from: bob, messageId: `pad-${String(i).padStart(5, '0')}`, to: alice.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body('p'.repeat(200)) }], serverTime: 2000 }, DAY, 10_000);
  const segmentsAfter = readdirSync(dir).filter((f) => f.endsWith('.twlog')).length;
  t.ok(readdirSync(dir).includes('checkpoint.json'), 'a checkpoint was written');
  t.ok(segmentsAfter < segmentsBefore + 12, `segments reclaimed (${segmentsBefore} before the acks, ${segmentsAfter} after more traffic)`);
  await store.close();

  const again = await withStore(t, dir, options);
  const left = await again.readQueue(bob, 0, 1000);
  t.same(left.map((i) => (i.kind === 'message' ? i.messageId : '')), sent.slice(350), 'the 50 unacknowledged messages are there, in order, after a restart from the checkpoint');
  t.ok(left.every((item) => item.kind === 'message' && item.envelope.body.length > 0));
  t.equal((await again.readQueue(alice, 0, 1000)).filter((i) => i.kind === 'message').length, 100);
  const receipts = (await again.readQueue(alice, 0, 1000)).filter((i) => i.kind === 'receipt');
  t.equal(receipts.length, 4, '350 acknowledged messages gave four delivered receipts of at most 100 ids');
  t.equal(receipts.reduce((n, r) => n + (r.kind === 'receipt' ? r.messageIds.length : 0), 0), 350);
});

t.test('kill -9 mid-burst: every send acknowledged as durable is in the queue after restart, in order', async (t) => {
  const child = fileURLToPath(new URL('./store-child.ts', import.meta.url));
  const dir = freshDir();
  for (let round = 0; round < 3; round++) {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dir, String(64 * 1024), String(256 * 1024), String(round)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffered = '';
    let acknowledged = -1;
    let ids: string[] = [];
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('ready')) ids = line.split(' ').slice(1);
        else acknowledged = Math.max(acknowledged, Number(line));
      }
    });
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    const target = 1500 + 700 * round;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (acknowledged >= target) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    proc.kill('SIGKILL');
    await exited;
    const store = await openLogStore(dir, { segmentBytes: 64 * 1024, checkpointEveryBytes: 256 * 1024 });
    const [, bobId] = ids;
    const queue = await store.readQueue({ userId: bobId!, deviceId: 1 }, 0, 1_000_000);
    const ofRound = queue.filter((i) => i.kind === 'message' && i.messageId.startsWith(`r${round}-`)).map((i) => (i.kind === 'message' ? Number(i.messageId.slice(i.messageId.indexOf('-m') + 2)) : -1));
    const expected = Array.from({ length: acknowledged + 1 }, (_, n) => n).filter((n) => n % 3 !== 0);
    const present = new Set(ofRound);
    t.ok(expected.every((n) => present.has(n)), `round ${round}: all ${expected.length} acknowledged, unacked-by-bob messages survived (queue has ${ofRound.length} of this round)`);
    t.same(ofRound, [...ofRound].sort((a, b) => a - b), `round ${round}: in send order`);
    const seqs = queue.map((i) => i.seq);
    t.same(seqs, [...new Set(seqs)].sort((a, b) => a - b), `round ${round}: seqs unique and ascending`);
    const alice = ids[0]!;
    const receipts = await store.readQueue({ userId: alice, deviceId: 1 }, 0, 1_000_000);
    t.ok(receipts.length > 0, `round ${round}: delivered receipts survived`);
    await store.close();
  }
});

t.test('operations issued without waiting are staged in call order, even across checkpoints', async (t) => {
  const store = await withStore(t, freshDir(), { checkpointEveryBytes: 4096 });
  const { alice, bob } = await twoUsers(store);
  const calls = Array.from({ length: 500 }, (_, i) =>
    store.enqueueMessage({ from: alice, messageId: `order-${String(i).padStart(5, '0')}`, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body(`m${i}`) }], serverTime: 10 }, DAY, 10_000),
  );
  const results = await Promise.all(calls);
  const seqs = results.map((r) => (r.status === 'accepted' ? r.seqs[0]!.seq : -1));
  t.same(seqs, Array.from({ length: 500 }, (_, i) => i + 1), 'the n-th call got the n-th seq');
  const duplicate = await store.findDuplicate(alice, 'order-00007', 20);
  t.same(duplicate, { serverTime: 10 }, 'findDuplicate reports an accepted send');
  t.equal(await store.findDuplicate(alice, 'order-99999', 20), undefined);
  t.equal(await store.findDuplicate(alice, 'order-00007', 10 + DAY), undefined, 'and forgets it after the window');
});
