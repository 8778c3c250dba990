// Receiving (PROTOCOL.md 4.5 to 4.9, 4.13): items of `deliver` frames are processed one at a time in arrival order,
// then acknowledged. For a message item: skip it if (from, messageId) was processed before [DLV-29]; otherwise
// decrypt on a copy of the session, make the plaintext durable in the pending inbox, commit the session [E2E-65],
// hand the message to `onMessage`, emit 'message', record the key as processed, and only then acknowledge
// [DLV-17]. A receipt item moves ticks forward [RCP-15]. Items that cannot be decrypted, duplicates and unknown
// kinds are acknowledged too [DLV-18] [E2E-79] [ERR-16]. Acks go only to the session that delivered the item
// [DLV-20], cumulative (`upTo`) where every earlier delivered item is done, selective (`seqs`) otherwise.
import type { DeliverFrame, Limits, MessageItem, ReceiptItem } from '../spec/index.ts';
import type { ReceiptEvent, ReceivedMessage } from './client-api.ts';
import { ENVELOPE_TYPE_PREKEY, ENVELOPE_TYPE_RATCHET, type E2eEnvelope } from './e2e/index.ts';
import { describeError } from './errors.ts';
import { messageKey, type InboxEntry, type PendingInbox, type ProcessedIds } from './inbox/dedupe.ts';
import type { SessionManager } from './session-manager.ts';
import type { TickStore } from './ticks.ts';
import type { Connection } from './wire/connection.ts';

export interface ReceiverDeps {
  sessions: SessionManager;
  processed: ProcessedIds;
  inbox: PendingInbox;
  ticks: TickStore;
  onMessage: ((message: ReceivedMessage) => Promise<void> | void) | undefined;
  emitMessage(message: ReceivedMessage): void;
  emitReceipt(receipt: ReceiptEvent): void;
  emitCaughtUp(): void;
  warn(code: string, message: string): void;
}

/** Per-session delivery bookkeeping. */
interface Delivery {
  connection: Connection;
  limits: Limits;
  /** Delivered on this session, not yet processed. */
  outstanding: Set<number>;
  /** Processing failed (the handler threw): must not be covered by `upTo` until redelivered and processed. */
  failed: Set<number>;
  /** Processed, not yet acknowledged. */
  done: number[];
}

export class Receiver {
  private chain: Promise<void> = Promise.resolve();
  private delivery: Delivery | undefined;

  constructor(private readonly deps: ReceiverDeps) {}

  attach(connection: Connection, limits: Limits): void {
    this.delivery = { connection, limits, outstanding: new Set(), failed: new Set(), done: [] };
  }

  detach(): void {
    this.delivery = undefined;
  }

  /** Resolves when every item received so far has been processed. */
  idle(): Promise<void> {
    return this.chain;
  }

  deliver(frame: DeliverFrame): void {
    const delivery = this.delivery;
    if (delivery === undefined) return;
    for (const item of frame.items) delivery.outstanding.add(item.seq);
    this.chain = this.chain.then(() => this.processBatch(frame.items, delivery));
  }

  /** [DLV-27] queue_empty follows the backlog: 'caughtUp' once the items before it are processed. */
  queueEmpty(): void {
    const delivery = this.delivery;
    this.chain = this.chain.then(() => {
      if (delivery === this.delivery) this.deps.emitCaughtUp();
    });
  }

  private async processBatch(items: DeliverFrame['items'], delivery: Delivery): Promise<void> {
    for (const item of items) {
      try {
        if (item.kind === 'message') await this.processMessage(item);
        else if (item.kind === 'receipt') this.processReceipt(item);
        // [ERR-16] any other kind: ignored, acknowledged.
        delivery.failed.delete(item.seq);
        delivery.done.push(item.seq);
      } catch (error) {
        // The application's handler failed: leave the item unacknowledged; the server redelivers it.
        const { code, message } = describeError(error);
        this.deps.warn('HANDLER_FAILED', `processing of seq ${item.seq} failed (${code}): ${message}`);
        delivery.failed.add(item.seq);
      } finally {
        delivery.outstanding.delete(item.seq);
      }
    }
    this.flushAcks(delivery);
  }

