// Messaging steps shared by the cases of sections 4 and 2: building envelopes for a user's device set, sending, and
// the must-level checks of a successful send (MSG-12) that nearly every delivery case relies on.
import type { DeviceEnvelope, SendOkFrame, ServerFrame } from '../spec/index.ts';
import type { CaseContext, Device, User } from './context.ts';
import { as, must } from './expect.ts';
import type { Item, Session } from './session.ts';

export interface SendOptions {
  messageId?: string;
  /** Explicit recipient deviceIds; default: every device of `to` except `from`. */
  deviceIds?: number[];
  /** Request id; default the wire client's next id. */
  id?: string;
  /** Envelope body bytes. */
  bytes?: number;
  /** Extra members merged into the send frame (extensibility cases). */
  extra?: Record<string, unknown>;
}

export interface Sent {
  answer: ServerFrame;
  id: string;
  messageId: string;
  envelopes: DeviceEnvelope[];
}

export function envelopesFor(ctx: CaseContext, to: User, from: Device | undefined, deviceIds?: number[], bytes = 32): DeviceEnvelope[] {
  const ids = deviceIds ?? to.devices.filter((d) => !(from && d.userId === from.userId && d.deviceId === from.deviceId)).map((d) => d.deviceId);
  return ids.map((deviceId) => ({ deviceId, type: 'ratchet' as const, body: ctx.material.body(bytes) }));
}

/** Sends one message from `from` (authenticated on `session`) to `to`; resolves with the answer, whatever it is. */
export async function send(ctx: CaseContext, session: Session, from: Device, to: User | string, options: SendOptions = {}): Promise<Sent> {
  const messageId = options.messageId ?? ctx.material.messageId();
  const envelopes = typeof to === 'string' ? envelopesFor(ctx, { userId: to, username: '', label: '', devices: [] }, from, options.deviceIds ?? [1], options.bytes) : envelopesFor(ctx, to, from, options.deviceIds, options.bytes);
  const id = options.id ?? session.conn.newId('s');
  const answer = await session.request(
    { type: 'send', id, messageId, to: typeof to === 'string' ? to : to.userId, envelopes: envelopes as [DeviceEnvelope, ...DeviceEnvelope[]], ...options.extra },
    'MSG-12',
  );
  return { answer, id, messageId, envelopes };
}

/** Sends and requires `send_ok` echoing the id and messageId with `duplicate: false` (MSG-12). */
export async function sendOk(ctx: CaseContext, session: Session, from: Device, to: User, options: SendOptions = {}): Promise<Sent & { ok: SendOkFrame }> {
  const sent = await send(ctx, session, from, to, options);
  const ok = as(sent.answer, 'send_ok', 'MSG-12', `send ${sent.messageId}`);
  must.equal({ id: ok.id, messageId: ok.messageId, duplicate: ok.duplicate }, { id: sent.id, messageId: sent.messageId, duplicate: false }, 'MSG-12', 'send_ok');
  return { ...sent, ok };
}

/** The recipient device's envelope of a sent message. */
export function envelopeOf(sent: Sent, device: Device): { type: string; body: string } {
  const envelope = sent.envelopes.find((e) => e.deviceId === device.deviceId);
  if (!envelope) throw new RangeError(`the send has no envelope for ${device.label}`);
  return { type: envelope.type, body: envelope.body };
}

/**
 * Sends `n` messages from `from` to `to` on one session, pipelined: up to `inFlight` unanswered at a time, never more
 * than the session's maxPendingRequests (TRN-36). Every one must get `send_ok` (MSG-12, or `requirementId`); resolves
 * with the messageIds in send order.
 */
export async function sendPipelined(
  ctx: CaseContext,
  session: Session,
  from: Device,
  to: User,
  n: number,
  options: { inFlight?: number; bytes?: number; requirementId?: string } = {},
): Promise<string[]> {
  const ids: string[] = [];
  const inFlight = Math.max(1, Math.min(options.inFlight ?? 32, session.limits.maxPendingRequests));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const sent = await send(ctx, session, from, to, options.bytes === undefined ? {} : { bytes: options.bytes });
      ids[i] = sent.messageId;
      must.frameType(sent.answer, 'send_ok', options.requirementId ?? 'MSG-12', `send ${i + 1} of ${n}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, worker));
  return ids;
}

/**
 * Reads a session's backlog to its end, acknowledging every delivered item as it arrives (so that a small window never
 * stalls it), until `queue_empty` has come (DLV-27: after every backlog item still queued); resolves with the distinct
 * items delivered so far, in seq order. A timeout fails citing `requirementId`.
 */
export async function drain(session: Session, requirementId: string): Promise<Item[]> {
  let acked = 0;
  await session.until(
    () => {
      const highest = Math.max(0, ...session.items.map((r) => r.frame.seq));
      if (highest > acked) {
        session.ack({ upTo: highest });
        acked = highest;
      }
      return session.received.some((r) => r.frame.type === 'queue_empty') ? true : undefined;
    },
    requirementId,
    'queue_empty, acknowledging every delivered item',
  );
  const bySeq = new Map<number, Item>();
  for (const { frame } of session.items) if (!bySeq.has(frame.seq)) bySeq.set(frame.seq, frame);
  return [...bySeq.values()].sort((x, y) => x.seq - y.seq);
}
