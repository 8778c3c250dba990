// A process leaving deliberately answers the requests it already received before it closes with SERVER_RESTART / 1012
// [DPL-3] [KAL-13], and a request it did not answer has no effect [DPL-4]: after the restart, the recipient's queue
// holds exactly the messages that got send_ok. One process on the embedded log is enough to see it.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, defaultLimitValues } from '../../../reference-server/config.ts';
import { startServer } from '../../../reference-server/server.ts';
import { WS_PATH, type MessageItem } from '../../../spec/index.ts';
import { openSession, registerUser, sendFrame } from '../helpers.ts';

t.test('a shutdown answers the sends already received, and only those take effect [DPL-3] [DPL-4]', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-drain-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = defaultConfig({
    port: 0,
    host: '127.0.0.1',
    dataDir,
    logLevel: 'silent',
    shutdownGraceMs: 4000,
    limits: { ...defaultLimitValues(), registrationsPerMinute: 10_000, maxPendingRequests: 1024 },
  });
  const first = await startServer(config);
  const one = { url: first.url, wsUrl: first.url.replace(/^http/, 'ws') + WS_PATH };
  const alice = await registerUser(one);
  const bob = await registerUser(one);
  const { client: a } = await openSession(one, alice);
  await a.nextOf('queue_empty');

  const frames = Array.from({ length: 300 }, () => sendFrame(bob.userId, [bob.deviceId]));
  for (const frame of frames) a.send(frame);
  await a.nextOf('send_ok');
  const closing = first.close();
  const closed = await a.closed;
  await closing;
  t.equal(closed.code, 1012, '[KAL-13] closed with 1012');
  const types = a.received.map((f) => f.type);
  const restartAt = a.received.findIndex((f) => f.type === 'error' && f.code === 'SERVER_RESTART');
  t.ok(restartAt >= 0, '[KAL-13] SERVER_RESTART was sent');
  t.equal(restartAt, types.length - 1, 'it is the last frame: every answer came before it');
  const acked = new Set(a.received.flatMap((f) => (f.type === 'send_ok' ? [f.messageId] : [])));
  t.ok(acked.size > 1, `[DPL-3] the sends in progress were answered (${acked.size} of ${frames.length})`);
  t.notOk(a.received.some((f) => f.type === 'error' && f.code !== 'SERVER_RESTART'), 'no send was refused');

  // The same data, a new process: bob's queue holds exactly what got send_ok.
  const second = await startServer({ ...config, port: 0 });
  t.teardown(() => second.close());
  const two = { url: second.url, wsUrl: second.url.replace(/^http/, 'ws') + WS_PATH };
  const { client: b } = await openSession(two, bob);
  // Bob's queue holds only these messages, seqs from 1: the backlog is complete at queue_empty's lastSeq.
  const delivered = new Set<string>();
  let lastSeq: number | undefined;
  while (lastSeq === undefined || delivered.size < lastSeq) {
    const frame = await b.next((f) => f.type === 'deliver' || f.type === 'queue_empty', 10_000);
    if (frame.type === 'queue_empty') lastSeq = frame.lastSeq;
    if (frame.type !== 'deliver') continue;
    for (const item of frame.items) if (item.kind === 'message') delivered.add((item as MessageItem).messageId);
    if (frame.items.length > 0) b.send({ type: 'ack', upTo: frame.items[frame.items.length - 1]!.seq });
  }
  t.same([...delivered].sort(), [...acked].sort(), '[DPL-4] the queue holds every acknowledged message and nothing else');
  await b.close();
});
