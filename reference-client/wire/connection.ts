// The one wire-level client of Tickwire: a WebSocket connection speaking the protocol's frames, with request
// correlation by `id`, typed push handlers, validation of every server frame against the spec's schemas, and an
// optional transcript. The messaging library, the conformance suite, the fuzzer, the load tool and the benchmarks
// all talk to servers through it; none of them opens a second hand-rolled client.
import { WebSocket, type RawData } from 'ws';
import {
  checkServerFrame,
  describeIssues,
  WS_PATH,
  WS_SUBPROTOCOL,
  type ClientFrame,
  type ServerFrame,
  type ServerFrameMap,
  type ValidationIssue,
  type WelcomeFrame,
} from '../../spec/index.ts';

export interface Credentials {
  userId: string;
  deviceId: number;
  secret: string;
}

export interface OpenOptions {
  /** Validate every server frame against spec/schemas; invalid ones are reported through `onInvalid`. Default true. */
  validate?: boolean;
  /** Keep every frame sent and received, for reports. Default false. */
  transcript?: boolean;
  /** Answer server `ping` requests with `pong` automatically [KAL]. Default true. */
  answerPings?: boolean;
  /**
   * Answer WebSocket control Ping frames with Pong frames, as RFC 6455 requires [KAL-4]. Default true; only a test
   * that plays a dead peer (the idle timeout of KAL-5) turns it off.
   */
  answerControlPings?: boolean;
  /** Subprotocols to offer; default [tickwire.v1]. Conformance cases use other values to test refusals. */
  protocols?: string[];
  /** Milliseconds to wait for the WebSocket handshake. Default 10000. */
  handshakeTimeoutMs?: number;
  /** Local address to connect from (connection-scale tests spread over 127.0.0.x). */
  localAddress?: string;
  /** Extra headers for the upgrade request. */
  headers?: Record<string, string>;
}

export interface ConnectOptions extends OpenOptions {
  receiveMax?: number;
  client?: { name?: string; version?: string };
  /** Milliseconds to wait for `welcome`. Default 10000. */
  helloTimeoutMs?: number;
}

