// One simulated device of a load run: registration over HTTP (reference-client/wire/http.ts) and a session over the
// wire client (reference-client/wire/connection.ts), bound to a chosen loopback source address. A peer acknowledges
// every item delivered to it at once (DLV-18), records deliveries and receipts in the run's accounting, keeps its
// session alive with `ping` every idleTimeoutMs / 2 (KAL-6), and sends messages without waiting for answers, up to
// the server's maxPendingRequests; further sends wait in a local queue, and their latency, measured from the
// scheduled time, includes that wait.
// Against the bare ws relay (`--target baseline`, load/baseline-server.ts) the same peer runs the same code with a
// bare framing: no registration and no hello (the connection, named by ?name=<userId>, is the session), the limits
// of the spec's defaults instead of a welcome, each send as the `deliver` frame the recipient is to read plus `to`
// and `id` (the relay answers send_ok), and the recipient's delivered receipt sent back through the relay instead
// of an `ack`, so that acknowledgement, delivery and receipt are accounted for exactly as against Tickwire.
import { randomBytes } from 'node:crypto';
import { keyPairFromPrivateKey, xeddsaSignWithRandom } from '../reference-client/e2e/index.ts';
import { Connection, WireError, type Credentials } from '../reference-client/wire/connection.ts';
import { HttpApi } from '../reference-client/wire/http.ts';
import { defaultLimits, type DeliverFrame, type DeviceRegistration, type Limits, type ServerFrame } from '../spec/index.ts';
import { parseMessageId, type Accounting } from './accounting.ts';
import { NAME_PARAM } from './baseline-server.ts';
import type { WorkerStats } from './stats.ts';

/** How long one send may wait for its answer before it counts as unanswered. */
export const SEND_TIMEOUT_MS = 30_000;
/** Pending requests a peer allows itself before the server's welcome tells it maxPendingRequests (its minimum). */
const DEFAULT_PENDING = 16;
/** The limits a peer keeps to against the bare relay, which advertises none: the spec's defaults. */
const BARE_LIMITS: Limits = defaultLimits();

/** The identity key and signed prekey shared by all devices one process registers: valid, and cheap to make once. */
export class KeyMaterial {
  readonly identityKey: string;
  readonly signedPreKey: { keyId: number; publicKey: string; signature: string };
  constructor() {
    const pair = keyPairFromPrivateKey(new Uint8Array(randomBytes(32)));
    this.identityKey = Buffer.from(pair.publicKey).toString('base64');
    const spk = keyPairFromPrivateKey(new Uint8Array(randomBytes(32)));
    const signature = xeddsaSignWithRandom(pair.privateKey, spk.publicKey, new Uint8Array(randomBytes(64)));
    this.signedPreKey = { keyId: 1, publicKey: Buffer.from(spk.publicKey).toString('base64'), signature: Buffer.from(signature).toString('base64') };
  }

  registration(name: string): DeviceRegistration {
    return { name, secret: randomBytes(32).toString('base64url'), registrationId: 1 + (randomBytes(2).readUInt16BE(0) % 16380), identityKey: this.identityKey, signedPreKey: this.signedPreKey };
  }
}

export class RegistrationError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'RegistrationError';
    this.code = code;
  }
}

/**
 * Registers a user with one device (POST /v1/accounts, IDN-6). A 429 RATE_LIMITED (IDN-8) is waited out while
 * `deadline` (performance.now()) allows, counting each in `onRateLimited`.
 */
export async function registerUser(http: HttpApi, keys: KeyMaterial, username: string, deadline: number, onRateLimited: () => void): Promise<Credentials> {
  const device = keys.registration('load');
  for (;;) {
    const result = await http.call<{ userId: string; deviceId: number; retryAfterMs?: number; code?: string }>('register', { body: { username, device }, timeoutMs: 30_000 });
    if (result.status === 201) return { userId: result.body.userId, deviceId: result.body.deviceId, secret: device.secret };
    if (result.status === 429) {
      onRateLimited();
      const wait = Math.max(1, result.body?.retryAfterMs ?? 1000);
      if (performance.now() + wait > deadline) throw new RegistrationError('RATE_LIMITED', `registration rate-limited (retry after ${wait} ms) past the setup deadline; start the server with a raised registrationsPerMinute`);
      await new Promise((resolve) => setTimeout(resolve, wait));
      continue;
    }
    throw new RegistrationError(String(result.body?.code ?? result.status), `registration answered HTTP ${result.status}`);
  }
}

/** Runs `task` over `items` with at most `concurrency` at once. */
export async function inPool<T>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await task(items[i]!, i);
    }
  });
  await Promise.all(lanes);
}

export interface PeerContext {
  url: string;
  run: string;
  accounting: Accounting;
  stats: WorkerStats;
  /** Envelope body bytes (at least 24: the scheduled time travels in the body). */
  bodyBytes: number;
  /** The target is the bare ws relay (load/baseline-server.ts): bare framing, no hello, no acks. */
  bare?: boolean;
}

