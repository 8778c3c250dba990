// Shared helpers for tests that run the real reference server over real sockets: start it on port 0 with a fresh
// data directory, register users over HTTP, open authenticated WebSocket sessions, and wait for frames by predicate
// with a timeout. Key material and names come from a seeded generator; the seed is in TICKWIRE_TEST_SEED.
import { seededRandom } from '../lib/seeded-random.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { defaultConfig, defaultLimitValues, type LimitValues, type ServerConfig } from '../../reference-server/config.ts';
import { startServer, type RunningServer } from '../../reference-server/server.ts';
import { WS_PATH, WS_SUBPROTOCOL, type MessageItem, type ReceiptItem, type ServerFrame, type ServerFrameMap, type WelcomeFrame } from '../../spec/index.ts';

export const TEST_SEED = Number(process.env['TICKWIRE_TEST_SEED'] ?? 7_340_033);

const random = seededRandom(TEST_SEED);
let nameCounter = 0;

export function randomBytesSeeded(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}
/** 33 bytes, 0x05 then a 32-byte u-coordinate, base64 (the server does not verify keys). */
export const publicKey = (): string => Buffer.concat([Buffer.from([5]), randomBytesSeeded(32)]).toString('base64');
export const signature = (): string => randomBytesSeeded(64).toString('base64');
export const secret = (): string => randomBytesSeeded(32).toString('base64url');
export const username = (prefix = 'u'): string => `${prefix}${++nameCounter}_${randomBytesSeeded(5).toString('hex')}`.slice(0, 32);
export const messageId = (): string => `m-${randomBytesSeeded(12).toString('hex')}`;
/** A base64 envelope body of `bytes` bytes. */
export const body = (bytes = 48): string => randomBytesSeeded(bytes).toString('base64');

export function deviceRegistration(prekeys = 0, firstKeyId = 1) {
  return {
    name: 'test device',
    secret: secret(),
    registrationId: 1 + Math.floor(random() * 16000),
    identityKey: publicKey(),
    signedPreKey: { keyId: 1, publicKey: publicKey(), signature: signature() },
    oneTimePreKeys: Array.from({ length: prekeys }, (_, i) => ({ keyId: firstKeyId + i, publicKey: publicKey() })),
  };
}

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface TestServer extends RunningServer {
  wsUrl: string;
  dataDir: string;
}

export interface TestServerOptions {
  limits?: Partial<LimitValues>;
  config?: Partial<ServerConfig>;
}

