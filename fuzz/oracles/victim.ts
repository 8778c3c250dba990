// The victim oracle: no input may touch another user. The victim (two devices) got a few messages from its friend at
// set-up and neither has acted since; after every batch the oracle opens a session for each victim device and checks
// that exactly those messages are still queued, unchanged and in order, that every other item came from a fuzzer
// identity (sending to the victim is allowed; forging its friend is not), that its device list and signed prekey are
// as registered, and that its credentials still work. The same drain (acknowledging what attackers legitimately
// sent) keeps the queues of the other passive identities short: the janitor.
import { Connection } from '../../reference-client/wire/connection.ts';
import { describeIssues, type DeliverFrame, type DeviceListResponse, type PreKeyCountResponse } from '../../spec/index.ts';
import { forged, type Watch } from './answers.ts';
import { finding, show, type Finding } from './finding.ts';
import type { Identity, World } from '../world.ts';
import { activeNow } from '../clock.ts';

type Item = DeliverFrame['items'][number];

export interface Drained {
  items: Item[];
  findings: Finding[];
}

/**
 * Opens a session for `identity`, collects its backlog up to `queue_empty`, and acknowledges the items `ack` picks
 * (recording acknowledged messageIds in `acked` first, so that the receipts they cause are known to be real).
 */
export async function drain(world: World, identity: Identity, watch: Watch, acked: Set<string>, ack: (item: Item) => boolean, timeoutMs: number): Promise<Drained> {
  const findings: Finding[] = [];
  const items: Item[] = [];
  const who = `${identity.username} (${identity.userId}.${identity.deviceId})`;
  let conn: Connection;
  try {
    conn = await Connection.connect(world.url, identity, { helloTimeoutMs: timeoutMs });
  } catch (error) {
    // [AUT-13] The device's credentials still open a session.
    return { items, findings: [finding('victim', 'AUT-13', `${who} can no longer open a session`, 'welcome', (error as Error).message)] };
  }
  try {
    const maxAck = conn.welcome!.limits.maxAckBatch;
    conn.onInvalid((frame, issues) => findings.push(finding('answers', 'TRN-19', `${who}: a server frame fails its schema: ${describeIssues(issues)}`, 'valid frames', show(frame))));
    let emptied = false;
    let last = activeNow();
    conn.on('deliver', (frame) => {
      last = activeNow();
      const toAck: number[] = [];
      for (const item of frame.items) {
        items.push(item);
        if (forged(item, watch)) findings.push(finding('victim', 'AUT-9', `${who} got an item claiming to come from ${item.from.userId}.${item.from.deviceId}, which never sent it`, '`from` set from the authenticated sender', show(item)));
        if (ack(item)) {
          if (item.kind === 'message') acked.add(item.messageId);
          toAck.push(item.seq);
        }
      }
      for (let i = 0; i < toAck.length; i += maxAck) conn.sendRaw({ type: 'ack', seqs: toAck.slice(i, i + maxAck) });
    });
    conn.on('queue_empty', () => {
      emptied = true;
      last = activeNow();
    });
    conn.on('error', (frame) => findings.push(finding('answers', 'TRN-31', `${who}: an error answering the oracle's own acks`, 'no answer to a valid ack', show(frame))));
    const deadline = activeNow() + timeoutMs;
    // Until queue_empty, then a moment for what follows it.
    while (activeNow() < deadline && !(emptied && activeNow() - last > 30)) await new Promise((resolve) => setTimeout(resolve, 10));
    if (!emptied) findings.push(finding('victim', 'DLV-27', `${who}: no queue_empty`, 'queue_empty once the backlog is delivered', `nothing within ${timeoutMs} ms (${items.length} items)`));
  } finally {
    await conn.close().catch(() => undefined);
  }
  return { items, findings };
}

