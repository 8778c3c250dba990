// Processing of one `send` frame (sections 4.2 and 4.3): the checks of [MSG-2] in order, then the store's atomic
// enqueue, and the answer: send_ok, or the first failure as a non-fatal error.
import type { LimitValues } from '../config.ts';
import { ProtocolError } from '../errors.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import type { DeviceAddress, Store } from '../store/store.ts';
import type { SendFrame, SendOkFrame } from '../../spec/index.ts';

export interface SendDeps {
  store: Store;
  limits: LimitValues;
  now: () => number;
}

/** Bytes a padded standard base64 string decodes to (the schema has already checked its alphabet and padding). */
export function decodedLength(base64: string): number {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  return (base64.length / 4) * 3 - padding;
}

/** [MSG-2] step (1), the frame constraints beyond the schema [MSG-3]; undefined when the frame passes. */
export function checkSendConstraints(frame: SendFrame, limits: LimitValues): ProtocolError | undefined {
  if (frame.envelopes.length > limits.maxDevicesPerUser) {
    return new ProtocolError('INVALID_FRAME', `envelopes has ${frame.envelopes.length} entries, more than maxDevicesPerUser (${limits.maxDevicesPerUser})`);
  }
  const seen = new Set<number>();
  for (const envelope of frame.envelopes) {
    if (seen.has(envelope.deviceId)) return new ProtocolError('INVALID_FRAME', `envelopes repeat deviceId ${envelope.deviceId}`);
    seen.add(envelope.deviceId);
    if (decodedLength(envelope.body) === 0) return new ProtocolError('INVALID_FRAME', `the envelope for device ${envelope.deviceId} is empty`);
  }
  return undefined;
}

/** [MSG-4] step (3): an envelope body over maxEnvelopeBytes once decoded. */
function checkEnvelopeSizes(frame: SendFrame, limits: LimitValues): ProtocolError | undefined {
  const over = frame.envelopes.find((envelope) => decodedLength(envelope.body) > limits.maxEnvelopeBytes);
  if (over === undefined) return undefined;
  return new ProtocolError('ENVELOPE_TOO_LARGE', `the envelope for device ${over.deviceId} is larger than maxEnvelopeBytes (${limits.maxEnvelopeBytes})`);
}

/**
 * Runs a send that passed its schema and the TRN-37 check. `sender` is the authenticated device, never a value from
 * the frame [AUT-8] [AUT-9]. Resolves the answer (send_ok or a non-fatal error); rejects only on an unexpected fault.
 */
export async function processSend(frame: SendFrame, sender: DeviceAddress, deps: SendDeps): Promise<SendOkFrame | ProtocolError> {
  const constraint = checkSendConstraints(frame, deps.limits);
  if (constraint) return constraint;
  const input = {
    from: { userId: sender.userId, deviceId: sender.deviceId },
    messageId: frame.messageId,
    to: frame.to,
    envelopes: frame.envelopes.map((e) => ({ deviceId: e.deviceId, type: e.type, body: e.body })),
    serverTime: deps.now(),
  };
  const dedupeWindowMs = deps.limits.dedupeWindowSec * 1000;
  const oversize = checkEnvelopeSizes(frame, deps.limits);
  try {
    if (oversize) {
      // [MSG-2] Deduplication (2) comes before the envelope size (3): a resend of an accepted message is answered as
      // a duplicate whatever its envelopes [MSG-14].
      const original = await deps.store.findDuplicate(input.from, input.messageId, input.serverTime);
      return original ? sendOk(frame, original.serverTime, true) : oversize;
    }
    const result = await deps.store.enqueueMessage(input, dedupeWindowMs, deps.limits.maxQueueItems);
    switch (result.status) {
      case 'accepted':
        // [MSG-12] Every item and the deduplication record are durable: the store resolved.
        return sendOk(frame, result.serverTime, false);
      case 'duplicate':
        // [MSG-14] The original serverTime, nothing enqueued.
        return sendOk(frame, result.serverTime, true);
      case 'unknown-user':
        return new ProtocolError('UNKNOWN_USER', 'the recipient user does not exist');
      case 'stale-devices':
        // [MSG-6] [MSG-7] [ERR-5] Both lists present, ascending.
        return new ProtocolError('STALE_DEVICES', 'the envelopes do not match the recipient devices', {
          details: { missing: ascending(result.missing), extra: ascending(result.extra) },
        });
      case 'queue-full':
        // [MSG-9] [ERR-5]
        return new ProtocolError('QUEUE_FULL', 'a recipient device queue is full', { details: { deviceIds: ascending(result.deviceIds) } });
    }
  } catch (error) {
    // [MSG-18] Not durable: no send_ok; the send may or may not have been accepted.
    if (error instanceof StoreUnavailableError) return temporarilyUnavailable(deps.limits);
    throw error;
  }
}

function sendOk(frame: SendFrame, serverTime: number, duplicate: boolean): SendOkFrame {
  return { type: 'send_ok', id: frame.id, messageId: frame.messageId, serverTime, duplicate };
}

function ascending(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** The answer when storage cannot take a write now; clients retry after `retryAfterMs` [ERR-7]. */
export function temporarilyUnavailable(limits: LimitValues): ProtocolError {
  return new ProtocolError('TEMPORARILY_UNAVAILABLE', 'storage is unavailable, retry later', { retryAfterMs: limits.ackTimeoutMs });
}
