// HTTP/1.1 over a raw TCP socket, for the `http`, `handshake` and `tcp` inputs. The wire client's HttpApi goes through
// fetch, which normalises paths (`/v1/../x`, percent-encoding) and headers before they leave; TRN-8 and TRN-10 are
// about exactly those bytes, so the fuzzer writes its requests itself and parses the answers here.
import { connect, type Socket } from 'node:net';
import { activeNow, activeTimeout } from './clock.ts';

export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers keep every value. */
  headers: Map<string, string[]>;
  body: Buffer;
  /** The head as received, for reports. */
  head: string;
}

export function header(response: RawResponse, name: string): string | undefined {
  const values = response.headers.get(name.toLowerCase());
  return values === undefined ? undefined : values.join(', ');
}

type Parsed = { response: RawResponse; used: number } | { need: true } | { error: string };

/**
 * Parses one response from the start of `buffer`. `method` decides whether a body follows (HEAD has none), `ended`
 * whether the connection has closed (a body without a length runs to the close).
 */
export function parseResponse(buffer: Buffer, method: string, ended: boolean): Parsed {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return ended ? { error: buffer.length === 0 ? 'connection closed without a response' : 'connection closed inside the response head' } : { need: true };
  const head = buffer.subarray(0, end).toString('latin1');
  const [statusLine, ...lines] = head.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine ?? '');
  if (!match) return { error: `not an HTTP/1.1 status line: ${JSON.stringify((statusLine ?? '').slice(0, 80))}` };
  const status = Number(match[1]);
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { error: `malformed header line ${JSON.stringify(line.slice(0, 80))}` };
    const name = line.slice(0, colon).trim().toLowerCase();
    const list = headers.get(name) ?? [];
    list.push(line.slice(colon + 1).trim());
    headers.set(name, list);
  }
  const start = end + 4;
  // 1xx answers (100 Continue) precede the real one.
  if (status >= 100 && status < 200 && status !== 101) {
    const rest = parseResponse(buffer.subarray(start), method, ended);
    return 'response' in rest ? { response: rest.response, used: start + rest.used } : rest;
  }
  const noBody = method === 'HEAD' || status === 204 || status === 304 || status === 101;
  const response: RawResponse = { status, headers, body: Buffer.alloc(0), head };
  if (noBody) return { response, used: start };
  const chunked = (headers.get('transfer-encoding') ?? []).join(',').toLowerCase().includes('chunked');
  if (chunked) {
    const chunks: Buffer[] = [];
    let at = start;
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', at);
      if (lineEnd < 0) return ended ? { error: 'connection closed inside a chunked body' } : { need: true };
      const size = parseInt(buffer.subarray(at, lineEnd).toString('latin1'), 16);
      if (!Number.isFinite(size)) return { error: 'bad chunk size' };
      if (size === 0) {
        const trailerEnd = buffer.indexOf('\r\n\r\n', lineEnd);
        if (trailerEnd < 0 && buffer.indexOf('\r\n', lineEnd + 2) !== lineEnd + 2) return ended ? { error: 'connection closed inside chunk trailers' } : { need: true };
        response.body = Buffer.concat(chunks);
        return { response, used: trailerEnd < 0 ? lineEnd + 4 : trailerEnd + 4 };
      }
      if (buffer.length < lineEnd + 2 + size + 2) return ended ? { error: 'connection closed inside a chunk' } : { need: true };
      chunks.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  const lengthText = headers.get('content-length');
  if (lengthText !== undefined) {
    const length = Number(lengthText[0]);
    if (!Number.isSafeInteger(length) || length < 0) return { error: `bad Content-Length ${lengthText[0]}` };
    if (buffer.length < start + length) return ended ? { error: 'connection closed inside the body' } : { need: true };
    response.body = buffer.subarray(start, start + length);
    return { response, used: start + length };
  }
  // No length: the body runs until the connection closes.
  if (!ended) return { need: true };
  response.body = buffer.subarray(start);
  return { response, used: buffer.length };
}

export class RawHttpError extends Error {
  readonly code: 'TIMEOUT' | 'CLOSED' | 'PROTOCOL' | 'CONNECT';
  constructor(code: RawHttpError['code'], message: string) {
    super(message);
    this.name = 'RawHttpError';
    this.code = code;
  }
}

/** A TCP connection to the server, kept alive across requests (one at a time). */
export class RawHttpConnection {
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.waiter?.();
    });
    const onEnd = () => {
      this.ended = true;
      this.waiter?.();
    };
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onEnd);
  }

  static open(url: string, timeoutMs = 10_000): Promise<RawHttpConnection> {
    const parsed = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 80) });
      socket.setNoDelay(true);
      const timer = activeTimeout(() => {
        socket.destroy();
        reject(new RawHttpError('CONNECT', `no TCP connection to ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        timer.clear();
        resolve(new RawHttpConnection(socket));
      });
      socket.once('error', (error) => {
        timer.clear();
        reject(new RawHttpError('CONNECT', error.message));
      });
    });
  }

  get usable(): boolean {
    return !this.ended && !this.socket.destroyed;
  }

  /** Whatever the server sent that no response took. */
  get unread(): Buffer {
    return this.buffer;
  }

  get hasEnded(): boolean {
    return this.ended;
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Writes one byte at a time, `gapMs` apart. */
  async writeSlowly(bytes: Buffer, gapMs: number): Promise<void> {
    for (let i = 0; i < bytes.length && !this.socket.destroyed; i++) {
      this.socket.write(bytes.subarray(i, i + 1));
      await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  }

  /** Resolves with the next response (for a request made with `method`), rejects on timeout or a broken answer. */
  async response(method: string, timeoutMs: number): Promise<RawResponse> {
    const deadline = activeNow() + timeoutMs;
    for (;;) {
      const parsed = parseResponse(this.buffer, method, this.ended);
      if ('response' in parsed) {
        this.buffer = this.buffer.subarray(parsed.used);
        return parsed.response;
      }
      if ('error' in parsed) throw new RawHttpError(this.buffer.length === 0 && this.ended ? 'CLOSED' : 'PROTOCOL', parsed.error);
      const left = deadline - activeNow();
      if (left <= 0) throw new RawHttpError('TIMEOUT', `no complete response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }

  /** Waits until the server closes the connection or `timeoutMs` passes; resolves whether it closed. */
  async untilEnd(timeoutMs: number): Promise<boolean> {
    const deadline = activeNow() + timeoutMs;
    while (!this.ended) {
      const left = deadline - activeNow();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
    return true;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The bytes of an HTTP/1.1 request; Content-Length is added for a body unless the step says not to. */
export function requestBytes(method: string, target: string, host: string, headers: Array<[string, string]>, body: Buffer | undefined, noContentLength = false): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`];
  if (!headers.some(([name]) => name.toLowerCase() === 'host')) lines.push(`Host: ${host}`);
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  if (body !== undefined && !noContentLength && !headers.some(([name]) => name.toLowerCase() === 'content-length' || name.toLowerCase() === 'transfer-encoding')) {
    lines.push(`Content-Length: ${body.length}`);
  }
  // UTF-8: header values with characters past U+00FF go out as their UTF-8 bytes (obs-text to HTTP).
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  return body === undefined ? head : Buffer.concat([head, body]);
}
