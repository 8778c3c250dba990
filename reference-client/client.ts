// TickwireClient: the messaging library. One instance per device, over a local state directory. It composes the
// parts that each own one concern: account.ts (register, link), prekeys.ts, session-manager.ts (E2E sessions on
// disk), sender.ts + outbox.ts (send, STALE_DEVICES, resend), receiver.ts + inbox/dedupe.ts (deliver, dedupe, ack),
// ticks.ts, reconnect.ts (session lifecycle and backoff) and requests.ts (maxPendingRequests). All network traffic
// goes through the one wire client (wire/connection.ts, wire/http.ts).
//
// Additions to client-api.ts's MessagingClient (the interface is unchanged):
// - `link(options, linkCode, deviceName, username?)`: the optional username is checked against the one the server
//   names in its link answer (IDN-16);
// - `connected`, `outboxSize` and `dropConnection()`: read-only status and a simulated network failure, for
//   applications' status lines and for tests of the resend and reconnect paths.
// - ClientOptions is extended with `serverRestartDelayMs` (the KAL-10 extra delay bound) in `TickwireClientOptions`.
import { EventEmitter } from 'node:events';
import type { Limits, UserLookupResponse } from '../spec/index.ts';
import { linkDevice, registerDevice, checkServerUrl } from './account.ts';
import type { Address, ClientEvents, ClientOptions, MessagingClient, Tick } from './client-api.ts';
import {
  DEFAULT_MAX_RECONNECT_DELAY_MS,
  DEFAULT_MIN_RECONNECT_DELAY_MS,
  DEFAULT_PREKEY_BATCH,
  DEFAULT_SERVER_RESTART_EXTRA_DELAY_MS,
  DEFAULT_SIGNED_PREKEY_ROTATION_SEC,
  MESSAGE_ID_BYTES,
  ROTATION_CHECK_INTERVAL_MS,
} from './constants.ts';
import { secureRandom, utf8 } from './e2e/index.ts';
import { ClientError, describeError } from './errors.ts';
import { messageKey, PendingInbox, ProcessedIds } from './inbox/dedupe.ts';
import { Outbox } from './outbox.ts';
import { httpFailure, PreKeyManager, PreKeyStore } from './prekeys.ts';
import { Receiver } from './receiver.ts';
import { Backoff, Reconnector } from './reconnect.ts';
import { PendingRequests } from './requests.ts';
import { SerialLock, Sender } from './sender.ts';
import { DiskProtocolStore, PeerStore, SessionManager } from './session-manager.ts';
import { limitsBeforeWelcome } from './session-limits.ts';
import { StateDir, type DeviceRecord } from './state/state-dir.ts';
import { TickStore } from './ticks.ts';
import { Connection, type Credentials } from './wire/connection.ts';
import { HttpApi } from './wire/http.ts';

export interface TickwireClientOptions extends ClientOptions {
  /** [KAL-10] Upper bound of the extra random delay after a 1012 close. Default 5,000 ms (the spec's value). */
  serverRestartDelayMs?: number;
}

const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

function assertAddress(value: Address, name: string): void {
  if (typeof value !== 'object' || value === null || typeof value.userId !== 'string' || !USER_ID.test(value.userId)) {
    throw new ClientError('INVALID_ARGUMENT', `${name}.userId is not a userId`);
  }
  if (!Number.isSafeInteger(value.deviceId) || value.deviceId < 1) throw new ClientError('INVALID_ARGUMENT', `${name}.deviceId is not a deviceId`);
}

export class TickwireClient extends EventEmitter<ClientEvents> implements MessagingClient {
  readonly address: Address;
  readonly username: string;
  private readonly credentials: Credentials;
  private readonly http: HttpApi;
  private readonly sessions: SessionManager;
  private readonly prekeys: PreKeyManager;
  private readonly outbox: Outbox;
  private readonly processed: ProcessedIds;
  private readonly ticks: TickStore;
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  private readonly reconnector: Reconnector;
  private connection: Connection | undefined;
  private requests: PendingRequests | undefined;
  private limits: Limits = limitsBeforeWelcome();
  private readonly presence = new Set<string>();
  private timers: NodeJS.Timeout[] = [];
  private started: Promise<void> | undefined;
  private closed = false;

