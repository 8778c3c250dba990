// Processing of one `receipt` frame (section 4.13, read receipts): the checks of [RCP-10] in order, then one durable
// receipt item in the queue of `to`, answered by receipt_ok [RCP-11].
import type { LimitValues } from '../config.ts';
import { ProtocolError } from '../errors.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import type { DeviceAddress, Store } from '../store/store.ts';
import type { ReceiptFrame, ReceiptOkFrame } from '../../spec/index.ts';
import { temporarilyUnavailable } from './send.ts';

export interface ReceiptDeps {
  store: Store;
  limits: LimitValues;
  now: () => number;
}

/** Runs a receipt that passed its schema and the TRN-37 check; `sender` is the authenticated device [AUT-9]. */
export async function processReceipt(frame: ReceiptFrame, sender: DeviceAddress, deps: ReceiptDeps): Promise<ReceiptOkFrame | ProtocolError> {
  // [RCP-10] (1) frame constraints: at most maxReceiptIds messageIds.
  if (frame.messageIds.length > deps.limits.maxReceiptIds) {
    return new ProtocolError('INVALID_FRAME', `messageIds has ${frame.messageIds.length} entries, more than maxReceiptIds (${deps.limits.maxReceiptIds})`);
  }
  try {
    // [RCP-10] (2) unknown user, (3) unknown device, (4) queue full, (5) durable storage, checked by the store in
    // that order. [RCP-11] messageIds exactly as received; `at` the time of acceptance; `from` the sender.
    // [RCP-12] No de-duplication: every accepted frame enqueues one item.
    const result = await deps.store.enqueueReceipt(
      { userId: frame.to.userId, deviceId: frame.to.deviceId },
      { kind: 'receipt', status: 'read', from: { userId: sender.userId, deviceId: sender.deviceId }, messageIds: [...frame.messageIds], at: deps.now() },
      deps.limits.maxQueueItems,
    );
    switch (result.status) {
      case 'accepted':
        return { type: 'receipt_ok', id: frame.id };
      case 'unknown-user':
        return new ProtocolError('UNKNOWN_USER', 'the receipt names no user');
      case 'unknown-device':
        // [IDN-30] Also for a device deleted since.
        return new ProtocolError('UNKNOWN_DEVICE', 'the receipt names no current device of the user');
      case 'queue-full':
        return new ProtocolError('QUEUE_FULL', 'the device queue is full', { details: { deviceIds: [frame.to.deviceId] } });
    }
  } catch (error) {
    if (error instanceof StoreUnavailableError) return temporarilyUnavailable(deps.limits);
    throw error;
  }
}