/** Starts a server on 127.0.0.1, port 0, in a temporary data directory; `t.teardown` closes it and removes the data. */
export async function startTestServer(t: Teardown, options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-test-'));
  const limits: LimitValues = { ...defaultLimitValues(), registrationsPerMinute: 10_000, ...options.limits };
  // TICKWIRE_TEST_REDIS_URL runs the server on the Redis store there instead (the data directory is then unused).
  const redisUrl = process.env['TICKWIRE_TEST_REDIS_URL'];
  const config = defaultConfig({ port: 0, host: '127.0.0.1', dataDir, logLevel: 'silent', shutdownGraceMs: 2000, ...(redisUrl ? { redisUrl } : {}), ...options.config, limits });
  const running = await startServer(config);
  const server: TestServer = { ...running, wsUrl: running.url.replace(/^http/, 'ws') + WS_PATH, dataDir };
  t.teardown(async () => {
    await running.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return server;
}

export interface Credentials {
  userId: string;
  deviceId: number;
  secret: string;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

export function basicAuth(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.userId}.${c.deviceId}:${c.secret}`).toString('base64');
}

/** One HTTP request with an optional JSON body and device credentials. */
export async function http(server: { url: string }, method: string, path: string, options: { body?: unknown; auth?: Credentials } = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
  if (options.auth) headers['authorization'] = basicAuth(options.auth);
  const response = await fetch(server.url + path, { method, headers, ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

function expectStatus(answer: HttpAnswer, status: number, what: string): void {
  if (answer.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${answer.status} ${JSON.stringify(answer.body)}`);
}

/** Registers a new user with one device (POST /v1/accounts) and resolves its credentials. */
export async function registerUser(server: { url: string }, options: { prekeys?: number } = {}): Promise<Credentials & { username: string }> {
  const device = deviceRegistration(options.prekeys ?? 0);
  const name = username();
  const answer = await http(server, 'POST', '/v1/accounts', { body: { username: name, device } });
  expectStatus(answer, 201, 'register');
  const created = answer.body as { userId: string; deviceId: number };
  return { userId: created.userId, deviceId: created.deviceId, secret: device.secret, username: name };
}

/** Links one more device to the user of `existing` (link code, then POST /v1/devices). */
export async function linkDevice(server: { url: string }, existing: Credentials, options: { prekeys?: number } = {}): Promise<Credentials> {
  const code = await http(server, 'POST', '/v1/devices/link-codes', { auth: existing });
  expectStatus(code, 201, 'link code');
  const device = deviceRegistration(options.prekeys ?? 0);
  const linked = await http(server, 'POST', '/v1/devices', { body: { linkCode: (code.body as { code: string }).code, device } });
  expectStatus(linked, 201, 'link device');
  const created = linked.body as { userId: string; deviceId: number };
  return { userId: created.userId, deviceId: created.deviceId, secret: device.secret };
}

export interface Closed {
  code: number;
  reason: string;
}

const DEFAULT_WAIT_MS = 5000;

/** A WebSocket client for tests: records every frame, and waits for the next unconsumed one matching a predicate. */
export class TestClient {
  readonly received: ServerFrame[] = [];
  private readonly consumed = new Set<number>();
  private waiters: Array<() => void> = [];
  readonly closed: Promise<Closed>;
  private closedWith: Closed | undefined;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
        this.notify();
      });
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) throw new Error('the server sent a binary message');
      this.received.push(JSON.parse(data.toString()) as ServerFrame);
      this.notify();
    });
    ws.on('error', () => undefined);
  }

  /** Opens a connection offering tickwire.v1 (or `protocols`); resolves once it is open. */
  static async connect(server: { wsUrl: string }, protocols: string[] = [WS_SUBPROTOCOL]): Promise<TestClient> {
    const ws = new WebSocket(server.wsUrl, protocols, { perMessageDeflate: false });
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
    });
    return client;
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private take(predicate: (frame: ServerFrame) => boolean): ServerFrame | undefined {
    for (let i = 0; i < this.received.length; i++) {
      if (this.consumed.has(i)) continue;
      const frame = this.received[i]!;
      if (predicate(frame)) {
        this.consumed.add(i);
        return frame;
      }
    }
    return undefined;
  }

  /** The next unconsumed frame matching `predicate`, waiting up to `timeoutMs`; rejects on timeout or close. */
  async next(predicate: (frame: ServerFrame) => boolean, timeoutMs = DEFAULT_WAIT_MS, what = 'frame'): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.take(predicate);
      if (found) return found;
      if (this.closedWith) throw new Error(`connection closed (${this.closedWith.code} ${this.closedWith.reason}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ${JSON.stringify(this.received.map((f) => f.type))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next unconsumed frame of a type (and matching `predicate`), typed. */
  async nextOf<T extends keyof ServerFrameMap>(type: T, predicate: (frame: ServerFrameMap[T]) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<ServerFrameMap[T]> {
    return (await this.next((f) => f.type === type && predicate(f as ServerFrameMap[T]), timeoutMs, type)) as ServerFrameMap[T];
  }

  /** Sends a request and resolves the frame that echoes its id. */
  async request(frame: { id: string } & Record<string, unknown>, timeoutMs = DEFAULT_WAIT_MS): Promise<ServerFrame> {
    this.send(frame);
    return this.next((f) => 'id' in f && f.id === frame.id, timeoutMs, `answer to ${String(frame['type'])} ${frame.id}`);
  }

  /** Resolves true when no unconsumed frame matching `predicate` arrives within `ms`. */
  async quietFor(ms: number, predicate: (frame: ServerFrame) => boolean = () => true): Promise<boolean> {
    try {
      await this.next(predicate, ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Unconsumed frames received so far, consuming them. */
  drain(): ServerFrame[] {
    const out: ServerFrame[] = [];
    for (;;) {
      const frame = this.take(() => true);
      if (!frame) return out;
      out.push(frame);
    }
  }

  close(code = 1000): Promise<Closed> {
    if (!this.closedWith) this.ws.close(code);
    return this.closed;
  }
}

let requestCounter = 0;
export const rid = (prefix = 'r'): string => `${prefix}${++requestCounter}`;

/** Opens a connection and authenticates it; resolves the client and its welcome. */
export async function openSession(server: { wsUrl: string }, credentials: Credentials, hello: Record<string, unknown> = {}): Promise<{ client: TestClient; welcome: WelcomeFrame }> {
  const client = await TestClient.connect(server);
  const answer = await client.request({ type: 'hello', id: rid('h'), userId: credentials.userId, deviceId: credentials.deviceId, secret: credentials.secret, ...hello });
  if (answer.type !== 'welcome') throw new Error(`hello failed: ${JSON.stringify(answer)}`);
  return { client, welcome: answer };
}

/** A send frame with one envelope per listed device of `to`. */
export function sendFrame(to: string, deviceIds: number[], extra: { id?: string; messageId?: string; bytes?: number } = {}) {
  return {
    type: 'send' as const,
    id: extra.id ?? rid('s'),
    messageId: extra.messageId ?? messageId(),
    to,
    envelopes: deviceIds.map((deviceId) => ({ deviceId, type: 'ratchet' as const, body: body(extra.bytes) })),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for deliver frames until `count` items of `kind` have arrived; resolves them in arrival order. */
export async function items(client: TestClient, count: number, kind: 'message' | 'receipt', timeoutMs = 10_000): Promise<Array<MessageItem | ReceiptItem>> {
  const out: Array<MessageItem | ReceiptItem> = [];
  while (out.length < count) {
    const frame = await client.nextOf('deliver', (f) => f.items.some((i) => i.kind === kind), timeoutMs);
    out.push(...frame.items.filter((i) => i.kind === kind));
  }
  return out;
}