  private async processMessage(item: MessageItem): Promise<void> {
    const { sessions, processed, inbox } = this.deps;
    const key = messageKey(item.from, item.messageId);
    if (processed.has(key)) return; // [DLV-29] a duplicate: acknowledged, not processed again
    let entry = inbox.get(key);
    if (entry === undefined) {
      const envelope: E2eEnvelope = {
        type: item.envelope.type === ENVELOPE_TYPE_PREKEY ? ENVELOPE_TYPE_PREKEY : ENVELOPE_TYPE_RATCHET,
        body: new Uint8Array(Buffer.from(item.envelope.body, 'base64')),
      };
      let pending;
      try {
        pending = sessions.decrypt(item.from, envelope);
      } catch (error) {
        // [DLV-18] [E2E-79] undecryptable: warn, acknowledge, and keep the session as it was [E2E-62].
        const { code } = describeError(error);
        this.deps.warn(code.startsWith('E2E_') ? code : 'DECRYPT_FAILED', `message ${item.messageId} from ${item.from.userId}.${item.from.deviceId} could not be decrypted (${code})`);
        return;
      }
      entry = { from: item.from, messageId: item.messageId, plaintext: Buffer.from(pending.plaintext).toString('base64'), serverTime: item.serverTime };
      inbox.put(entry); // the plaintext is durable before the ratchet moves past it
      pending.commit();
    }
    await this.handOver(entry, key);
  }

  private async handOver(entry: InboxEntry, key: string): Promise<void> {
    const message: ReceivedMessage = {
      messageId: entry.messageId,
      from: { userId: entry.from.userId, deviceId: entry.from.deviceId },
      plaintext: new Uint8Array(Buffer.from(entry.plaintext, 'base64')),
      serverTime: entry.serverTime,
    };
    await this.deps.onMessage?.(message);
    try {
      this.deps.emitMessage(message);
    } catch (error) {
      const { code, message: text } = describeError(error);
      this.deps.warn('LISTENER_FAILED', `a 'message' listener threw (${code}): ${text}`);
    }
    this.deps.processed.add(key);
    this.deps.inbox.remove(key);
  }

  private processReceipt(item: ReceiptItem): void {
    if (item.status !== 'delivered' && item.status !== 'read') return; // [ERR-16]
    for (const messageId of item.messageIds) {
      if (this.deps.ticks.get(messageId) === undefined) continue; // [RCP-15] not ours, or forgotten
      this.deps.ticks.advance(messageId, item.status); // read implies delivered: ticks only move forward
      try {
        this.deps.emitReceipt({ messageId, status: item.status, by: { userId: item.from.userId, deviceId: item.from.deviceId } });
      } catch (error) {
        const { code, message } = describeError(error);
        this.deps.warn('LISTENER_FAILED', `a 'receipt' listener threw (${code}): ${message}`);
      }
    }
  }

  /** Sends the acks for processed items, on the session that delivered them only [DLV-20]. */
  private flushAcks(delivery: Delivery): void {
    if (delivery !== this.delivery || !delivery.connection.isOpen || delivery.done.length === 0) return;
    let low = Infinity;
    for (const seq of delivery.outstanding) low = Math.min(low, seq);
    for (const seq of delivery.failed) low = Math.min(low, seq);
    const below = delivery.done.filter((s) => s < low);
    const above = [...new Set(delivery.done.filter((s) => s >= low))];
    delivery.done = [];
    const upTo = below.length > 0 ? Math.max(...below) : undefined;
    const max = Math.max(1, delivery.limits.maxAckBatch);
    if (above.length === 0 && upTo !== undefined) {
      delivery.connection.sendRaw({ type: 'ack', upTo });
      return;
    }
    for (let i = 0; i < above.length; i += max) {
      const seqs = above.slice(i, i + max);
      delivery.connection.sendRaw({ type: 'ack', ...(i === 0 && upTo !== undefined ? { upTo } : {}), seqs });
    }
  }
}
