// A WebSocket client on a raw TCP socket, for the inputs the wire client cannot send because it follows RFC 6455:
// reserved bits and opcodes, unmasked and fragmented frames, lengths that lie, torn and mutated opening handshakes,
// writers that send one byte at a time, and readers that stop reading. It parses what the server sends back (text and
// binary messages, the Close frame) so that the oracles can judge it; it never validates anything itself.
import { createHash, randomBytes } from 'node:crypto';
import { WS_PATH, WS_SUBPROTOCOL } from '../spec/index.ts';
import { RawHttpConnection, header, type RawResponse } from './raw-http.ts';
import { activeTimeout } from './clock.ts';

export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface RawMessage {
  binary: boolean;
  data: Buffer;
}

export interface RawClose {
  /** The code of the server's Close frame; 1005 when it had none, 1006 when the TCP connection ended without one. */
  code: number;
  reason: string;
  /** Whether the server sent a Close frame. */
  clean: boolean;
}

export interface FrameSpec {
  fin?: boolean;
  rsv?: number;
  opcode: number;
  masked?: boolean;
  payload: Buffer;
  declaredLength?: number;
}

/** The bytes of one WebSocket frame, exactly as specified (RFC 6455 section 5.2). */
export function encodeFrame(spec: FrameSpec): Buffer {
  const fin = spec.fin ?? true;
  const rsv = (spec.rsv ?? 0) & 7;
  const masked = spec.masked ?? true;
  const length = spec.declaredLength ?? spec.payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | (spec.opcode & 0x0f)];
  const maskBit = masked ? 0x80 : 0;
  let extended: Buffer;
  if (length < 126) {
    head.push(maskBit | length);
    extended = Buffer.alloc(0);
  } else if (length < 65536) {
    head.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(length);
  } else {
    head.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(BigInt(length));
  }
  if (!masked) return Buffer.concat([Buffer.from(head), extended, spec.payload]);
  // RFC 6455 wants unpredictable masks against proxy cache poisoning; a fuzzer talking to a test server needs none.
  const key = Buffer.alloc(4);
  key.writeUInt32LE((Math.random() * 0x100000000) >>> 0);
  const payload = Buffer.allocUnsafe(spec.payload.length);
  for (let i = 0; i < payload.length; i++) payload[i] = spec.payload[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from(head), extended, key, payload]);
}

/** The standard opening handshake request for `/v1/ws`, offering tickwire.v1 (TRN-16), with its key. */
export function handshakeRequest(url: string, extraHeaders: Array<[string, string]> = []): { bytes: Buffer; key: string } {
  const parsed = new URL(url);
  const key = randomBytes(16).toString('base64');
  const lines = [
    `GET ${WS_PATH} HTTP/1.1`,
    `Host: ${parsed.host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Protocol: ${WS_SUBPROTOCOL}`,
    ...extraHeaders.map(([name, value]) => `${name}: ${value}`),
  ];
  return { bytes: Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), key };
}

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export type OpenResult =
  | { ok: true; ws: RawWebSocket; response: RawResponse }
  | { ok: false; response?: RawResponse; error?: string; http: RawHttpConnection };

export class RawWebSocket {
  readonly messages: RawMessage[] = [];
  /** Things the server did that RFC 6455 forbids it (masked frames, reserved bits, a bad handshake answer). */
  readonly violations: string[] = [];
  onMessage: ((message: RawMessage) => void) | undefined;
  onClose: ((close: RawClose) => void) | undefined;
  readonly closed: Promise<RawClose>;
  private buffer: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentBinary = false;
  private closeFrame: { code: number; reason: string } | undefined;
  private sentClose = false;
  private resolveClosed!: (close: RawClose) => void;