/** The relay's WebSocket URL for the connection named `name` (wsUrlOf adds the /v1/ws path). */
function bareUrl(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set(NAME_PARAM, name);
  return parsed.toString();
}

interface QueuedSend {
  stream: number;
  n: number;
  scheduledAt: number;
  to: { userId: string; deviceId: number };
}

export class Peer {
  conn: Connection | undefined;
  /** Set when the tool itself closes the session (so the close is not counted as an error). */
  private closing = false;
  private keepalive: NodeJS.Timeout | undefined;
  private pending = 0;
  private readonly queue: QueuedSend[] = [];
  private queueHead = 0;
  queueEmptyAt: number | undefined;
  private queueEmptyWaiters: Array<() => void> = [];

  constructor(
    readonly credentials: Credentials,
    readonly localAddress: string | undefined,
    private readonly ctx: PeerContext,
  ) {}

  get isOpen(): boolean {
    return this.conn?.isOpen ?? false;
  }

  /** Opens the session; rejects with WireError (its code is the error kind). */
  async connect(): Promise<void> {
    const stats = this.ctx.stats;
    const options = { validate: false, ...(this.localAddress ? { localAddress: this.localAddress } : {}) };
    const conn = this.ctx.bare ? await Connection.open(bareUrl(this.ctx.url, this.credentials.userId), options) : await Connection.connect(this.ctx.url, this.credentials, options);
    this.conn = conn;
    // The bare relay keeps no queue: there is nothing to drain, so its queue is empty from the start.
    this.queueEmptyAt = this.ctx.bare ? performance.now() : undefined;
    stats.open++;
    conn.on('deliver', (frame) => this.onDeliver(frame));
    conn.on('queue_empty', () => {
      this.queueEmptyAt = performance.now();
      for (const wake of this.queueEmptyWaiters.splice(0)) wake();
    });
    void conn.closed.then((info) => {
      stats.open--;
      this.stopKeepalive();
      if (!this.closing) stats.error(`closed:${info.code}`);
      for (const wake of this.queueEmptyWaiters.splice(0)) wake();
    });
    // KAL-6: a frame at least every idleTimeoutMs / 2; a random phase spreads the pings of many sessions.
    const every = Math.max(1000, Math.floor((this.limits?.idleTimeoutMs ?? 30_000) / 2));
    const first = setTimeout(() => {
      this.ping();
      this.keepalive = setInterval(() => this.ping(), every);
      this.keepalive.unref();
    }, Math.floor(Math.random() * every));
    first.unref();
    this.keepalive = first;
  }

  /** The server's advertised limits (welcome), or the spec's defaults against the bare relay. */
  private get limits(): Limits | undefined {
    return this.conn?.welcome?.limits ?? (this.ctx.bare ? BARE_LIMITS : undefined);
  }

  /** Resolves once queue_empty arrived on the current session (or it closed). */
  queueEmpty(): Promise<void> {
    if (this.queueEmptyAt !== undefined || !this.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.queueEmptyWaiters.push(resolve));
  }

  private ping(): void {
    const conn = this.conn;
    if (!conn?.isOpen) return;
    const stats = this.ctx.stats;
    stats.keepalives++;
    conn.request({ type: 'ping' }, 30_000).then(
      (answer) => {
        if (answer.type !== 'pong') stats.error(`keepalive:${answer.type === 'error' ? answer.code : answer.type}`);
      },
      (error: unknown) => {
        if (!this.closing) stats.error(`keepalive:${error instanceof WireError ? error.code : 'ERROR'}`);
      },
    );
  }

  private stopKeepalive(): void {
    if (this.keepalive) {
      clearTimeout(this.keepalive);
      clearInterval(this.keepalive);
      this.keepalive = undefined;
    }
  }

  /**
   * Sends message n of `stream` to `to`, scheduled at `scheduledAt` (performance.now() scale). Never waits: beyond the
   * server's maxPendingRequests the send waits in a local queue.
   */
  send(stream: number, n: number, scheduledAt: number, to: { userId: string; deviceId: number }): void {
    this.queue.push({ stream, n, scheduledAt, to });
    this.pump();
  }

  private pump(): void {
    const limit = this.limits?.maxPendingRequests ?? DEFAULT_PENDING;
    while (this.queueHead < this.queue.length && this.pending < limit) {
      const item = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as QueuedSend; // release it; the slot is never read again
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.sendNow(item);
    }
  }

