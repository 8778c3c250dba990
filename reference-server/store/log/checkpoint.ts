// Checkpoints: a snapshot of the store's state up to a log position, so that start-up replays only the log after it
// and sealed segments can be deleted once nothing live points into them.
//
// The file is written to a temporary name, synced, renamed over `checkpoint.json` and the directory synced, so a
// crash leaves either the old checkpoint or the new one, never a torn one. Message bodies are not copied into it:
// message items keep pointing at their log records, which is why a segment is reclaimed only when no live message
// item refers to it.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { PreKey, SignedPreKey } from '../../../spec/index.ts';
import { StoreCorruptError } from '../errors.ts';
import type { DeviceAddress, DeviceRecord } from '../store.ts';
import type { Lsn } from './segment-log.ts';

export const CHECKPOINT_FILE = 'checkpoint.json';
const FORMAT = 1;

export interface CheckpointMessage {
  seq: number;
  messageId: string;
  from: DeviceAddress;
  type: 'prekey' | 'ratchet';
  bodyLength: number;
  serverTime: number;
  lsn: Lsn;
  size: number;
}

export interface CheckpointReceipt {
  seq: number;
  status: 'delivered' | 'read';
  from: DeviceAddress;
  messageIds: string[];
  at: number;
  enqueuedAt: number;
}

export interface CheckpointDevice {
  record: DeviceRecord;
  preKeys: PreKey[];
  nextSeq: number;
  /** Queue items in seq order; `m` marks a message item, `r` a receipt item. */
  items: Array<['m', CheckpointMessage] | ['r', CheckpointReceipt]>;
}

export interface CheckpointUser {
  userId: string;
  username: string;
  createdAt: number;
  nextDeviceId: number;
  devices: CheckpointDevice[];
}

export interface Checkpoint {
  format: number;
  /** Every record before this position is reflected here; replay starts at it. */
  lsn: Lsn;
  createdAt: number;
  users: CheckpointUser[];
  /** [key, serverTime, forgetAfter] */
  dedupe: Array<[string, number, number]>;
}

export function writeCheckpoint(dir: string, checkpoint: Omit<Checkpoint, 'format'>): number {
  const text = JSON.stringify({ format: FORMAT, ...checkpoint });
  const tmp = join(dir, `${CHECKPOINT_FILE}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, CHECKPOINT_FILE));
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return text.length;
}

export function readCheckpoint(dir: string): Checkpoint | undefined {
  const path = join(dir, CHECKPOINT_FILE);
  if (!existsSync(path)) return undefined;
  let parsed: Checkpoint;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Checkpoint;
  } catch (error) {
    // The rename makes a torn checkpoint impossible; an unreadable one means damage, not a crash.
    throw new StoreCorruptError(`checkpoint is unreadable: ${(error as Error).message}`);
  }
  if (parsed.format !== FORMAT) throw new StoreCorruptError(`checkpoint format ${String(parsed.format)} is not supported`);
  return parsed;
}

export type { SignedPreKey };
