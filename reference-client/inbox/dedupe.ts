// Receiver-side deduplication [DLV-29] [DLV-30] and the pending inbox. A message is processed at most once per
// (from.userId, from.deviceId, messageId): the key is appended (fsynced) to processed.log before the item is
// acknowledged, so a redelivery after a crash or a lost ack is recognised even after a restart. The set is bounded
// (MAX_PROCESSED_IDS, oldest forgotten first) and the log is compacted when it grows past twice that.
//
// The pending inbox closes the gap between decrypting and processing: the plaintext is made durable *before* the
// session state moves on, so if the application's handler never completes (crash), the redelivered item, which the
// ratchet would now reject as a duplicate, is handed over again from the inbox instead of being lost.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Address } from '../../spec/index.ts';
import { LOG_COMPACTION_FACTOR, MAX_PROCESSED_IDS } from '../constants.ts';
import { AppendLog, readJson, removeFileDurably, writeJsonAtomic } from '../state/atomic-file.ts';

export const messageKey = (from: Address, messageId: string): string => `${from.userId}.${from.deviceId}:${messageId}`;

export class ProcessedIds {
  private readonly ids = new Set<string>();
  private readonly log: AppendLog;

  constructor(
    file: string,
    private readonly max = MAX_PROCESSED_IDS,
  ) {
    this.log = new AppendLog(file);
    for (const entry of this.log.load()) if (typeof entry === 'string') this.remember(entry);
  }

  has(key: string): boolean {
    return this.ids.has(key);
  }

  /** Durably records a processed message key. */
  add(key: string): void {
    if (this.ids.has(key)) return;
    this.log.append(key);
    this.remember(key);
    if (this.log.length > this.max * LOG_COMPACTION_FACTOR) this.log.rewrite([...this.ids]);
  }

  private remember(key: string): void {
    this.ids.delete(key);
    this.ids.add(key);
    // A Set iterates in insertion order: the first element is the oldest.
    while (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value as string);
  }

  close(): void {
    this.log.close();
  }
}

export interface InboxEntry {
  from: Address;
  messageId: string;
  /** base64 of the plaintext. */
  plaintext: string;
  serverTime: number;
}

/** Decrypted messages not yet recorded as processed, one file each. */
export class PendingInbox {
  constructor(private readonly dir: string) {}

  private file(key: string): string {
    return join(this.dir, `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.json`);
  }

  get(key: string): InboxEntry | undefined {
    const value = readJson(this.file(key)) as InboxEntry | undefined;
    return value !== undefined && messageKey(value.from, value.messageId) === key ? value : undefined;
  }

  put(entry: InboxEntry): void {
    writeJsonAtomic(this.file(messageKey(entry.from, entry.messageId)), entry);
  }

  remove(key: string): void {
    removeFileDurably(this.file(key));
  }

  size(): number {
    return readdirSync(this.dir).filter((n) => n.endsWith('.json')).length;
  }
}
