// The messaging library across restarts and crashes, against a real reference server and real state directories:
// a client reopened from its state directory still decrypts and de-duplicates, a message processed but not
// acknowledged before a crash is not handed over twice, and the outbox survives a crash of the client or of the
// server before send_ok, delivering the message exactly once.
import t from 'tap';
import { TickwireClient } from '../../reference-client/client.ts';
import { newClient, Recorder, startRestartableServer } from './client-harness.ts';

t.test('a client reopened from its state directory still decrypts, both ways', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob');
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  await alice.client.send(bob.client.address.userId, 'one');
  await bob.rec.until(() => bob.rec.texts().includes('one'), 'one');
  const first = await bob.client.send(alice.client.address.userId, 'two');
  await alice.rec.until(() => alice.rec.texts().includes('two'), 'two');
  await bob.rec.until(() => bob.client.tickOf(first.messageId) === 'delivered', 'two delivered');
  await bob.client.close();

  const bob2 = await TickwireClient.open(bob.options);
  t.teardown(() => bob2.close());
  const rec2 = new Recorder(bob2);
  t.same(bob2.address, bob.client.address, 'same device');
  t.equal(bob2.tickOf(first.messageId), 'delivered', 'ticks survive the restart');
  await alice.client.send(bob.client.address.userId, 'three'); // while bob is offline
  await bob2.connect();
  await rec2.until(() => rec2.texts().includes('three'), 'three after reopening');
  await bob2.send(alice.client.address.userId, 'four');
  await alice.rec.until(() => alice.rec.texts().includes('four'), 'four from the reopened client');
  t.same(rec2.texts(), ['three'], 'nothing old handed over again');
  t.same([...rec2.of('warning'), ...alice.rec.of('warning')], []);
});

t.test('a message processed but not acknowledged before a crash is de-duplicated after reopening', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  let handled = 0;
  let crash: (() => Promise<void>) | undefined;
  const bob = await newClient(t, server, 'bob', {
    onMessage: async () => {
      handled++;
      // The application stored the message; the process dies before the library acknowledges it.
      await crash?.();
    },
  });
  crash = () => bob.client.close();
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  const { messageId } = await alice.client.send(bob.client.address.userId, 'exactly once');
  await bob.rec.until(() => bob.rec.of('message').length === 1, 'first hand-over');
  t.equal(handled, 1);
  t.equal(alice.client.tickOf(messageId), 'sent', 'not acknowledged, so not delivered yet');

  let handledAfter = 0;
  const bob2 = await TickwireClient.open({ ...bob.options, onMessage: () => void handledAfter++ });
  t.teardown(() => bob2.close());
  const rec2 = new Recorder(bob2);
  await bob2.connect();
  await rec2.until(() => rec2.of('caughtUp').length === 1, 'caughtUp after the redelivery');
  await alice.rec.until(() => alice.client.tickOf(messageId) === 'delivered', 'the duplicate was acknowledged');
  t.equal(handledAfter, 0, 'the redelivered item is not handed over again');
  t.same(rec2.of('warning'), [], 'and is not reported as undecryptable');
});

t.test('a message whose handler never finished before a crash is handed over again from the inbox', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  let crash: (() => Promise<void>) | undefined;
  const bob = await newClient(t, server, 'bob', {
    onMessage: async () => {
      // The process dies inside the application's handler: the handler never resolves.
      await crash?.();
      await new Promise(() => undefined);
    },
  });
  crash = () => bob.client.close();
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  const { messageId } = await alice.client.send(bob.client.address.userId, 'not lost');
  await alice.rec.until(() => alice.client.tickOf(messageId) === 'sent', 'sent');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(bob.rec.of('message').length, 0, 'never emitted: the handler did not finish');

  const seen: string[] = [];
  const bob2 = await TickwireClient.open({ ...bob.options, onMessage: (m) => void seen.push(Buffer.from(m.plaintext).toString('utf8')) });
  t.teardown(() => bob2.close());
  const rec2 = new Recorder(bob2);
  await bob2.connect();
  await alice.rec.until(() => alice.client.tickOf(messageId) === 'delivered', 'acknowledged after the hand-over');
  t.same(seen, ['not lost'], 'handed over from the pending inbox although the ratchet has moved on');
  t.same(rec2.of('warning'), [], 'no E2E_DUPLICATE_MESSAGE');
});

t.test('the outbox survives a client crash while the server is down: delivered exactly once', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob');
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  await alice.client.send(bob.client.address.userId, 'warm-up'); // sessions exist, so the next send needs no HTTP
  await bob.rec.until(() => bob.rec.texts().includes('warm-up'), 'warm-up');

  await server.stop();
  await alice.rec.until(() => alice.rec.of('disconnected').length > 0, 'alice sees the restart');
  const { messageId } = await alice.client.send(bob.client.address.userId, 'queued while down');
  t.equal(alice.client.tickOf(messageId), 'pending');
  t.equal(alice.client.outboxSize, 1, 'in the outbox');
  await alice.client.close(); // the crash

  await server.start();
  const alice2 = await TickwireClient.open(alice.options);
  t.teardown(() => alice2.close());
  const rec = new Recorder(alice2);
  t.equal(alice2.outboxSize, 1, 'the outbox is on disk');
  await alice2.connect();
  await rec.until(() => alice2.tickOf(messageId) === 'delivered', 'delivered after reopening');
  await bob.rec.until(() => bob.rec.texts().includes('queued while down'), 'bob reconnected and received it');
  await new Promise((r) => setTimeout(r, 300));
  t.same(bob.rec.texts(), ['warm-up', 'queued while down'], 'exactly once');
  t.equal(alice2.outboxSize, 0);
});

t.test('a send cut off by a server stop before send_ok is resent with the same messageId: exactly once', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob');
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  await alice.client.send(bob.client.address.userId, 'warm-up');
  await bob.rec.until(() => bob.rec.texts().includes('warm-up'), 'warm-up');

  // The send frame is written before `send` resolves; the server goes down right after, before alice sees send_ok.
  const sent = alice.client.send(bob.client.address.userId, 'in flight');
  const stopping = sent.then(() => server.stop());
  const { messageId } = await sent;
  await stopping;
  await server.start();
  await alice.rec.until(() => alice.client.tickOf(messageId) === 'delivered', 'delivered after the restart', 15_000);
  await bob.rec.until(() => bob.rec.texts().includes('in flight'), 'bob got it');
  await new Promise((r) => setTimeout(r, 300));
  t.same(bob.rec.texts(), ['warm-up', 'in flight'], 'exactly once');
  t.equal(bob.rec.of('message')[1]![0].messageId, messageId, 'under the messageId of the first attempt');
  t.ok(alice.rec.of('disconnected').some(([d]) => d.willReconnect), 'alice reconnected on her own');
});

t.test('a dropped connection reconnects with backoff and resends the outbox', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob');
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  alice.client.dropConnection();
  const { messageId } = await alice.client.send(bob.client.address.userId, 'after a drop');
  await bob.rec.until(() => bob.rec.texts().includes('after a drop'), 'delivered after reconnect');
  await alice.rec.until(() => alice.client.tickOf(messageId) === 'delivered', 'delivered tick');
  t.equal(alice.rec.of('connected').length, 2, 'a second session');
});