  private constructor(
    options: TickwireClientOptions,
    dir: StateDir,
    device: DeviceRecord,
  ) {
    super();
    this.address = { userId: device.userId, deviceId: device.deviceId };
    this.username = device.username;
    this.credentials = { userId: device.userId, deviceId: device.deviceId, secret: device.secret };
    this.http = new HttpApi(options.url);
    const identity = dir.readIdentity();
    const preKeyStore = PreKeyStore.load(dir.path('prekeys.json'));
    const store = new DiskProtocolStore(dir, identity.identityKeyPair, identity.registrationId, preKeyStore, PeerStore.load(dir.path('peers.json')));
    const now = (): number => Date.now();
    const warn = (code: string, message: string): void => void this.emit('warning', { code, message });
    this.sessions = new SessionManager(store, this.http, this.credentials, secureRandom, now);
    this.prekeys = new PreKeyManager(preKeyStore, {
      http: this.http,
      credentials: this.credentials,
      identity: identity.identityKeyPair,
      random: secureRandom,
      preKeyBatch: options.preKeyBatch ?? DEFAULT_PREKEY_BATCH,
      signedPreKeyRotationSec: options.signedPreKeyRotationSec ?? DEFAULT_SIGNED_PREKEY_ROTATION_SEC,
      now,
      warn,
    });
    this.outbox = new Outbox(dir.outboxDir);
    this.processed = new ProcessedIds(dir.path('processed.log'));
    this.ticks = new TickStore(dir.path('ticks.log'));
    this.sender = new Sender({
      self: this.address,
      sessions: this.sessions,
      outbox: this.outbox,
      ticks: this.ticks,
      lock: new SerialLock(),
      limits: () => this.limits,
      emitReceipt: (receipt) => void this.emit('receipt', receipt),
      warn,
    });
    this.receiver = new Receiver({
      sessions: this.sessions,
      processed: this.processed,
      inbox: new PendingInbox(dir.inboxDir),
      ticks: this.ticks,
      onMessage: options.onMessage,
      emitMessage: (message) => void this.emit('message', message),
      emitReceipt: (receipt) => void this.emit('receipt', receipt),
      emitCaughtUp: () => void this.emit('caughtUp'),
      warn,
    });
    this.reconnector = new Reconnector({
      open: () => Connection.connect(options.url, this.credentials, { client: { name: 'tickwire-reference-client' } }),
      onSession: (connection) => this.onSession(connection),
      onClosed: (info, willReconnect) => this.onClosed(info.code, info.reason, willReconnect),
      onAttemptFailed: (error) => {
        const { code, message } = describeError(error);
        warn('CONNECT_FAILED', `${code}: ${message}`);
      },
      backoff: new Backoff(options.minReconnectDelayMs ?? DEFAULT_MIN_RECONNECT_DELAY_MS, options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS),
      restartExtraDelayMs: options.serverRestartDelayMs ?? DEFAULT_SERVER_RESTART_EXTRA_DELAY_MS,
    });
  }

  /** Creates a new account with this device as its first device, in an empty state directory. */
  static async register(options: TickwireClientOptions, username: string, deviceName: string): Promise<TickwireClient> {
    const device = await registerDevice(options, username, deviceName);
    return new TickwireClient(options, new StateDir(options.stateDir), device);
  }

  /** Adds this device to the account that issued `linkCode`. `username`, when given, is checked and remembered. */
  static async link(options: TickwireClientOptions, linkCode: string, deviceName: string, username?: string): Promise<TickwireClient> {
    const device = await linkDevice(options, linkCode, deviceName, username);
    return new TickwireClient(options, new StateDir(options.stateDir), device);
  }

  /** Opens the device stored in `options.stateDir`. */
  static async open(options: TickwireClientOptions): Promise<TickwireClient> {
    checkServerUrl(options.url);
    const dir = new StateDir(options.stateDir);
    dir.prepare();
    return new TickwireClient(options, dir, dir.readDevice());
  }

