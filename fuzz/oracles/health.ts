// The health oracle: after every batch the server still answers GET /healthz [TRN-2], and a fresh session works end
// to end: probeA sends probeB a message (send_ok once durable [MSG-12]), probeB gets it with the identical envelope
// [MSG-13] and acknowledges it, and probeA gets the delivered receipt [RCP-1].
import { randomBytes } from 'node:crypto';
import { Connection } from '../../reference-client/wire/connection.ts';
import type { DeliverFrame, HealthResponse } from '../../spec/index.ts';
import { finding, show, type Finding } from './finding.ts';
import type { World } from '../world.ts';
import { activeTimeout } from '../clock.ts';

type Item = DeliverFrame['items'][number];

/** Every item that reaches `conn`, acknowledged at once; resolves the first one matching `want`. */
function collect(conn: Connection, want: (item: Item) => boolean, timeoutMs: number): Promise<Item | undefined> {
  return new Promise((resolve) => {
    const timer = activeTimeout(() => {
      off();
      resolve(undefined);
    }, timeoutMs);
    const off = conn.on('deliver', (frame) => {
      conn.sendRaw({ type: 'ack', seqs: frame.items.map((i) => i.seq) });
      const hit = frame.items.find(want);
      if (hit) {
        timer.clear();
        off();
        resolve(hit);
      }
    });
  });
}

export async function checkHealth(world: World, timeoutMs: number): Promise<Finding[]> {
  const out: Finding[] = [];
  try {
    const health = await world.http.call<HealthResponse>('health', { timeoutMs });
    if (health.status !== 200 || health.issues.length > 0) {
      out.push(finding('health', 'TRN-2', 'GET /healthz does not answer 200 { status: "ok" }', '200 {"status":"ok"}', `${health.status} ${show(health.body)}`));
    }
  } catch (error) {
    return [finding('health', 'TRN-2', 'the server does not answer GET /healthz', '200 {"status":"ok"}', (error as Error).message)];
  }
  let a: Connection | undefined;
  let b: Connection | undefined;
  try {
    a = await Connection.connect(world.url, world.probeA, { helloTimeoutMs: timeoutMs });
    b = await Connection.connect(world.url, world.probeB, { helloTimeoutMs: timeoutMs });
    const messageId = `probe-${randomBytes(8).toString('hex')}`;
    const body = randomBytes(48).toString('base64');
    const received = collect(b, (i) => i.kind === 'message' && i.messageId === messageId, timeoutMs);
    const receipt = collect(a, (i) => i.kind === 'receipt' && i.status === 'delivered' && i.messageIds.includes(messageId), timeoutMs * 2);
    const answer = await a.request({ type: 'send', messageId, to: world.probeB.userId, envelopes: [{ deviceId: world.probeB.deviceId, type: 'ratchet', body }] }, timeoutMs);
    if (answer.type !== 'send_ok' || answer.duplicate) {
      out.push(finding('health', 'MSG-12', 'a fresh session cannot send', 'send_ok with duplicate false', show(answer)));
      return out;
    }
    const item = await received;
    if (!item) out.push(finding('health', 'DLV-9', 'the probe message was not delivered', `a deliver frame with ${messageId}`, `nothing within ${timeoutMs} ms`));
    else if (item.kind !== 'message' || item.envelope.body !== body || item.from.userId !== world.probeA.userId || item.from.deviceId !== world.probeA.deviceId) {
      out.push(finding('health', 'MSG-13', 'the probe message arrived changed', show({ from: world.probeA.userId, body }), show(item)));
    } else if (!(await receipt)) {
      out.push(finding('health', 'RCP-1', 'no delivered receipt for the probe message', `a delivered receipt for ${messageId}`, `nothing within ${timeoutMs * 2} ms`));
    }
  } catch (error) {
    out.push(finding('health', 'AUT-13', 'a fresh session does not work end to end', 'welcome, send_ok, deliver, receipt', (error as Error).message));
  } finally {
    await Promise.all([a?.close().catch(() => undefined), b?.close().catch(() => undefined)]);
  }
  return out;
}
