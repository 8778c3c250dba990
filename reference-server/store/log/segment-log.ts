// A segmented, append-only, checksummed log with group commit.
//
// Durability: `append` resolves only after the record and everything before it have been written and fdatasync'ed.
// Group commit: records that arrive while a sync is running are written together and covered by the next single
// sync, so the number of syncs per second stays bounded by the disk while throughput grows with concurrency.
// Recovery: on open every segment from `fromLsn` on is scanned; a torn or corrupt tail of the LAST segment (a crash
// in the middle of a write) is truncated away; damage anywhere else is refused with StoreCorruptError, since records
// after it were acknowledged as durable and silently skipping them would lose messages.
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeRecord, HEADER_BYTES, MAX_RECORD_BYTES, scanRecords, SEGMENT_MAGIC } from './record.ts';
import { StoreCorruptError, StoreUnavailableError } from '../errors.ts';

/** A log sequence number: the segment number in the high bits, the byte offset within it in the low 32 bits. */
export type Lsn = number;
const OFFSET_SPAN = 2 ** 32;
export const lsnOf = (segment: number, offset: number): Lsn => segment * OFFSET_SPAN + offset;
export const segmentOf = (lsn: Lsn): number => Math.floor(lsn / OFFSET_SPAN);
export const offsetOf = (lsn: Lsn): number => lsn % OFFSET_SPAN;

export interface SegmentLogOptions {
  /** Roll to a new segment once the current one would grow past this. Default 64 MiB. */
  segmentBytes?: number;
  /** Called after every sync with what it covered; feeds the server's metrics. */
  onSync?: (info: { durationMs: number; records: number; bytes: number }) => void;
}

export interface ReplayedRecord {
  type: number;
  payload: Buffer;
  lsn: Lsn;
  /** Bytes the record occupies on disk, header included. */
  size: number;
}

export interface RecoveryReport {
  segments: number;
  records: number;
  bytesScanned: number;
  /** Set when a torn tail was cut off the last segment. */
  truncated?: { segment: number; offset: number; bytes: number; reason: string };
}

interface Pending {
  record: Buffer;
  resolve: (lsn: Lsn) => void;
  reject: (error: Error) => void;
}

const SEGMENT_NAME = /^(\d{12})\.twlog$/;
/** Bytes read at once by readRecord; see there. */
const READ_AHEAD_BYTES = 256 * 1024;
const segmentName = (n: number) => `${String(n).padStart(12, '0')}.twlog`;

export class SegmentLog {
  readonly dir: string;
  private readonly segmentBytes: number;
  private readonly onSync: SegmentLogOptions['onSync'];
  private segments: number[] = [];
  private handle: FileHandle | undefined;
  private activeSegment = 0;
  private activeSize = 0;
  private queue: Pending[] = [];
  private flushing = false;
  private failed: Error | undefined;
  private closed = false;
  private readFds = new Map<number, number>();
  /** The last read-ahead window of readRecord (only ever holds durable bytes: records are read after their append). */
  private readWindow: { segment: number; offset: number; data: Buffer } | undefined;

  private constructor(dir: string, options: SegmentLogOptions) {
    this.dir = dir;
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    if (this.segmentBytes < SEGMENT_MAGIC.length + HEADER_BYTES + 1024) throw new RangeError('segmentBytes is too small');
    this.onSync = options.onSync;
  }

  /**
   * Opens (creating if needed) the log in `dir`, replays every record at or after `fromLsn` through `onRecord`, cuts
   * a torn tail off the last segment, and readies the log for appends.
   */
  static async open(
    dir: string,
    options: SegmentLogOptions,
    fromLsn: Lsn,
    onRecord: (record: ReplayedRecord) => void,
  ): Promise<{ log: SegmentLog; report: RecoveryReport }> {
    mkdirSync(dir, { recursive: true });
    const log = new SegmentLog(dir, options);
    const report = log.recover(fromLsn, onRecord);
    await log.openActive();
    return { log, report };
  }

