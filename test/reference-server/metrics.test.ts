// /metrics after real traffic: every family the operator guide promises is there and moves with what happened.
import t from 'tap';
import { Connection } from '../../reference-client/wire/connection.ts';
import { body, messageId, registerUser, startTestServer } from './helpers.ts';

const value = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
};

t.test('metrics follow a message through send, delivery, acknowledgement and receipt', async (t) => {
  const server = await startTestServer(t);
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const sender = await Connection.connect(server.url, alice);
  t.teardown(() => sender.close());
  for (let i = 0; i < 3; i++) {
    const answer = await sender.request({ type: 'send', messageId: messageId(), to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body() }] });
    t.equal(answer.type, 'send_ok');
  }
  const before = await (await fetch(`${server.url}/metrics`)).text();
  t.equal(value(before, 'tickwire_store_queued_items'), 3, 'three items queued for bob');
  t.equal(value(before, 'tickwire_store_max_queue_depth'), 3);
  t.equal(value(before, 'tickwire_ws_sessions'), 1);
  t.equal(value(before, 'tickwire_messages_accepted_total{duplicate="false"}'), 3);
  t.equal(value(before, 'tickwire_send_durable_latency_seconds_count'), 3);
  t.ok(value(before, 'tickwire_store_fsync_duration_seconds_count') >= 1, 'fsyncs are timed');

  const recipient = await Connection.connect(server.url, bob);
  t.teardown(() => recipient.close());
  let delivered = 0;
  await new Promise<void>((resolve) => {
    recipient.on('deliver', (frame) => {
      delivered += frame.items.length;
      recipient.sendRaw({ type: 'ack', upTo: frame.items[frame.items.length - 1]!.seq });
      if (delivered >= 3) resolve();
    });
  });
  await sender.waitFor('deliver', (f) => f.items.some((i) => i.kind === 'receipt'));
  const after = await (await fetch(`${server.url}/metrics`)).text();
  t.equal(value(after, 'tickwire_items_delivered_total{kind="message",redelivered="false"}'), 3);
  t.equal(value(after, 'tickwire_delivery_latency_seconds_count'), 3, 'acceptance-to-delivery latency of each message');
  t.ok(value(after, 'tickwire_ack_latency_seconds_count') >= 3, 'delivery-to-ack latency');
  t.ok(value(after, 'tickwire_items_delivered_total{kind="receipt",redelivered="false"}') >= 1, 'the delivered receipt went out');
  t.equal(value(after, 'tickwire_ws_sessions'), 2);
  t.ok(value(after, 'tickwire_process_resident_memory_bytes') > 0);
  t.match(after, /tickwire_ws_frames_received_total\{type="send"\} 3/);
  t.notMatch(after, new RegExp(alice.secret), 'no secret in the metrics');
});