export interface TranscriptEntry {
  direction: 'sent' | 'received';
  /** Milliseconds since the connection was opened. */
  at: number;
  /** The parsed frame, or the raw text when it was not JSON. */
  frame: unknown;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** Raised when a request gets no answer in time, or the connection closes first. Callers match on `code`. */
export class WireError extends Error {
  readonly code: 'TIMEOUT' | 'CLOSED' | 'HANDSHAKE' | 'REFUSED';
  readonly frame: ServerFrame | undefined;
  constructor(code: WireError['code'], message: string, frame?: ServerFrame) {
    super(message);
    this.name = 'WireError';
    this.code = code;
    this.frame = frame;
  }
}

type RequestFrame = Extract<ClientFrame, { id: string }>;
type Push = { [K in keyof ServerFrameMap]: ServerFrameMap[K] };
type Handler<T> = (frame: T) => void;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Pending {
  resolve: (frame: ServerFrame) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** `http://host:port` (or an explicit ws:// URL) → the protocol's WebSocket endpoint. */
export function wsUrlOf(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = WS_PATH;
  return parsed.toString();
}

export class Connection {
  readonly socket: WebSocket;
  readonly transcript: TranscriptEntry[] | undefined;
  /** Set once `hello` succeeded. */
  welcome: WelcomeFrame | undefined;
  /** Resolves when the connection has closed. */
  readonly closed: Promise<CloseInfo>;
  private readonly openedAt = performance.now();
  private readonly pending = new Map<string, Pending>();
  private readonly handlers = new Map<string, Set<Handler<never>>>();
  private readonly invalidHandlers = new Set<(frame: unknown, issues: ValidationIssue[]) => void>();
  private readonly validateFrames: boolean;
  private readonly answerPings: boolean;
  private nextId = 1;
  private closeInfo: CloseInfo | undefined;
  /** Frames received right after welcome, replayed on the next macrotask (see holdUntilNextTurn). */
  private held: Array<[RawData, boolean]> | undefined;

  private constructor(socket: WebSocket, options: OpenOptions) {
    this.socket = socket;
    this.transcript = options.transcript ? [] : undefined;
    this.validateFrames = options.validate ?? true;
    this.answerPings = options.answerPings ?? true;
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        const error = new WireError('CLOSED', `connection closed (${code} ${this.closeInfo.reason})`);
        for (const [id, pending] of this.pending) {
          clearTimeout(pending.timer);
          pending.reject(error);
          this.pending.delete(id);
        }
        resolve(this.closeInfo);
      });
    });
    socket.on('message', (data, isBinary) => this.receive(data, isBinary));
  }

  /** Opens the WebSocket without authenticating (conformance cases test what a server does before `hello`). */
  static open(url: string, options: OpenOptions = {}): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(wsUrlOf(url), options.protocols ?? [WS_SUBPROTOCOL], {
        handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
        perMessageDeflate: false,
        autoPong: options.answerControlPings ?? true,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        ...(options.headers ? { headers: options.headers } : {}),
      });
      // Listeners go on before the handshake completes so that no early frame or close is missed.
      const connection = new Connection(socket, options);
      const onError = (error: Error) => reject(new WireError('HANDSHAKE', error.message));
      socket.once('error', onError);
      socket.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          socket.removeListener('error', onError);
          // terminate() on a socket still CONNECTING emits 'error'; without a listener that would crash the process.
          socket.on('error', () => {});
          reject(new WireError('REFUSED', `upgrade refused with HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8')}`));
          socket.terminate();
        });
      });
      socket.once('open', () => {
        socket.removeListener('error', onError);
        socket.on('error', () => {
          // Errors after the handshake surface as a close; keep the process from treating them as unhandled.
        });
        resolve(connection);
      });
    });
  }

  /**
   * Opens the WebSocket and authenticates with `hello`; resolves once `welcome` arrived. Handlers attached right after
   * `await Connection.connect(...)` (before the next macrotask) see every frame that followed `welcome`.
   */
  static async connect(url: string, credentials: Credentials, options: ConnectOptions = {}): Promise<Connection> {
    const connection = await Connection.open(url, options);
    try {
      await connection.hello(credentials, options);
    } catch (error) {
      connection.terminate();
      throw error;
    }
    return connection;
  }

  /** Sends `hello` and waits for `welcome`; an `error` answer rejects with the frame attached. */
  async hello(credentials: Credentials, options: Pick<ConnectOptions, 'receiveMax' | 'client' | 'helloTimeoutMs'> = {}): Promise<WelcomeFrame> {
    const answer = await this.request(
      {
        type: 'hello',
        userId: credentials.userId,
        deviceId: credentials.deviceId,
        secret: credentials.secret,
        ...(options.receiveMax === undefined ? {} : { receiveMax: options.receiveMax }),
        ...(options.client === undefined ? {} : { client: options.client }),
      },
      options.helloTimeoutMs ?? 10_000,
    );
    if (answer.type !== 'welcome') {
      throw new WireError('REFUSED', `hello refused: ${answer.type === 'error' ? `${answer.code} ${answer.message}` : answer.type}`, answer);
    }
    this.welcome = answer;
    return answer;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  get closeState(): CloseInfo | undefined {
    return this.closeInfo;
  }

  /** A fresh request id, unique on this connection. */
  newId(prefix = 'r'): string {
    return `${prefix}${this.nextId++}`;
  }

  /**
   * Sends a request and resolves with its answer: the success frame or an `error` frame echoing the id (an error
   * answer resolves too; callers check `type`). Rejects with WireError TIMEOUT or CLOSED.
   */
  request(frame: DistributiveOmit<RequestFrame, 'id'> & { id?: string }, timeoutMs = 10_000): Promise<ServerFrame> {
    const id = frame.id ?? this.newId();
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new WireError('CLOSED', 'connection is not open'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WireError('TIMEOUT', `no answer to ${frame.type} ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.sendRaw({ ...frame, id });
    });
  }

  /** Sends a frame that gets no answer (`ack`, `typing`, `pong`), or any JSON value at all for negative tests. */
  sendRaw(frame: unknown): void {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    this.transcript?.push({ direction: 'sent', at: this.elapsed(), frame: typeof frame === 'string' ? safeParse(frame) : frame });
    if (this.isOpen) this.socket.send(text);
  }

  /**
   * Sends a WebSocket control Ping frame carrying `payload` (at most 125 bytes) and resolves with the payload of the
   * next Pong frame received [KAL-4]. Rejects with WireError TIMEOUT or CLOSED.
   */
  controlPing(payload: Buffer = Buffer.alloc(0), timeoutMs = 10_000): Promise<Buffer> {
    if (payload.length > 125) throw new RangeError(`a control frame payload has at most 125 bytes (got ${payload.length})`);
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new WireError('CLOSED', 'connection is not open'));
        return;
      }
      const onPong = (data: Buffer) => {
        cleanup();
        this.transcript?.push({ direction: 'received', at: this.elapsed(), frame: `<control pong, ${data.length} bytes>` });
        resolve(data);
      };
      const onClose = () => {
        cleanup();
        reject(new WireError('CLOSED', 'connection closed while waiting for a control pong'));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new WireError('TIMEOUT', `no control pong within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.socket.off('pong', onPong);
        this.socket.off('close', onClose);
      };
      this.socket.on('pong', onPong);
      this.socket.once('close', onClose);
      this.transcript?.push({ direction: 'sent', at: this.elapsed(), frame: `<control ping, ${payload.length} bytes>` });
      this.socket.ping(payload);
    });
  }

  /** Sends bytes as a binary frame (negative tests). */
  sendBinary(data: Buffer): void {
    this.transcript?.push({ direction: 'sent', at: this.elapsed(), frame: `<binary ${data.length} bytes>` });
    if (this.isOpen) this.socket.send(data, { binary: true });
  }

  /**
   * Sends `data` as one data message exactly as given, past every check of this client: a text message whose bytes
   * need not be UTF-8, and, with `masked: false`, without the client-to-server masking RFC 6455 requires (negative
   * tests of RFC 6455 violations, TRN-25). Defaults: a text message, masked.
   */
  sendUnchecked(data: Buffer, options: { text?: boolean; masked?: boolean } = {}): void {
    const text = options.text ?? true;
    const masked = options.masked ?? true;
    this.transcript?.push({ direction: 'sent', at: this.elapsed(), frame: `<${text ? 'text' : 'binary'} ${data.length} bytes${masked ? '' : ', unmasked'}: ${data.toString('hex').slice(0, 64)}>` });
    if (this.isOpen) this.socket.send(data, { binary: !text, mask: masked });
  }

  /** Registers a handler for pushes (and answers) of one frame type; returns the function that removes it. */
  on<K extends keyof Push>(type: K, handler: Handler<Push[K]>): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler as Handler<never>);
    return () => set.delete(handler as Handler<never>);
  }

  /** Called with every server frame that fails the spec's schemas (or is not JSON). */
  onInvalid(handler: (frame: unknown, issues: ValidationIssue[]) => void): () => void {
    this.invalidHandlers.add(handler);
    return () => this.invalidHandlers.delete(handler);
  }

  /** Resolves with the next frame of `type` satisfying `predicate`; rejects on timeout or close. */
  waitFor<K extends keyof Push>(type: K, predicate: (frame: Push[K]) => boolean = () => true, timeoutMs = 10_000): Promise<Push[K]> {
    return new Promise((resolve, reject) => {
      const off = this.on(type, (frame) => {
        if (!predicate(frame)) return;
        cleanup();
        resolve(frame);
      });
      const timer = setTimeout(() => {
        cleanup();
        reject(new WireError('TIMEOUT', `no ${type} frame within ${timeoutMs} ms`));
      }, timeoutMs);
      void this.closed.then((info) => {
        cleanup();
        reject(new WireError('CLOSED', `connection closed (${info.code} ${info.reason}) while waiting for ${type}`));
      });
      const cleanup = () => {
        off();
        clearTimeout(timer);
      };
    });
  }

  /** Closes with a normal closure and waits for the close to complete. */
  async close(code = 1000, reason = ''): Promise<CloseInfo> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close(code, reason);
      const timer = setTimeout(() => this.socket.terminate(), 2000);
      const info = await this.closed;
      clearTimeout(timer);
      return info;
    }
    return this.closed;
  }

  /** Drops the TCP connection without a closing handshake (a client that vanished). */
  terminate(): void {
    this.socket.terminate();
  }

  private holdUntilNextTurn(): void {
    this.held = [];
    setImmediate(() => {
      const held = this.held ?? [];
      this.held = undefined;
      for (const [data, isBinary] of held) this.receive(data, isBinary);
    });
  }

  private elapsed(): number {
    return Math.round((performance.now() - this.openedAt) * 1000) / 1000;
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (this.held) {
      this.held.push([data, isBinary]);
      return;
    }
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
    let frame: unknown;
    try {
      frame = isBinary ? undefined : JSON.parse(text);
    } catch {
      frame = undefined;
    }
    this.transcript?.push({ direction: 'received', at: this.elapsed(), frame: frame ?? (isBinary ? `<binary ${text.length} bytes>` : text) });
    if (frame === undefined) {
      const issue = { path: '', message: isBinary ? 'server sent a binary frame' : 'not JSON' };
      for (const handler of this.invalidHandlers) handler(text, [issue]);
      return;
    }
    let typed: ServerFrame;
    if (this.validateFrames) {
      const check = checkServerFrame(frame);
      if (!check.ok) {
        for (const handler of this.invalidHandlers) handler(frame, check.issues);
        // An unknown frame type from the server is ignored [ERR]; an invalid known one is reported and dropped.
        if (check.reason !== 'invalid') return;
        const id = (frame as { id?: unknown }).id;
        if (typeof id === 'string' && this.pending.has(id)) {
          const pending = this.pending.get(id)!;
          this.pending.delete(id);
          clearTimeout(pending.timer);
          pending.reject(new WireError('REFUSED', `answer to ${id} fails its schema: ${describeIssues(check.issues)}`));
        }
        return;
      }
      typed = check.frame;
    } else {
      typed = frame as ServerFrame;
    }
    if (typed.type === 'ping' && this.answerPings) this.sendRaw({ type: 'pong', id: typed.id });
    const id = (typed as { id?: string }).id;
    if (id !== undefined && typed.type !== 'ping') {
      const pending = this.pending.get(id);
      if (pending) {
        this.pending.delete(id);
        clearTimeout(pending.timer);
        pending.resolve(typed);
        // A server often sends its first pushes (queue_empty, deliver) in the same packet as welcome. Hold what
        // follows welcome until the next macrotask, so that handlers attached right after `await connect()` see it.
        if (typed.type === 'welcome') this.holdUntilNextTurn();
      }
    }
    const set = this.handlers.get(typed.type);
    if (set) for (const handler of [...set]) (handler as Handler<ServerFrame>)(typed);
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