  private recover(fromLsn: Lsn, onRecord: (record: ReplayedRecord) => void): RecoveryReport {
    this.segments = readdirSync(this.dir)
      .map((name) => SEGMENT_NAME.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const report: RecoveryReport = { segments: this.segments.length, records: 0, bytesScanned: 0 };
    const startSegment = segmentOf(fromLsn);
    for (const [index, segment] of this.segments.entries()) {
      if (segment < startSegment) continue;
      const last = index === this.segments.length - 1;
      const path = join(this.dir, segmentName(segment));
      // Only the part from the replay start on is read: after a checkpoint near the end of a large segment, start-up
      // must not read the whole segment to skip most of it.
      const from = segment === startSegment ? Math.max(offsetOf(fromLsn), SEGMENT_MAGIC.length) : SEGMENT_MAGIC.length;
      const head = readRange(path, 0, SEGMENT_MAGIC.length);
      const fileSize = statSync(path).size;
      if (head.length < SEGMENT_MAGIC.length || !head.equals(SEGMENT_MAGIC)) {
        const buf = head;
        // A crash can leave a freshly created last segment without its magic; anything else is damage.
        if (last && buf.length < SEGMENT_MAGIC.length && SEGMENT_MAGIC.subarray(0, buf.length).equals(buf)) {
          unlinkSync(path);
          this.segments.pop();
          syncDir(this.dir);
          report.truncated = { segment, offset: 0, bytes: buf.length, reason: 'torn segment header' };
          continue;
        }
        throw new StoreCorruptError(`segment ${segmentName(segment)} does not start with the log magic`);
      }
      const buf = from < fileSize ? readRange(path, from, fileSize - from) : Buffer.alloc(0);
      report.bytesScanned += buf.length;
      const stop = scanRecords(buf, 0, (r) => {
        report.records++;
        onRecord({ type: r.type, payload: r.payload, lsn: lsnOf(segment, from + r.offset), size: r.end - r.offset });
      });
      if (stop.kind === 'torn') {
        const offset = from + stop.offset;
        if (!last) {
          throw new StoreCorruptError(
            `segment ${segmentName(segment)} is damaged at offset ${offset} (${stop.reason}) and later segments exist`,
          );
        }
        truncateFile(path, offset);
        report.truncated = { segment, offset, bytes: fileSize - offset, reason: stop.reason };
      }
    }
    return report;
  }

  private async openActive(): Promise<void> {
    const last = this.segments[this.segments.length - 1];
    if (last === undefined) {
      await this.createSegment(1);
      return;
    }
    const path = join(this.dir, segmentName(last));
    this.handle = await open(path, 'r+');
    this.activeSegment = last;
    this.activeSize = (await stat(path)).size;
  }

  private async createSegment(segment: number): Promise<void> {
    const path = join(this.dir, segmentName(segment));
    const handle = await open(path, 'wx+');
    await writeFully(handle, SEGMENT_MAGIC, 0);
    await handle.datasync();
    syncDir(this.dir);
    this.handle = handle;
    this.activeSegment = segment;
    this.activeSize = SEGMENT_MAGIC.length;
    this.segments.push(segment);
  }

  /** The segment numbers on disk, oldest first. */
  listSegments(): readonly number[] {
    return this.segments;
  }

  get currentSegment(): number {
    return this.activeSegment;
  }

  /** The LSN the next appended record will get (used for checkpoints). */
  get endLsn(): Lsn {
    return lsnOf(this.activeSegment, this.activeSize);
  }

  /** Appends one record; resolves with its LSN once it is durable. */
  append(type: number, payload: Buffer | string): Promise<Lsn> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new StoreUnavailableError('the log is closed'));
    let record: Buffer;
    try {
      record = encodeRecord(type, payload);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (record.length > this.segmentBytes - SEGMENT_MAGIC.length) {
      return Promise.reject(new RangeError(`record of ${record.length} bytes does not fit in a segment`));
    }
    return new Promise<Lsn>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0 && !this.failed) {
        const batch = this.queue;
        this.queue = [];
        const started = performance.now();
        let bytes = 0;
        const lsns: Lsn[] = [];
        try {
          let i = 0;
          while (i < batch.length) {
            if (this.activeSize + batch[i]!.record.length > this.segmentBytes) await this.roll();
            const parts: Buffer[] = [];
            const position = this.activeSize;
            let size = 0;
            while (i < batch.length && position + size + batch[i]!.record.length <= this.segmentBytes) {
              lsns.push(lsnOf(this.activeSegment, position + size));
              parts.push(batch[i]!.record);
              size += batch[i]!.record.length;
              i++;
            }
            try {
              await writeFully(this.handle!, parts.length === 1 ? parts[0]! : Buffer.concat(parts, size), position);
            } catch (error) {
              await this.undoPartialWrite(position);
              throw error;
            }
            this.activeSize += size;
            bytes += size;
          }
          await this.handle!.datasync();
        } catch (error) {
          const failure = new StoreUnavailableError(`log write failed: ${(error as Error).message}`);
          for (const pending of batch) pending.reject(failure);
          continue;
        }
        this.onSync?.({ durationMs: performance.now() - started, records: batch.length, bytes });
        batch.forEach((pending, index) => pending.resolve(lsns[index]!));
      }
    } finally {
      this.flushing = false;
      if (this.failed) {
        for (const pending of this.queue.splice(0)) pending.reject(this.failed);
      }
    }
  }

  // After a failed write the tail may hold part of a batch that was never acknowledged; cut it so later records
  // do not follow garbage. If even that fails, the log refuses further writes until it is reopened (recovery then
  // truncates the torn tail).
  private async undoPartialWrite(position: number): Promise<void> {
    this.readWindow = undefined;
    try {
      await this.handle!.truncate(position);
      await this.handle!.datasync();
    } catch (error) {
      this.failed = new StoreUnavailableError(`log cannot recover from a failed write: ${(error as Error).message}`);
    }
  }

  private async roll(): Promise<void> {
    await this.handle!.datasync();
    await this.handle!.close();
    await this.createSegment(this.activeSegment + 1);
  }

  /**
   * Reads the record at `lsn` (as returned by append or replay), `size` bytes long, and returns its payload. Reads go
   * through a read-ahead window of READ_AHEAD_BYTES: draining a backlog whose bodies were evicted from memory reads the
   * log in order, and one read system call then serves hundreds of records.
   */
  readRecord(lsn: Lsn, size: number): { type: number; payload: Buffer } {
    const segment = segmentOf(lsn);
    const offset = offsetOf(lsn);
    let buf: Buffer;
    const window = this.readWindow;
    if (window && window.segment === segment && offset >= window.offset && offset + size <= window.offset + window.data.length) {
      buf = window.data.subarray(offset - window.offset, offset - window.offset + size);
    } else {
      let fd = this.readFds.get(segment);
      if (fd === undefined) {
        fd = openSync(join(this.dir, segmentName(segment)), 'r');
        this.readFds.set(segment, fd);
      }
      // Never read ahead past what has been written in full: a failed batch's tail can be cut and rewritten.
      const written = segment === this.activeSegment ? this.activeSize - offset : READ_AHEAD_BYTES;
      const data = Buffer.allocUnsafe(Math.max(size, Math.min(READ_AHEAD_BYTES, written)));
      let read = 0;
      while (read < size) {
        const n = readSync(fd, data, read, data.length - read, offset + read);
        if (n === 0) break;
        read += n;
      }
      if (read < size) throw new StoreCorruptError(`short read at segment ${segment} offset ${offset}`);
      this.readWindow = { segment, offset, data: data.subarray(0, read) };
      buf = data.subarray(0, size);
    }
    let record: { type: number; payload: Buffer } | undefined;
    const stop = scanRecords(buf, 0, (r) => {
      if (record === undefined) record = { type: r.type, payload: Buffer.from(r.payload) };
    });
    if (!record || (stop.kind === 'torn' && stop.offset === 0)) {
      throw new StoreCorruptError(`record at segment ${segment} offset ${offset} is damaged`);
    }
    return record;
  }

  /** Deletes a sealed segment (never the active one). The caller guarantees nothing in it is needed. */
  deleteSegment(segment: number): void {
    if (segment >= this.activeSegment) throw new RangeError(`segment ${segment} is active or in the future`);
    const fd = this.readFds.get(segment);
    if (fd !== undefined) {
      closeSync(fd);
      this.readFds.delete(segment);
    }
    if (this.readWindow?.segment === segment) this.readWindow = undefined;
    try {
      unlinkSync(join(this.dir, segmentName(segment)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    this.segments = this.segments.filter((s) => s !== segment);
    syncDir(this.dir);
  }

  /** Waits for queued appends, then closes the files. Appends after close are refused. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing || this.queue.length > 0) {
      if (!this.flushing) void this.flush();
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const fd of this.readFds.values()) closeSync(fd);
    this.readFds.clear();
    await this.handle?.close();
    this.handle = undefined;
  }
}

async function writeFully(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < buf.length) {
    const { bytesWritten } = await handle.write(buf, written, buf.length - written, position + written);
    if (bytesWritten === 0) throw new Error('write made no progress');
    written += bytesWritten;
  }
}

/** Reads `length` bytes of the file from `position` (fewer at the end of the file). */
function readRange(path: string, position: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    let total = 0;
    while (total < length) {
      const n = readSync(fd, buf, total, length - total, position + total);
      if (n === 0) break;
      total += n;
    }
    return total === length ? buf : buf.subarray(0, total);
  } finally {
    closeSync(fd);
  }
}

function truncateFile(path: string, size: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, size);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export { MAX_RECORD_BYTES };