  private constructor(private readonly conn: RawHttpConnection, initial: Buffer) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const socket = conn.socket;
    socket.removeAllListeners('data');
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.once('close', () => {
      const close: RawClose = this.closeFrame ? { ...this.closeFrame, clean: true } : { code: 1006, reason: '', clean: false };
      this.onClose?.(close);
      this.resolveClosed(close);
    });
    if (initial.length > 0) this.receive(initial);
  }

  /**
   * Opens a connection and performs the opening handshake with `request` (default: the standard one). Resolves with
   * the socket once the server answered 101, or with the refusal (an HTTP response, or an error) otherwise.
   */
  static async open(url: string, options: { request?: { bytes: Buffer; key: string }; slowGapMs?: number; timeoutMs?: number } = {}): Promise<OpenResult> {
    const conn = await RawHttpConnection.open(url, options.timeoutMs ?? 10_000);
    const request = options.request ?? handshakeRequest(url);
    if (options.slowGapMs !== undefined) await conn.writeSlowly(request.bytes, options.slowGapMs);
    else conn.write(request.bytes);
    let response: RawResponse;
    try {
      response = await conn.response('GET', options.timeoutMs ?? 10_000);
    } catch (error) {
      return { ok: false, error: (error as Error).message, http: conn };
    }
    if (response.status !== 101) return { ok: false, response, http: conn };
    const ws = new RawWebSocket(conn, conn.unread);
    // [TRN-15] The server selects tickwire.v1; RFC 6455 4.2.2 fixes the rest of the answer.
    if (header(response, 'sec-websocket-protocol') !== WS_SUBPROTOCOL) ws.violations.push(`101 answer selects subprotocol ${JSON.stringify(header(response, 'sec-websocket-protocol') ?? null)}, not ${WS_SUBPROTOCOL} (TRN-15)`);
    if (header(response, 'sec-websocket-accept') !== acceptFor(request.key)) ws.violations.push('101 answer has a wrong Sec-WebSocket-Accept (RFC 6455 4.2.2)');
    if (!(header(response, 'upgrade') ?? '').toLowerCase().includes('websocket')) ws.violations.push('101 answer without Upgrade: websocket (RFC 6455 4.2.2)');
    return { ok: true, ws, response };
  }

  get open(): boolean {
    return !this.conn.socket.destroyed && this.closeFrame === undefined;
  }

  get closeInfo(): { code: number; reason: string } | undefined {
    return this.closeFrame;
  }

  write(bytes: Buffer): void {
    this.conn.write(bytes);
  }

  writeSlowly(bytes: Buffer, gapMs: number): Promise<void> {
    return this.conn.writeSlowly(bytes, gapMs);
  }

  sendFrame(spec: FrameSpec): void {
    this.write(encodeFrame(spec));
  }

  sendText(data: Buffer): void {
    this.sendFrame({ opcode: OPCODE.text, payload: data });
  }

  sendBinary(data: Buffer): void {
    this.sendFrame({ opcode: OPCODE.binary, payload: data });
  }

  /** One text message split into fragments of `sizes` bytes (the last fragment takes the rest). */
  sendFragmented(data: Buffer, sizes: number[], pingBetween = false): void {
    let at = 0;
    const parts: Buffer[] = [];
    for (const size of sizes) {
      if (at >= data.length) break;
      parts.push(data.subarray(at, at + Math.max(0, size)));
      at += Math.max(0, size);
    }
    parts.push(data.subarray(at));
    parts.forEach((part, i) => {
      if (pingBetween && i > 0) this.sendFrame({ opcode: OPCODE.ping, payload: Buffer.from('f') });
      this.sendFrame({ fin: i === parts.length - 1, opcode: i === 0 ? OPCODE.text : OPCODE.continuation, payload: part });
    });
  }

  /** Stops reading: the server's writes pile up in the kernel buffers and then in the server. */
  stopReading(): void {
    this.conn.socket.pause();
  }

  /** Starts a close handshake (or just ends, if one is under way) and waits for the connection to end. */
  async close(code = 1000, timeoutMs = 2000): Promise<RawClose> {
    if (!this.sentClose && !this.conn.socket.destroyed) {
      this.sentClose = true;
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code);
      this.sendFrame({ opcode: OPCODE.close, payload });
    }
    const timer = activeTimeout(() => this.destroy(), timeoutMs);
    const close = await this.closed;
    timer.clear();
    return close;
  }

  destroy(): void {
    this.conn.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) return;
      const b0 = this.buffer[0]!;
      const b1 = this.buffer[1]!;
      let length = b1 & 0x7f;
      let at = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        at = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) at += 4;
      if (this.buffer.length < at + length) return;
      let payload = this.buffer.subarray(at, at + length);
      if (masked) {
        // RFC 6455 5.1: a server MUST NOT mask its frames.
        this.violations.push('the server sent a masked frame (RFC 6455 5.1)');
        const key = this.buffer.subarray(at - 4, at);
        payload = Buffer.from(payload.map((byte, i) => byte ^ key[i & 3]!));
      }
      this.buffer = this.buffer.subarray(at + length);
      if ((b0 & 0x70) !== 0) this.violations.push('the server set reserved bits without an extension (RFC 6455 5.2)');
      this.frame((b0 & 0x80) !== 0, b0 & 0x0f, Buffer.from(payload));
    }
  }

  private frame(fin: boolean, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case OPCODE.text:
      case OPCODE.binary:
        this.fragments = [payload];
        this.fragmentBinary = opcode === OPCODE.binary;
        if (fin) this.deliver();
        return;
      case OPCODE.continuation:
        this.fragments.push(payload);
        if (fin) this.deliver();
        return;
      case OPCODE.close: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.closeFrame = { code, reason: payload.subarray(2).toString('utf8') };
        // Echo the Close frame (RFC 6455 5.5.1), then let the server end the TCP connection.
        if (!this.sentClose && !this.conn.socket.destroyed) {
          this.sentClose = true;
          this.sendFrame({ opcode: OPCODE.close, payload: payload.subarray(0, 2) });
        }
        setTimeout(() => this.destroy(), 1000).unref();
        return;
      }
      case OPCODE.ping:
        if (!this.sentClose) this.sendFrame({ opcode: OPCODE.pong, payload });
        return;
      case OPCODE.pong:
        return;
      default:
        this.violations.push(`the server sent a frame with reserved opcode ${opcode} (RFC 6455 5.2)`);
    }
  }

  private deliver(): void {
    const message = { binary: this.fragmentBinary, data: Buffer.concat(this.fragments) };
    this.fragments = [];
    this.messages.push(message);
    this.onMessage?.(message);
  }
}
