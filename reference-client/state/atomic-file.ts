// Crash-safe file primitives for the state directory. A whole-file write goes to a temporary file in the same
// directory, is fsynced, renamed over the target, and the directory is fsynced, so after a crash (or a power cut)
// the target holds either the old or the new content, never a torn mix. An append-only log fsyncs every append and
// ignores a torn last line on load. Everything is synchronous: the E2E layer's ProtocolStore is synchronous, and
// the caller must know the write is durable before it acts on it [E2E-64], [DLV-17].
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { ClientError } from '../errors.ts';

/** Files hold private keys and credentials: owner-only permissions. */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

let tempCounter = 0;

export function ensureDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: DIR_MODE });
}

/** fsync a directory so that a rename or unlink inside it is durable. */
export function fsyncDir(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch (error) {
    // Some platforms cannot fsync a directory (EISDIR/EPERM on Windows); the rename is then as durable as it gets.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes `data` to `path` atomically and durably: temp file, fsync, rename, fsync of the directory. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  const temp = join(dir, `.${process.pid}.${++tempCounter}.tmp`);
  const fd = openSync(temp, 'w', FILE_MODE);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDir(dir);
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value));
}

/** The parsed JSON content of `path`, or undefined when the file does not exist. A corrupt file is STATE_INVALID. */
export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ClientError('STATE_INVALID', `${path} is not valid JSON`);
  }
}

/** Removes a file durably (unlink, then fsync of its directory); a missing file is fine. */
export function removeFileDurably(path: string): void {
  if (!existsSync(path)) return;
  rmSync(path, { force: true });
  fsyncDir(dirname(path));
}

/** Removes temporary files a crash left behind in `dir`. */
export function removeStaleTemps(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) if (name.startsWith('.') && name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
}

/**
 * An append-only log of JSON lines, each append fsynced. `load` returns the complete lines; a torn last line (a
 * crash in the middle of an append) is dropped. `rewrite` replaces the whole log atomically (compaction).
 */
export class AppendLog {
  private fd: number | undefined;
  private lines = 0;

  constructor(readonly path: string) {}

  load(): unknown[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const out: unknown[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        out.push(JSON.parse(line) as unknown);
      } catch {
        // A torn line from a crash mid-append: it was never acted upon, since the append had not returned.
      }
    }
    this.lines = out.length;
    return out;
  }

  /** Number of lines written since the last load or rewrite (live and superseded). */
  get length(): number {
    return this.lines;
  }

  append(entry: unknown): void {
    this.fd ??= openSync(this.path, 'a', FILE_MODE);
    const bytes = Buffer.from(`${JSON.stringify(entry)}\n`, 'utf8');
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(this.fd, bytes, offset, bytes.length - offset);
    fsyncSync(this.fd);
    this.lines++;
  }

  rewrite(entries: unknown[]): void {
    this.close();
    writeFileAtomic(this.path, entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    this.lines = entries.length;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
