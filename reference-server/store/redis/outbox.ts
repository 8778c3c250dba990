// The receipt outbox of an acknowledgement. Step 1 of an acknowledgement (ACK_ITEMS in scripts.ts) removes the items
// and, in the same atomic write, records in the acknowledging user's slot which delivered receipts they owe: the
// sender device and messageId of every message item [RCP-5]. The entry stays until its receipts are in the senders'
// queues; this file reads entries and turns them into receipt items, one group per sender device with at most
// maxReceiptIds messageIds per item [RCP-1] [RCP-2].
import type { DeviceAddress } from '../store.ts';
import { asArray, asString } from './codec.ts';

export interface Owed {
  from: DeviceAddress;
  messageId: string;
}

export interface OutboxEntry {
  /** The acknowledging device (of the user whose outbox holds the entry). */
  deviceId: number;
  /** When the acknowledgement was made, by the callers' clock: the receipts' `at`. */
  at: number;
  maxReceiptIds: number;
  /** When the entry was written, by Redis's clock. */
  writtenAt: number;
  owed: Owed[];
}

/** The owed receipts as ACK_ITEMS answers them: [[fromUserId, fromDeviceId, messageId], ...]. */
export function owedFromReply(reply: unknown): Owed[] {
  return asArray(reply, 'ack-items').map((entry) => {
    const [userId, deviceId, messageId] = asArray(entry, 'ack-items');
    return { from: { userId: asString(userId, 'ack-items'), deviceId: Number(deviceId) }, messageId: asString(messageId, 'ack-items') };
  });
}

/** An entry as ACK_ITEMS stored it (Lua's cjson; numbers as decimal strings). */
export function parseOutboxEntry(json: string): OutboxEntry {
  const raw = JSON.parse(json) as { d: string; at: string; max: string; t: string; m: Array<[string, string, string]> };
  return {
    deviceId: Number(raw.d),
    at: Number(raw.at),
    maxReceiptIds: Number(raw.max),
    writtenAt: Number(raw.t),
    owed: raw.m.map(([userId, deviceId, messageId]) => ({ from: { userId, deviceId: Number(deviceId) }, messageId })),
  };
}

/** One group per sender device, in order of first appearance; each group's messageIds in chunks of maxReceiptIds. */
export function receiptGroups(owed: readonly Owed[], maxReceiptIds: number): Array<{ to: DeviceAddress; chunks: string[][] }> {
  const size = Math.max(1, Math.floor(maxReceiptIds));
  const bySender = new Map<string, { to: DeviceAddress; messageIds: string[] }>();
  for (const { from, messageId } of owed) {
    const key = `${from.userId}.${from.deviceId}`;
    let group = bySender.get(key);
    if (!group) bySender.set(key, (group = { to: from, messageIds: [] }));
    group.messageIds.push(messageId);
  }
  return [...bySender.values()].map(({ to, messageIds }) => {
    const chunks: string[][] = [];
    for (let i = 0; i < messageIds.length; i += size) chunks.push(messageIds.slice(i, i + size));
    return { to, chunks };
  });
}