  private sendNow(item: QueuedSend): void {
    const { accounting, stats, run } = this.ctx;
    const conn = this.conn;
    if (!conn?.isOpen) {
      stats.error('send:NOT_CONNECTED');
      return;
    }
    const messageId = `${run}-${item.stream}-${item.n}`;
    const body = encodeBody(performance.timeOrigin + item.scheduledAt, this.ctx.bodyBytes);
    accounting.sent(item.stream, item.n);
    stats.sent++;
    this.pending++;
    const frame: Parameters<Connection['request']>[0] = this.ctx.bare ? this.bareSend(messageId, item, body) : { type: 'send', messageId, to: item.to.userId, envelopes: [{ deviceId: item.to.deviceId, type: 'ratchet', body }] };
    conn.request(frame, SEND_TIMEOUT_MS).then(
      (answer: ServerFrame) => {
        this.pending--;
        if (answer.type === 'send_ok') {
          accounting.accepted(item.stream, item.n);
          stats.acked++;
          stats.recordAck(performance.now() - item.scheduledAt);
        } else {
          accounting.refused(item.stream, item.n, answer.type === 'error' && answer.code === 'TEMPORARILY_UNAVAILABLE');
          stats.error(`send:${answer.type === 'error' ? answer.code : answer.type}`);
        }
        this.pump();
      },
      (error: unknown) => {
        this.pending--;
        stats.error(`send:${error instanceof WireError ? error.code : 'ERROR'}`);
        this.pump();
      },
    );
  }

  /**
   * The bare framing of a send: the `deliver` frame the recipient is to read, plus `to` (the relay's routing) and an
   * `id` for the relay's send_ok. The id is the messageId, unique in the run, so that the copy the recipient gets
   * (the relay forwards the bytes unchanged, id included) never matches one of the recipient's own requests.
   */
  private bareSend(messageId: string, item: QueuedSend, body: string): Parameters<Connection['request']>[0] {
    const frame = { type: 'deliver', id: messageId, to: item.to.userId, items: [{ seq: item.n + 1, kind: 'message', messageId, from: { userId: this.credentials.userId, deviceId: this.credentials.deviceId }, envelope: { type: 'ratchet', body } }] };
    // Not a Tickwire request frame (the relay's own framing); the wire client sends any JSON and matches the answer by id.
    return frame as unknown as Parameters<Connection['request']>[0];
  }

  /** Sends still waiting locally or unanswered. */
  get outstanding(): number {
    return this.pending + (this.queue.length - this.queueHead);
  }

  private onDeliver(frame: DeliverFrame): void {
    const { accounting, stats, run } = this.ctx;
    const now = performance.now();
    let upTo = 0;
    // Against the bare relay the recipient itself sends the delivered receipts, per sender, instead of an ack.
    const receipts = this.ctx.bare ? new Map<string, string[]>() : undefined;
    for (const item of frame.items) {
      upTo = Math.max(upTo, item.seq);
      if (item.kind === 'message') {
        if (receipts) {
          const list = receipts.get(item.from.userId);
          if (list) list.push(item.messageId);
          else receipts.set(item.from.userId, [item.messageId]);
        }
        const id = parseMessageId(run, item.messageId);
        if (!id) {
          accounting.foreignMessage();
          continue;
        }
        if (!accounting.delivered(id.stream, id.n, item.seq)) continue;
        stats.delivered++;
        const scheduledEpoch = decodeBody(item.envelope.body);
        if (scheduledEpoch !== undefined) stats.recordDelivery(performance.timeOrigin + now - scheduledEpoch);
      } else if (item.kind === 'receipt' && item.status === 'delivered') {
        for (const messageId of item.messageIds) {
          const id = parseMessageId(run, messageId);
          if (id) {
            accounting.receipt(id.stream, id.n);
            stats.receipts++;
          }
        }
      }
    }
    if (receipts) this.relayReceipts(receipts);
    // DLV-11: upTo acknowledges every item delivered on this session up to it; items arrive in seq order (DLV-6/7).
    else if (upTo > 0 && this.conn?.isOpen) this.conn.sendRaw({ type: 'ack', upTo });
  }

  /** Bare framing: a delivered receipt to each sender, through the relay (no id: the relay answers nothing). */
  private relayReceipts(receipts: Map<string, string[]>): void {
    if (!this.conn?.isOpen) return;
    const from = { userId: this.credentials.userId, deviceId: this.credentials.deviceId };
    for (const [to, messageIds] of receipts) this.conn.sendRaw({ type: 'deliver', to, items: [{ seq: 0, kind: 'receipt', status: 'delivered', from, messageIds }] });
  }

  /** Closes the session normally (not counted as an error). */
  async close(): Promise<void> {
    this.closing = true;
    this.stopKeepalive();
    if (this.conn) await this.conn.close(1000, 'load run over');
  }
}

/** The envelope body: the scheduled send time (epoch ms, as text) padded to `bytes` bytes, base64-encoded. */
export function encodeBody(scheduledEpochMs: number, bytes: number): string {
  const text = `${scheduledEpochMs.toFixed(3)}|`;
  const buffer = Buffer.alloc(Math.max(bytes, text.length), 0x2e);
  buffer.write(text, 0, 'latin1');
  return buffer.toString('base64');
}

export function decodeBody(body: string): number | undefined {
  const head = Buffer.from(body.slice(0, 40), 'base64').toString('latin1');
  const bar = head.indexOf('|');
  if (bar <= 0) return undefined;
  const value = Number(head.slice(0, bar));
  return Number.isFinite(value) ? value : undefined;
}