  /** True while a session is open. */
  get connected(): boolean {
    return this.connection?.isOpen === true;
  }

  /** Messages not yet acknowledged by the server (send_ok). */
  get outboxSize(): number {
    return this.outbox.size;
  }

  /**
   * Opens the session (or returns the pending first connect). After the session ended for good (4403, 4409,
   * AUTH_FAILED) an explicit call starts again: the spec forbids reconnecting automatically after those closes
   * [DLV-38], not an application acting on its user's request ("use this device here").
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new ClientError('CLOSED', 'the client was closed'));
    if (this.started === undefined || this.reconnector.state === 'stopped') this.started = this.reconnector.start();
    return this.started;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reconnector.stop();
    this.detach();
    this.processed.close();
    this.ticks.close();
  }

  /** Drops the connection without a closing handshake, as a network failure would; the client reconnects. */
  dropConnection(): void {
    this.reconnector.drop();
  }

  private onSession(connection: Connection): void {
    const welcome = connection.welcome!;
    const limits = welcome.limits; // [LIM-6]
    this.connection = connection;
    this.limits = limits;
    this.requests = new PendingRequests(connection, limits.maxPendingRequests);
    this.receiver.attach(connection, limits);
    connection.on('deliver', (frame) => this.receiver.deliver(frame));
    connection.on('queue_empty', () => this.receiver.queueEmpty());
    connection.on('prekeys_low', () => void this.prekeys.topUp(limits)); // [PKY-24]
    connection.on('presence', (f) => void this.emit('presence', { userId: f.userId, status: f.status, ...(f.lastSeenAt === undefined ? {} : { lastSeenAt: f.lastSeenAt }) }));
    connection.on('typing', (f) => void this.emit('typing', { from: f.from, state: f.state }));
    connection.on('error', (f) => {
      if (f.id === undefined) this.emit('warning', { code: f.code, message: `server error: ${f.message}` });
    });
    connection.onInvalid(() => void this.emit('warning', { code: 'INVALID_SERVER_FRAME', message: 'the server sent a frame that fails the spec’s schemas; ignored' }));
    this.sender.attach(this.requests);
    this.startTimers(connection, limits);
    this.emit('connected');
    void this.resubscribe();
    void this.prekeys.topUp(limits).then(() => this.prekeys.rotateIfDue(limits));
  }

  private startTimers(connection: Connection, limits: Limits): void {
    // [KAL-6] a frame at least every idleTimeoutMs / 2; [KAL-7] an unanswered ping means a dead connection.
    const half = Math.max(1000, Math.floor(limits.idleTimeoutMs / 2));
    const requests = this.requests!;
    this.timers.push(
      setInterval(() => {
        void connection.request({ type: 'ping' }, half).catch(() => {
          if (connection.isOpen && requests === this.requests) connection.terminate();
        });
      }, half),
      setInterval(() => void this.prekeys.rotateIfDue(limits), ROTATION_CHECK_INTERVAL_MS),
    );
    for (const timer of this.timers) timer.unref();
  }

  private detach(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.receiver.detach();
    this.sender.detach();
    this.connection = undefined;
    this.requests = undefined;
  }

  private onClosed(code: number, reason: string, willReconnect: boolean): void {
    this.detach();
    this.emit('disconnected', { code, reason, willReconnect });
  }

  private async resubscribe(): Promise<void> {
    if (this.presence.size === 0) return;
    try {
      await this.subscribeNow([...this.presence]);
    } catch (error) {
      const { code, message } = describeError(error);
      this.emit('warning', { code: 'PRESENCE_RESUBSCRIBE_FAILED', message: `${code}: ${message}` });
    }
  }

  async lookup(username: string): Promise<string | undefined> {
    if (typeof username !== 'string' || !/^[a-z0-9_]{3,32}$/.test(username)) return undefined;
    const answer = await this.http.call<UserLookupResponse>('lookupUser', { params: { username }, credentials: this.credentials });
    if (answer.status === 200) return answer.body.userId;
    if (answer.status === 404) return undefined;
    throw httpFailure('lookupUser', answer.status, answer.body);
  }

