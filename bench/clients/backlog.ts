// Scenario 3, client side. `fill` enqueues a backlog for one offline device from several sender connections, each
// pipelining up to `inFlight` sends. `drain` connects that device with a large receiveMax and acknowledges every
// deliver frame cumulatively until the whole backlog has arrived, timing each step from the moment `hello` was sent.
import { Connection } from '../../reference-client/wire/connection.ts';
import type { DeliverFrame, ErrorFrame, SendFrame, SendOkFrame } from '../../spec/index.ts';
import { Histogram } from '../lib/histogram.ts';
import type { DrainJob, DrainResult, FillJob, FillResult } from '../lib/jobs.ts';
import { Rng } from '../lib/rng.ts';

/** A fill that meets this many refusals gives up instead of retrying forever. */
const MAX_REFUSED = 1000;
const FAST = { validate: false, handshakeTimeoutMs: 30_000, helloTimeoutMs: 30_000 } as const;

export async function fill(job: FillJob): Promise<FillResult> {
  const rng = new Rng(job.seed);
  const senders = await Promise.all(job.senders.map((s) => Connection.connect(job.url, s, FAST)));
  const errors: Record<string, number> = {};
  const sendToOk = new Histogram();
  let issued = 0;
  let accepted = 0;
  let answered = 0;
  let refused = 0;
  const t0 = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      for (const sender of senders) {
        const tag = rng.token(8);
        const sentAt = new Map<string, number>();
        let counter = 0;
        const pump = () => {
          while (sentAt.size < job.inFlight && issued < job.total) {
            issued++;
            const messageId = `${tag}${(counter++).toString(36)}`;
            const frame: SendFrame = {
              type: 'send',
              id: messageId,
              messageId,
              to: job.recipient.userId,
              envelopes: [{ deviceId: job.recipient.deviceId, type: 'ratchet', body: job.bodyBase64 }],
            };
            sentAt.set(messageId, performance.now());
            sender.sendRaw(frame);
          }
          if (answered >= job.total) resolve();
        };
        sender.on('send_ok', (frame: SendOkFrame) => {
          const at = sentAt.get(frame.messageId);
          if (at === undefined) return;
          sentAt.delete(frame.messageId);
          sendToOk.record(performance.now() - at);
          accepted++;
          answered++;
          pump();
        });
        sender.on('error', (frame: ErrorFrame) => {
          errors[frame.code] = (errors[frame.code] ?? 0) + 1;
          if (++refused > MAX_REFUSED) reject(new Error(`the server refused ${refused} sends during the fill: ${JSON.stringify(errors)}`));
          if (frame.id !== undefined && sentAt.delete(frame.id)) {
            // A refused send is retried later with a new messageId, so the backlog still reaches `total`.
            issued--;
            pump();
          }
        });
        void sender.closed.then((info) => reject(new Error(`a sender connection closed during the fill (${info.code} ${info.reason})`)));
        pump();
      }
    });
  } finally {
    await Promise.all(senders.map((s) => s.close().catch(() => undefined)));
  }
  return { accepted, elapsedMs: performance.now() - t0, errors, sendToOk: sendToOk.snapshot() };
}

export async function drain(job: DrainJob): Promise<DrainResult> {
  const connection = await Connection.open(job.url, FAST);
  const seen = new Set<number>();
  let redelivered = 0;
  let deliverFrames = 0;
  let maxItemsPerFrame = 0;
  let firstDeliverAt = NaN;
  let allDeliveredAt = NaN;
  let queueEmptyAt = NaN;
  let queueEmptyLastSeq = -1;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const check = () => {
    if (seen.size >= job.expected && !Number.isNaN(queueEmptyAt)) done();
  };
  connection.on('deliver', (frame: DeliverFrame) => {
    const now = performance.now();
    if (Number.isNaN(firstDeliverAt)) firstDeliverAt = now;
    deliverFrames++;
    maxItemsPerFrame = Math.max(maxItemsPerFrame, frame.items.length);
    let last = 0;
    for (const item of frame.items) {
      if (item.redelivered) redelivered++;
      seen.add(item.seq);
      last = item.seq;
    }
    // [DLV-11] Cumulative: one ack per deliver frame frees the whole batch's window slots.
    connection.sendRaw({ type: 'ack', upTo: last });
    if (seen.size >= job.expected && Number.isNaN(allDeliveredAt)) allDeliveredAt = now;
    check();
  });
  connection.on('queue_empty', (frame) => {
    queueEmptyAt = performance.now();
    queueEmptyLastSeq = frame.lastSeq;
    check();
  });
  const t0 = performance.now();
  try {
    const welcome = await connection.hello(job.recipient, { receiveMax: job.receiveMax, helloTimeoutMs: job.timeoutMs });
    const welcomeAt = performance.now();
    const timer = setTimeout(done, job.timeoutMs);
    await Promise.race([finished, connection.closed]);
    clearTimeout(timer);
    return {
      items: seen.size,
      redelivered,
      deliverFrames,
      maxItemsPerFrame,
      advertisedWindow: welcome.limits.window,
      advertisedMaxDeliverBatch: welcome.limits.maxDeliverBatch,
      welcomeMs: welcomeAt - t0,
      firstDeliverMs: firstDeliverAt - t0,
      allDeliveredMs: allDeliveredAt - t0,
      queueEmptyMs: queueEmptyAt - t0,
      queueEmptyLastSeq,
      complete: seen.size >= job.expected,
    };
  } finally {
    await connection.close().catch(() => undefined);
  }
}
