// The on-disk framing of one log record.
//
//   offset  size  field
//   0       4     length of (type + payload), unsigned little-endian
//   4       4     CRC-32 of (type + payload), unsigned little-endian
//   8       1     record type
//   9       n     payload
//
// A segment file starts with the 8-byte magic `TWLOG\x00\x00\x01` (format version 1). A record is valid when its
// length fits in the file and its checksum matches; the first invalid record ends what can be trusted.
import { crc32 } from 'node:zlib';

export const SEGMENT_MAGIC = Buffer.from([0x54, 0x57, 0x4c, 0x4f, 0x47, 0x00, 0x00, 0x01]);
export const HEADER_BYTES = 8;
/** A record larger than this is refused on write and treated as corruption on read. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** Frames a payload given as bytes, or as text (written as UTF-8 straight into the record, saving a copy). */
export function encodeRecord(type: number, payload: Buffer | string): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError(`record type ${type} is not a byte`);
  const payloadLength = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  const length = 1 + payloadLength;
  if (length > MAX_RECORD_BYTES) throw new RangeError(`record of ${length} bytes exceeds ${MAX_RECORD_BYTES}`);
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  out.writeUInt32LE(length, 0);
  out[HEADER_BYTES] = type;
  if (typeof payload === 'string') out.write(payload, HEADER_BYTES + 1, 'utf8');
  else payload.copy(out, HEADER_BYTES + 1);
  out.writeUInt32LE(crc32(out.subarray(HEADER_BYTES)), 4);
  return out;
}

export interface DecodedRecord {
  type: number;
  payload: Buffer;
  /** Offset of the record's header within the buffer that was scanned. */
  offset: number;
  /** Offset just past the record. */
  end: number;
}

export type ScanStop =
  | { kind: 'end' }
  | { kind: 'torn'; offset: number; reason: 'short-header' | 'short-body' | 'bad-length' | 'bad-checksum' };

/**
 * Decodes the records of `buf` from `start` on, calling `onRecord` for each valid one, until the end of the buffer
 * or the first record that cannot be trusted. Returns why it stopped.
 */
export function scanRecords(buf: Buffer, start: number, onRecord: (record: DecodedRecord) => void): ScanStop {
  let offset = start;
  while (offset < buf.length) {
    if (buf.length - offset < HEADER_BYTES) return { kind: 'torn', offset, reason: 'short-header' };
    const length = buf.readUInt32LE(offset);
    if (length < 1 || length > MAX_RECORD_BYTES) return { kind: 'torn', offset, reason: 'bad-length' };
    const bodyStart = offset + HEADER_BYTES;
    const end = bodyStart + length;
    if (end > buf.length) return { kind: 'torn', offset, reason: 'short-body' };
    const body = buf.subarray(bodyStart, end);
    if (crc32(body) !== buf.readUInt32LE(offset + 4)) return { kind: 'torn', offset, reason: 'bad-checksum' };
    onRecord({ type: body[0]!, payload: body.subarray(1), offset, end });
    offset = end;
  }
  return { kind: 'end' };
}
