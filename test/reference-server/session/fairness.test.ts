// One abusive connection cannot starve the others: a client that floods the server with requests and never reads
// the answers is cut off (SLOW_CONSUMER, or its reading paused), while a well-behaved pair keeps exchanging messages
// with normal latency.
import t from 'tap';
import { WebSocket } from 'ws';
import { WS_SUBPROTOCOL } from '../../../spec/index.ts';
import { Connection } from '../../../reference-client/wire/connection.ts';
import { body, messageId, registerUser, startTestServer } from '../helpers.ts';

t.test('a flooding client that never reads does not starve a well-behaved pair', async (t) => {
  const server = await startTestServer(t);
  const abuser = await registerUser(server);
  const alice = await registerUser(server);
  const bob = await registerUser(server);

  // The abuser authenticates, then stops reading its socket and pours pings at the server.
  const ws = new WebSocket(server.wsUrl, [WS_SUBPROTOCOL], { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(JSON.stringify({ type: 'hello', id: 'h', userId: abuser.userId, deviceId: abuser.deviceId, secret: abuser.secret }));
  await new Promise((r) => setTimeout(r, 100));
  const raw = (ws as unknown as { _socket: import('node:net').Socket })._socket;
  raw.pause(); // never read again: every pong the server writes piles up in its buffers
  let flooding = true;
  let sent = 0;
  const ping = JSON.stringify({ type: 'ping', id: 'p'.repeat(60) });
  const flood = (async () => {
    while (flooding && ws.readyState === WebSocket.OPEN) {
      for (let i = 0; i < 500; i++) ws.send(ping);
      sent += 500;
      await new Promise((r) => setImmediate(r));
    }
  })();

  // Meanwhile alice and bob exchange 100 messages, one at a time.
  const sender = await Connection.connect(server.url, alice);
  const recipient = await Connection.connect(server.url, bob);
  t.teardown(async () => {
    flooding = false;
    await sender.close();
    await recipient.close();
    ws.terminate();
  });
  recipient.on('deliver', (frame) => recipient.sendRaw({ type: 'ack', upTo: frame.items[frame.items.length - 1]!.seq }));
  const latencies: number[] = [];
  for (let i = 0; i < 100; i++) {
    const id = messageId();
    const started = performance.now();
    const delivered = recipient.waitFor('deliver', (f) => f.items.some((item) => item.kind === 'message' && item.messageId === id), 10_000);
    const answer = await sender.request({ type: 'send', messageId: id, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body() }] });
    t.equal(answer.type, 'send_ok');
    await delivered;
    latencies.push(performance.now() - started);
  }
  flooding = false;
  await flood;
  latencies.sort((a, b) => a - b);
  const p99 = latencies[98]!;
  t.comment(`abuser sent ${sent} pings; pair p50 ${latencies[49]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
  t.ok(p99 < 2000, `the pair's p99 send-to-delivery stayed under 2 s (${p99.toFixed(1)} ms)`);
  // The abuser is either cut off as a slow consumer or held back by the paused read side, never served without bound.
  const code = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 3000))]);
  t.ok(code === 4429 || code === -1 || code === 1006, `the abuser was cut off (4429) or throttled (close code ${code})`);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const rss = Number(/tickwire_process_resident_memory_bytes (\d+)/.exec(metrics)?.[1]);
  t.ok(rss < 1024 * 1024 * 1024, `server memory stayed bounded (${Math.round(rss / 1048576)} MiB RSS)`);
});