/** Checks the victim after a batch; acknowledges what attackers sent it. */
export async function checkVictim(world: World, watch: Watch, acked: Set<string>, timeoutMs: number): Promise<Finding[]> {
  const out: Finding[] = [];
  const seededIds = new Set(world.seeded.map((m) => m.messageId));
  for (const device of [world.victim, world.victim2]) {
    const { items, findings } = await drain(world, device, watch, acked, (item) => !(item.kind === 'message' && seededIds.has(item.messageId) && item.from.userId === world.friend.userId), timeoutMs);
    out.push(...findings);
    const seeded = items.filter((i) => i.kind === 'message' && seededIds.has(i.messageId));
    let previousSeq = 0;
    for (const message of world.seeded) {
      const found = seeded.filter((i) => i.kind === 'message' && i.messageId === message.messageId);
      const where = `victim device ${device.deviceId}, message ${message.messageId}`;
      if (found.length === 0) {
        out.push(finding('victim', 'DLV-5', `${where} is gone from the queue`, 'the seeded message still queued (nobody acknowledged it)', `absent; queue held ${items.length} items`));
        continue;
      }
      const item = found[0]!;
      if (item.kind !== 'message') continue;
      const expectedBody = message.bodies.get(device.deviceId);
      if (item.from.userId !== world.friend.userId || item.from.deviceId !== world.friend.deviceId || item.envelope.body !== expectedBody || item.envelope.type !== message.type) {
        out.push(finding('victim', 'MSG-13', `${where} changed`, show({ from: { userId: world.friend.userId, deviceId: world.friend.deviceId }, envelope: { type: message.type, body: expectedBody } }), show(item)));
      }
      // [DLV-7] First deliveries in seq order.
      if (item.seq <= previousSeq) out.push(finding('victim', 'DLV-7', `${where} arrived out of seq order`, `seq above ${previousSeq}`, `seq ${item.seq}`));
      previousSeq = item.seq;
    }
  }
  // [IDN-22] [AUT-8] The device list is as registered: no input can add or delete the victim's devices.
  const list = await world.http.call<DeviceListResponse>('listDevices', { credentials: world.victim, timeoutMs }).catch((error: Error) => error);
  if (list instanceof Error) out.push(finding('victim', 'IDN-22', 'GET /v1/devices as the victim failed', '200', list.message));
  else if (list.status !== 200) out.push(finding('victim', 'AUT-7', `GET /v1/devices as the victim answered HTTP ${list.status}`, 'HTTP 200: its credentials still work', show(list.body)));
  else {
    const ids = list.body.devices.map((d) => d.deviceId).join(',');
    const expected = [world.victim.deviceId, world.victim2.deviceId].sort((a, b) => a - b).join(',');
    if (ids !== expected) out.push(finding('victim', 'AUT-8', "the victim's device list changed", expected, ids));
  }
  // [PKY-2] [AUT-8] Only the device itself can replace its signed prekey; one-time prekeys only ever get fewer.
  const count = await world.http.call<PreKeyCountResponse>('getPreKeyCount', { credentials: world.victim, timeoutMs }).catch((error: Error) => error);
  if (count instanceof Error) out.push(finding('victim', 'PKY-10', 'GET /v1/keys/count as the victim failed', '200', count.message));
  else if (count.status === 200) {
    if (count.body.signedPreKeyId !== world.victimSignedPreKeyId) out.push(finding('victim', 'AUT-8', "the victim's signed prekey changed", `keyId ${world.victimSignedPreKeyId}`, `keyId ${count.body.signedPreKeyId}`));
    if (count.body.oneTimePreKeys > world.victimPreKeys) out.push(finding('victim', 'AUT-8', "the victim's one-time prekeys grew", `at most ${world.victimPreKeys}`, String(count.body.oneTimePreKeys)));
  }
  return out;
}

/** Drains the queues of the passive identities (herald, clerk, friend, the lanes' spare devices). */
export async function janitor(world: World, watch: Watch, acked: Set<string>, timeoutMs: number): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const identity of [world.herald, world.clerk, world.friend, ...world.workers.map((w) => w.spare)]) {
    const { findings } = await drain(world, identity, watch, acked, () => true, timeoutMs);
    out.push(...findings);
  }
  return out;
}
