// Test harness for the HTTP API: a real server on 127.0.0.1, port 0, with a fresh data directory; a small client on
// fetch that checks every answer against its spec schema; seeded key material (the seed is printed on failure).
import { mkdtempSync, rmSync } from 'node:fs';
import { seededRandom } from '../../lib/seeded-random.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { routes, validate, type PreKey, type SignedPreKey } from '../../../spec/index.ts';
import { defaultConfig, defaultLimitValues, type LimitValues, type ServerConfig } from '../../../reference-server/config.ts';
import { startServer, type RunningServer, type StartOptions } from '../../../reference-server/server.ts';

export { seededRandom };

export const SEED = Number(process.env['TICKWIRE_TEST_SEED'] ?? 20240611);

export class Keys {
  private readonly random: () => number;
  private counter = 0;
  constructor(readonly seed = SEED) {
    this.random = seededRandom(seed);
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.random() * 256);
    return out;
  }
  /** 33 bytes: 0x05 and a 32-byte u-coordinate, base64 (44 characters). */
  publicKey(): string {
    return Buffer.concat([Buffer.from([5]), this.bytes(32)]).toString('base64');
  }
  signature(): string {
    return this.bytes(64).toString('base64');
  }
  secret(): string {
    return this.bytes(32).toString('base64url');
  }
  username(prefix = 'u'): string {
    this.counter++;
    return `${prefix}${this.counter}_${Math.floor(this.random() * 1e9).toString(36)}`.slice(0, 32);
  }
  signedPreKey(keyId = 1): SignedPreKey {
    return { keyId, publicKey: this.publicKey(), signature: this.signature() };
  }
  preKeys(from: number, count: number): PreKey[] {
    return Array.from({ length: count }, (_, i) => ({ keyId: from + i, publicKey: this.publicKey() }));
  }
  device(name = 'phone', oneTimePreKeys: PreKey[] = []) {
    return { name, secret: this.secret(), registrationId: 1 + Math.floor(this.random() * 16000), identityKey: this.publicKey(), signedPreKey: this.signedPreKey(), oneTimePreKeys };
  }
}

export interface Credentials {
  userId: string;
  deviceId: number;
  secret: string;
}

export function basic(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.userId}.${c.deviceId}:${c.secret}`).toString('base64');
}

export interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or undefined for an empty body. */
  body: unknown;
  text: string;
  /** Schema problems of the body, empty when it validates (error.json for errors, the route's schema otherwise). */
  schemaIssues: string[];
}

export interface CallOptions {
  auth?: Credentials | string;
  body?: unknown;
  /** A raw body, sent as is (with `contentType`). */
  raw?: string | Buffer;
  contentType?: string | null;
  headers?: Record<string, string>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Sends one request; checks the content type and the schema of whatever comes back [TRN-3] [ERR-1]. */
export async function call(base: string, method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth !== undefined) headers['authorization'] = typeof options.auth === 'string' ? options.auth : basic(options.auth);
  let payload: string | Buffer | undefined;
  if (options.raw !== undefined) payload = options.raw;
  else if (options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined && options.contentType !== null) headers['content-type'] = options.contentType ?? JSON_TYPE;
  const response = await fetch(base + path, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
  const text = await response.text();
  const body: unknown = text === '' ? undefined : JSON.parse(text);
  const schemaIssues: string[] = [];
  if (text !== '') {
    const type = response.headers.get('content-type');
    if (type !== JSON_TYPE) schemaIssues.push(`content-type is ${type}`);
  }
  const schema = schemaFor(method, path, response.status);
  if (schema === null) {
    if (text !== '') schemaIssues.push(`expected no body for ${response.status}`);
  } else if (schema !== undefined) {
    const result = validate(schema, body);
    if (!result.ok) schemaIssues.push(...result.issues.map((i) => `${schema} ${i.path} ${i.message}`));
  }
  return { status: response.status, headers: response.headers, body, text, schemaIssues };
}

/** The schema an answer must match: error.json for 4xx/5xx, the route's success schema otherwise. */
function schemaFor(method: string, path: string, status: number): string | null | undefined {
  if (status >= 400) return 'http/error.json';
  const bare = path.split('?')[0]!;
  const route = routes.find((r) => r.method === method && new RegExp(`^${r.path.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(bare) && !(r.path.includes('{') && bare === '/v1/devices/link-codes'));
  if (!route || route.success.status !== status) return undefined;
  return route.success.schema;
}

export function codeOf(answer: Answer): string | undefined {
  return (answer.body as { error?: { code?: string } } | undefined)?.error?.code;
}

export interface TestServer {
  server: RunningServer;
  url: string;
  dataDir: string;
  config: ServerConfig;
  keys: Keys;
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
  register(options?: { username?: string; oneTimePreKeys?: PreKey[] }): Promise<Credentials & { username: string }>;
  link(owner: Credentials, options?: { oneTimePreKeys?: PreKey[] }): Promise<Credentials>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a server with a fresh data directory; registrations are not rate-limited unless a test asks for it. */
export async function startTestServer(limits: Partial<LimitValues> = {}, options: StartOptions & { config?: Partial<ServerConfig> } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-http-'));
  const config = defaultConfig({
    port: 0,
    host: '127.0.0.1',
    dataDir,
    logLevel: 'silent',
    shutdownGraceMs: 1000,
    ...options.config,
    limits: { ...defaultLimitValues(), registrationsPerMinute: 10_000, ...limits },
  });
  const { config: _ignored, ...startOptions } = options;
  const keys = new Keys();
  const box: { server: RunningServer } = { server: await startServer(config, startOptions) };
  const test: TestServer = {
    get server() {
      return box.server;
    },
    get url() {
      return box.server.url;
    },
    dataDir,
    config,
    keys,
    call: (method, path, callOptions) => call(box.server.url, method, path, callOptions),
    async register(registerOptions = {}) {
      const username = registerOptions.username ?? keys.username();
      const device = keys.device('phone', registerOptions.oneTimePreKeys ?? []);
      const answer = await test.call('POST', '/v1/accounts', { body: { username, device } });
      if (answer.status !== 201) throw new Error(`register failed: ${answer.status} ${answer.text}`);
      const created = answer.body as { userId: string; deviceId: number };
      return { userId: created.userId, deviceId: created.deviceId, secret: device.secret, username };
    },
    async link(owner, linkOptions = {}) {
      const code = await test.call('POST', '/v1/devices/link-codes', { auth: owner });
      if (code.status !== 201) throw new Error(`link code failed: ${code.status} ${code.text}`);
      const device = keys.device('laptop', linkOptions.oneTimePreKeys ?? []);
      const linked = await test.call('POST', '/v1/devices', { body: { linkCode: (code.body as { code: string }).code, device } });
      if (linked.status !== 201) throw new Error(`link failed: ${linked.status} ${linked.text}`);
      const created = linked.body as { userId: string; deviceId: number };
      return { userId: created.userId, deviceId: created.deviceId, secret: device.secret };
    },
    async restart() {
      await box.server.close();
      box.server = await startServer(config, startOptions);
    },
    async close() {
      await box.server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return test;
}