  async send(to: string, plaintext: string | Uint8Array): Promise<{ messageId: string }> {
    if (this.closed) throw new ClientError('CLOSED', 'the client was closed');
    if (typeof to !== 'string' || !USER_ID.test(to)) throw new ClientError('INVALID_ARGUMENT', 'to must be a userId');
    const bytes = typeof plaintext === 'string' ? utf8(plaintext) : plaintext;
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new ClientError('INVALID_ARGUMENT', 'plaintext must be a non-empty string or Uint8Array');
    // [MSG-21] a fresh random id per message; it reveals nothing of the content [E2E-75].
    const messageId = Buffer.from(secureRandom(MESSAGE_ID_BYTES)).toString('base64url');
    await this.sender.prepare(to, bytes, messageId, Date.now());
    this.sender.pump(); // writes the send frame now when a session is open
    return { messageId };
  }

  tickOf(messageId: string): Tick | undefined {
    return this.ticks.get(messageId);
  }

  async markRead(from: Address, messageIds: string[]): Promise<void> {
    assertAddress(from, 'from');
    if (!Array.isArray(messageIds)) throw new ClientError('INVALID_ARGUMENT', 'messageIds must be an array');
    // [RCP-13] only messageIds this device received from that device.
    const ids = [...new Set(messageIds)].filter((id) => typeof id === 'string' && this.processed.has(messageKey(from, id)));
    if (ids.length === 0) return;
    const requests = this.requireSession();
    for (let i = 0; i < ids.length; i += this.limits.maxReceiptIds) {
      const chunk = ids.slice(i, i + this.limits.maxReceiptIds) as [string, ...string[]];
      const answer = await requests.request({ type: 'receipt', to: { userId: from.userId, deviceId: from.deviceId }, status: 'read', messageIds: chunk });
      if (answer.type === 'error') throw new ClientError('REQUEST_FAILED', `receipt refused with ${answer.code}`, { serverCode: answer.code });
    }
  }

  async subscribePresence(userIds: string[]): Promise<void> {
    if (!Array.isArray(userIds) || userIds.some((u) => typeof u !== 'string' || !USER_ID.test(u))) {
      throw new ClientError('INVALID_ARGUMENT', 'userIds must be userIds');
    }
    for (const userId of userIds) this.presence.add(userId);
    if (this.requests !== undefined) await this.subscribeNow(userIds);
  }

  private async subscribeNow(userIds: string[]): Promise<void> {
    const requests = this.requireSession();
    for (let i = 0; i < userIds.length; i += this.limits.maxPresenceBatch) {
      const chunk = userIds.slice(i, i + this.limits.maxPresenceBatch) as [string, ...string[]];
      const answer = await requests.request({ type: 'subscribe_presence', userIds: chunk });
      if (answer.type === 'error') throw new ClientError('REQUEST_FAILED', `subscribe_presence refused with ${answer.code}`, { serverCode: answer.code });
    }
  }

  typing(to: string, state: 'started' | 'stopped'): void {
    if (typeof to !== 'string' || !USER_ID.test(to) || (state !== 'started' && state !== 'stopped')) {
      throw new ClientError('INVALID_ARGUMENT', 'typing needs a userId and started or stopped');
    }
    // Ephemeral: dropped when there is no session (section 5.3).
    if (this.connection?.isOpen) this.connection.sendRaw({ type: 'typing', to, state });
  }

  async createLinkCode(): Promise<{ code: string; expiresAt: number }> {
    const answer = await this.http.call<{ code: string; expiresAt: number }>('createLinkCode', { credentials: this.credentials });
    if (answer.status !== 201) throw httpFailure('createLinkCode', answer.status, answer.body);
    return { code: answer.body.code, expiresAt: answer.body.expiresAt };
  }

  private requireSession(): PendingRequests {
    if (this.requests === undefined || this.connection?.isOpen !== true) throw new ClientError('NOT_CONNECTED', 'no open session');
    return this.requests;
  }
}
