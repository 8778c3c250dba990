// The outbox: every message not yet acknowledged by `send_ok`, one file per message, written before `send` resolves.
// An entry keeps the messageId (reused for every resend [MSG-19] [MSG-21]), the plaintext (to encrypt again for
// devices that appear after a STALE_DEVICES answer [MSG-22]) and the envelopes already made (sent again unchanged
// when the device set has not changed [MSG-20]). Entries are resent in creation order after every (re)connect.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceEnvelope } from '../spec/index.ts';
import { ClientError } from './errors.ts';
import { readJson, removeFileDurably, writeJsonAtomic } from './state/atomic-file.ts';

export interface OutboxEntry {
  messageId: string;
  to: string;
  /** base64 of the plaintext; stays on this device, like the session keys next to it. */
  plaintext: string;
  envelopes: DeviceEnvelope[];
  createdAt: number;
  /** Order of creation, for resending in the original order [DLV-31]. */
  sequence: number;
  /** STALE_DEVICES rounds so far. */
  staleRounds: number;
}

export class Outbox {
  private readonly entries = new Map<string, OutboxEntry>();
  private nextSequence = 1;

  constructor(private readonly dir: string) {
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const entry = readJson(join(dir, name)) as OutboxEntry | undefined;
      if (entry === undefined || typeof entry.messageId !== 'string' || !Array.isArray(entry.envelopes)) {
        throw new ClientError('STATE_INVALID', `outbox entry ${name} is malformed`);
      }
      this.entries.set(entry.messageId, entry);
      this.nextSequence = Math.max(this.nextSequence, entry.sequence + 1);
    }
  }

  private file(messageId: string): string {
    return join(this.dir, `${messageId}.json`); // messageId matches ^[A-Za-z0-9_-]{8,64}$: a safe file name
  }

  /** Durably adds a new entry; resolves the caller's `send`. */
  add(entry: Omit<OutboxEntry, 'sequence' | 'staleRounds'>): OutboxEntry {
    const full: OutboxEntry = { ...entry, sequence: this.nextSequence++, staleRounds: 0 };
    writeJsonAtomic(this.file(full.messageId), full);
    this.entries.set(full.messageId, full);
    return full;
  }

  /** Durably replaces an entry (new envelopes after STALE_DEVICES). */
  update(entry: OutboxEntry): void {
    if (!this.entries.has(entry.messageId)) return;
    writeJsonAtomic(this.file(entry.messageId), entry);
    this.entries.set(entry.messageId, entry);
  }

  get(messageId: string): OutboxEntry | undefined {
    return this.entries.get(messageId);
  }

  remove(messageId: string): void {
    if (!this.entries.delete(messageId)) return;
    removeFileDurably(this.file(messageId));
  }

  /** Entries in creation order. */
  list(): OutboxEntry[] {
    return [...this.entries.values()].sort((a, b) => a.sequence - b.sequence);
  }

  get size(): number {
    return this.entries.size;
  }
}
