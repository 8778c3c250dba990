// One WebSocket connection to /v1/ws, as an explicit state machine (section 2.9):
//
//   awaiting-hello ──valid hello──▶ authenticating ──credentials ok──▶ open ──fatal error / replaced / removed──▶ closing
//         │                               │                             │                                          │
//         └──────── any failure ──────────┴──────────▶ closing ◀────────┘                        close handshake ends
//                                                                                                                  ▼
//                                                                                                               closed
//
// One method per state handles a received data message: inAwaitingHello, inAuthenticating (holds it until the hello
// is decided [AUT-19]), inOpen, and nothing at all once closing [ERR-10]. Frames with effects run on one promise
// chain in receive order [TRN-34], which also puts send_ok answers in receive order [TRN-35].
import { randomBytes } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import { ProtocolError } from '../errors.ts';
import type { ServerContext } from '../context.ts';
import type { DeviceAddress } from '../store/store.ts';
import { digestsEqual, hashSecret } from '../credentials.ts';
import { checkClientFrame, describeIssues, limits as limitSpecs, type ClientFrame, type HelloFrame, type Limits, type ServerFrame } from '../../spec/index.ts';
import type { PresenceService, PresenceSession } from '../presence.ts';
import { DeliveryPump } from '../delivery/pump.ts';
import type { DeliveryMemory } from '../delivery/memory.ts';
import { processSend, temporarilyUnavailable } from '../delivery/send.ts';
import { processReceipt } from '../delivery/receipt.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import { claimedSender, type MutantName } from '../mutants.ts';
import { FrameWriter, type WriterThresholds } from './frame-writer.ts';
import { Keepalive } from './keepalive.ts';
import type { SessionRegistry } from './registry.ts';
import type { ClaimingSession, SessionClaims } from './claims.ts';
import type { SessionMetrics } from './session-metrics.ts';
import { hold } from '../auth-throttle.ts';

export type ConnectionState = 'awaiting-hello' | 'authenticating' | 'open' | 'closing' | 'closed';

export interface ConnectionServices {
  ctx: ServerContext;
  registry: SessionRegistry<Connection>;
  /** [DLV-34] Claims of a device's session across the processes of the service. */
  claims: SessionClaims<Connection>;
  /** [DLV-10] The highest seq of a device's queue delivered by any process of the service (cluster/bus.ts). */
  deliveredMark: (device: DeviceAddress) => Promise<number>;
  presence: PresenceService<Connection>;
  memory: DeliveryMemory;
  metrics: SessionMetrics;
  thresholds: WriterThresholds;
  /** Called on every successful hello, e.g. for a device's lastSeenAt [IDN-23]. */
  onAuthenticated?: ((device: DeviceAddress, at: number) => void) | undefined;
  /** Called once when the connection has closed. */
  onClosed: (connection: Connection) => void;
}

/** The requests of section 0.5: frames that get exactly one answer echoing their id [TRN-30]. */
const REQUEST_TYPES = new Set(['hello', 'send', 'receipt', 'subscribe_presence', 'unsubscribe_presence', 'ping']);

/** [SEC-9] A hello naming no device still costs one hash and one comparison. */
/** RFC 6455 7.4.1: the service cannot take the connection now; a client may try again later [AUT-20]. */
const TRY_AGAIN_LATER = 1013;
const DUMMY_DIGEST = hashSecret('tickwire-dummy-secret-for-unknown-devices-000000');

export class Connection implements ClaimingSession, PresenceSession {
  private state: ConnectionState = 'awaiting-hello';
  /** The device the hello named; the authenticated device once the state is open [AUT-8]. */
  address: DeviceAddress = { userId: '', deviceId: 0 };
  sessionId: string | undefined;
  /** [DLV-34] The claim on the device this session holds (or tried to), once numbered by the session bus. */
  claim: number | undefined;
  /** Whether a claim was asked for: it is released when the connection closes. */
  private claimTried = false;
  /** [DPL-3] A shutdown began: frames received from now on are not processed, earlier requests are answered. */
  private draining = false;
  private readonly writer: FrameWriter;
  private pump: DeliveryPump | undefined;
  /** Requests received and not yet answered [TRN-37]. */
  private pending = 0;
  private chain: Promise<void> = Promise.resolve();
  /** send_ok answers in receive order, while the sends themselves overlap [TRN-35]. */
  private sendAnswers: Promise<void> = Promise.resolve();
  private queuedTasks = 0;
  /** Data messages received while the hello is being decided [AUT-19]. */
  private held: Array<{ data: RawData; isBinary: boolean }> = [];
  private helloTimer: NodeJS.Timeout | undefined;
  private readonly keepalive: Keepalive;
  private closeTimer: NodeJS.Timeout | undefined;
  private removedWhileAuthenticating = false;
  private readonly closed: Promise<void>;
  private markClosed!: () => void;
  /** FOR TESTING THE CONFORMANCE SUITE ONLY: the mutant of reference-server/mutants.ts, read once per connection. */
  private readonly mutant: MutantName | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly services: ConnectionServices,
    /** The peer's address, for [SEC-8]. */
    private readonly sourceAddress: string,
  ) {
    const { ctx, metrics, thresholds } = services;
    this.mutant = ctx.config.testMutant;
    this.writer = new FrameWriter(ws, metrics, thresholds, () => this.fail(new ProtocolError('SLOW_CONSUMER', 'too much data waiting to be written')));
    this.keepalive = new Keepalive({
      now: ctx.now,
      idleTimeoutMs: ctx.config.limits.idleTimeoutMs,
      ping: (id) => this.writer.send({ type: 'ping', id }),
      // [KAL-5]
      idle: () => {
        if (this.state === 'open') this.fail(new ProtocolError('IDLE_TIMEOUT', `nothing received for ${ctx.config.limits.idleTimeoutMs} ms`));
      },
    });
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    // [TRN-21] `ws` closes an oversized message itself (maxPayload) with 1009 and no reason; the reason is the code.
    const close = ws.close.bind(ws);
    ws.close = (code?: number, reason?: string | Buffer) => close(code, code === 1009 && reason === undefined ? 'FRAME_TOO_LARGE' : reason);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    // [KAL-5] Control frames count as received frames too.
    ws.on('ping', () => this.keepalive.touch());
    ws.on('pong', () => this.keepalive.touch());
    ws.on('error', (error: Error & { code?: string }) => this.onSocketError(error));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    // [AUT-10] The first data message must arrive within helloTimeoutMs of the 101 response.
    this.helloTimer = setTimeout(() => this.fail(new ProtocolError('HELLO_TIMEOUT', 'no hello received in time')), ctx.config.limits.helloTimeoutMs);
  }

  get currentState(): ConnectionState {
    return this.state;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Resolves once the socket has closed and every effect already started has finished. */
  settled(): Promise<void> {
    return Promise.all([this.closed, this.chain, this.sendAnswers]).then(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Receiving: one method per state

  private onMessage(data: RawData, isBinary: boolean): void {
    this.keepalive.touch();
    switch (this.state) {
      case 'awaiting-hello':
        return this.inAwaitingHello(data, isBinary);
      case 'authenticating':
        return this.inAuthenticating(data, isBinary);
      case 'open':
        return this.inOpen(data, isBinary);
      case 'closing':
      case 'closed':
        // [ERR-10] [DLV-35] Nothing further is processed once a fatal error or a replacement is decided.
        return;
    }
  }

  private inAwaitingHello(data: RawData, isBinary: boolean): void {
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    // [AUT-11] Binary and non-JSON messages follow TRN-23 and TRN-24 first.
    const value = this.parse(data, isBinary);
    if (value === undefined) return;
    const check = checkClientFrame(value);
    if (!check.ok || check.frame.type !== 'hello') {
      this.services.metrics.framesIn.inc({ type: check.ok ? check.frame.type : 'invalid' });
      const id = check.ok ? (check.frame as { id?: string }).id : check.id;
      this.fail(new ProtocolError('UNAUTHENTICATED', 'the first frame must be a valid hello'), id);
      return;
    }
    this.services.metrics.framesIn.inc({ type: 'hello' });
    this.state = 'authenticating';
    this.address = { userId: check.frame.userId, deviceId: check.frame.deviceId };
    const helloId = check.frame.id;
    this.authenticate(check.frame).catch((error: unknown) => {
      // [AUT-20] Storage (or the shared session state) out of reach: try again later, not a fault of the server.
      if (error instanceof StoreUnavailableError && this.state === 'authenticating') {
        this.services.ctx.log.warn('session.hello_unavailable', { message: error.message });
        this.fail(temporarilyUnavailable(this.services.ctx.config.limits), helloId, TRY_AGAIN_LATER);
      } else this.internalError(error);
    });
  }

  private inAuthenticating(data: RawData, isBinary: boolean): void {
    // [AUT-19] Frames sent before welcome are processed after the hello, in order, if the hello succeeds. Reading
    // pauses when too many wait, so that a client cannot pile them up in memory.
    this.held.push({ data, isBinary });
    if (this.held.length >= this.services.ctx.config.limits.maxPendingRequests) this.ws.pause();
  }

  private inOpen(data: RawData, isBinary: boolean): void {
    // [DPL-4] Frames that arrive once the process has begun to leave have no effect; the client resends them to the
    // process it reconnects to [MSG-19].
    if (this.draining) return;
    const value = this.parse(data, isBinary);
    if (value === undefined) return;
    const check = checkClientFrame(value);
    if (!check.ok) {
      this.services.metrics.framesIn.inc({ type: check.reason === 'unknown-type' ? 'unknown' : 'invalid' });
      // [TRN-27] unknown type; [TRN-26] no string type or failing its schema; [TRN-28] id echoed only if valid.
      if (check.reason === 'unknown-type') this.reply(check.id, new ProtocolError('UNKNOWN_FRAME_TYPE', `unknown frame type`), false);
      else this.reply(check.id, new ProtocolError('INVALID_FRAME', describeIssues(check.issues)), false);
      return;
    }
    const frame = check.frame;
    this.services.metrics.framesIn.inc({ type: frame.type });
    const isRequest = REQUEST_TYPES.has(frame.type);
    // [TRN-37] Right after the schema check, before every other check of the request.
    if (isRequest && this.pending >= this.services.ctx.config.limits.maxPendingRequests) {
      this.reply((frame as { id?: string }).id, new ProtocolError('TOO_MANY_PENDING', `more than maxPendingRequests (${this.services.ctx.config.limits.maxPendingRequests}) unanswered requests`), false);
      return;
    }
    this.dispatch(frame);
  }

  private dispatch(frame: ClientFrame): void {
    switch (frame.type) {
      case 'hello':
        // [AUT-17] The session stays as it is.
        return this.reply(frame.id, new ProtocolError('ALREADY_AUTHENTICATED', 'this connection is already authenticated'), false);
      case 'ping':
        // [KAL-1]
        return this.reply(frame.id, { type: 'pong', id: frame.id }, false);
      case 'pong':
        // [KAL-15] No answer; it only counts as a received frame (done in onMessage).
        return;
      case 'send': {
        const receivedAt = this.services.ctx.now();
        this.pending++;
        // The store stages operations in call order, so issuing each send in turn is enough for [TRN-34]; waiting for
        // durability overlaps with the next frames, so one connection's sends share group commits. The answers
        // still leave in receive order [TRN-35] through their own chain.
        // mutant: accept-frame-for-other-device — a `from` member of the frame names the sender.
        const sender = this.mutant === 'accept-frame-for-other-device' ? (claimedSender(frame) ?? this.address) : this.address;
        return this.enqueue(async () => {
          const answer = processSend(frame, sender, this.requestDeps()).catch((error: unknown) => this.storeFailure(error));
          const answered = this.sendAnswers.then(async () => {
            const result = await answer;
            this.observeSend(result, receivedAt);
            this.reply(frame.id, result, true);
          });
          this.sendAnswers = answered.catch((error: unknown) => this.internalError(error));
        });
      }
      case 'receipt': {
        // mutant: accept-frame-for-other-device — a `from` member of the frame names the sender.
        const sender = this.mutant === 'accept-frame-for-other-device' ? (claimedSender(frame) ?? this.address) : this.address;
        return this.request(frame.id, () => processReceipt(frame, sender, this.requestDeps()));
      }
      case 'subscribe_presence':
        this.pending++;
        return this.enqueue(() => this.services.presence.subscribe(this, frame, (answer) => this.reply(frame.id, answer, true)));
      case 'unsubscribe_presence':
        return this.request(frame.id, async () => this.services.presence.unsubscribe(this, frame));
      case 'ack':
        return this.enqueue(async () => {
          // [TRN-31] No success answer to an ack; one error when it fails, now or when the removal cannot be made
          // durable (the items are then in flight again and will be redelivered).
          const error = this.pump!.acknowledge(frame, (failure) => {
            try {
              if (this.state === 'open') this.reply(frame.id, this.storeFailure(failure), false);
            } catch (fault) {
              this.internalError(fault);
            }
          });
          if (error) this.reply(frame.id, error, false);
        });
      case 'typing':
        return this.enqueue(async () => {
          const error = await this.services.presence.typing(this, frame);
          if (error) this.reply(frame.id, error, false);
        });
    }
  }

  /** Runs a request on the chain and sends its one answer [TRN-30]. */
  private request(id: string, run: () => Promise<ServerFrame | ProtocolError>, observe?: (answer: ServerFrame | ProtocolError) => void): void {
    this.pending++;
    this.enqueue(async () => {
      const answer = await run().catch((error: unknown) => this.storeFailure(error));
      observe?.(answer);
      this.reply(id, answer, true);
    });
  }

  /** [TRN-34] Effects in receive order: each task starts when the previous one has finished. */
  private enqueue(task: () => Promise<void>): void {
    this.queuedTasks++;
    if (this.queuedTasks > 2 * this.services.ctx.config.limits.maxPendingRequests) this.ws.pause();
    this.chain = this.chain
      .then(() => (this.state === 'open' ? task() : undefined))
      .catch((error: unknown) => this.internalError(error))
      .finally(() => {
        this.queuedTasks--;
        if (this.ws.isPaused && this.queuedTasks <= this.services.ctx.config.limits.maxPendingRequests && this.state === 'open') this.ws.resume();
      });
  }

  private requestDeps() {
    const { ctx } = this.services;
    return { store: ctx.store, limits: ctx.config.limits, now: ctx.now };
  }

  private storeFailure(error: unknown): ProtocolError {
    // [MSG-18] Storage unavailable is non-fatal; anything else is a fault of the server.
    if (error instanceof StoreUnavailableError) return temporarilyUnavailable(this.services.ctx.config.limits);
    throw error;
  }

  private observeSend(answer: ServerFrame | ProtocolError, receivedAt: number): void {
    if (answer instanceof ProtocolError || answer.type !== 'send_ok') return;
    this.services.metrics.messagesAccepted.inc({ duplicate: String(answer.duplicate) });
    if (!answer.duplicate) this.services.metrics.sendLatency.observe(Math.max(0, this.services.ctx.now() - receivedAt) / 1000);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Authentication (section 2.9)

  private async authenticate(hello: HelloFrame): Promise<void> {
    const { ctx, claims } = this.services;
    const address = this.address;
    const device = await ctx.store.getDevice(address);
    // [AUT-2] [AUT-3] SHA-256 of the secret against the stored digest, without an early exit; [SEC-9] a dummy
    // digest when the device does not exist.
    const matches = digestsEqual(hashSecret(hello.secret), device?.secretHash ?? DUMMY_DIGEST);
    if (this.state !== 'authenticating') return;
    if (!device || !matches || this.removedWhileAuthenticating) {
      // [SEC-8] An address that keeps failing waits longer for each answer; [AUT-12] the same error whichever part
      // was wrong.
      await hold(await ctx.authThrottle.failed(this.sourceAddress));
      if (this.state !== 'authenticating') return;
      this.fail(new ProtocolError('AUTH_FAILED', 'wrong credentials'), hello.id);
      return;
    }
    // [DLV-34] The old session of the device, on this process or on another of the service [DPL-2], gets
    // SESSION_REPLACED and its close before this welcome; if a newer hello of the device won meanwhile, this one is
    // the session replaced.
    this.claimTried = true;
    const won = await claims.claim(this);
    if (this.state !== 'authenticating') return;
    if (!won) {
      this.replaced();
      return;
    }
    const limits = ctx.config.limits;
    // B (section 4.8) is the queue when welcome is sent: its last seq is read right before welcome.
    const [backlogLast, prekeys, deliveredMark] = await Promise.all([
      ctx.store.lastSeq(address),
      limits.prekeyLowWater > 0 ? ctx.store.countOneTimePreKeys(address) : Promise.resolve(Infinity),
      this.services.deliveredMark(address),
    ]);
    // [DLV-10] What other processes delivered of this queue counts as delivered before.
    this.services.memory.learn(address, deliveredMark);
    if (this.state !== 'authenticating') return;
    if (this.removedWhileAuthenticating) {
      this.fail(new ProtocolError('AUTH_FAILED', 'wrong credentials'), hello.id);
      return;
    }
    // [AUT-15] 128 random bits, base64url: never the id of another session.
    this.sessionId = randomBytes(16).toString('base64url');
    const advertised = advertisedLimits(limits, hello.receiveMax);
    this.pump = new DeliveryPump({
      device: address,
      window: advertised.window,
      limits,
      store: ctx.store,
      writer: this.writer,
      memory: this.services.memory,
      metrics: this.services.metrics,
      log: ctx.log,
      now: ctx.now,
      onFatal: (error) => this.internalError(error),
      mutant: this.mutant,
    });
    this.state = 'open';
    const now = ctx.now();
    // [AUT-13] [AUT-14] [LIM-1]
    this.writer.send({ type: 'welcome', id: hello.id, sessionId: this.sessionId, userId: address.userId, deviceId: address.deviceId, serverTime: now, limits: advertised });
    this.services.onAuthenticated?.(address, now);
    ctx.log.info('session.open', { sessionId: this.sessionId, userId: address.userId, deviceId: address.deviceId, window: advertised.window, backlogLast });
    // [PKY-22] Fewer one-time prekeys than prekeyLowWater when the session starts.
    if (prekeys < limits.prekeyLowWater) this.writer.send({ type: 'prekeys_low', remaining: prekeys, lowWater: limits.prekeyLowWater });
    this.pump.start(backlogLast);
    this.keepalive.start();
    const held = this.held;
    this.held = [];
    if (this.ws.isPaused) this.ws.resume();
    for (const message of held) if (this.state === 'open') this.inOpen(message.data, message.isBinary);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Pushes from elsewhere in the server

  /** Items may be deliverable (store 'enqueued' event). */
  wake(lastSeq?: number): void {
    if (this.state === 'open') this.pump?.wake(lastSeq);
  }

  pushEphemeral(frame: ServerFrame): void {
    if (this.state === 'open') this.writer.sendEphemeral(frame);
  }

  /** [PKY-20] A bundle fetch left the device below prekeyLowWater. [PKY-23] Nothing is kept without a session. */
  prekeysLow(remaining: number): void {
    const lowWater = this.services.ctx.config.limits.prekeyLowWater;
    if (this.state === 'open' && lowWater > 0 && remaining < lowWater) this.writer.send({ type: 'prekeys_low', remaining, lowWater });
  }

  /** Whether this connection is (or is becoming) a session of `device`. */
  concerns(device: DeviceAddress): boolean {
    return this.address.userId === device.userId && this.address.deviceId === device.deviceId;
  }

  /** [IDN-29] The device was deleted. */
  deviceRemoved(): void {
    if (this.state === 'authenticating') this.removedWhileAuthenticating = true;
    else if (this.state === 'open') this.fail(new ProtocolError('DEVICE_REMOVED', 'this device was deleted'));
  }

  /** [DLV-34] [DLV-35] A newer session of the same device authenticated. */
  replaced(): void {
    this.fail(new ProtocolError('SESSION_REPLACED', 'a newer session of this device authenticated'));
  }

  /**
   * [KAL-13] [DPL-3] A deliberate shutdown: frames received from now on are not processed and no further item is
   * delivered; the requests already received are processed and answered (a send whose effect is or will be durable
   * gets its send_ok), then the session ends with SERVER_RESTART and close 1012. `drainMs` bounds the wait.
   */
  shutdown(drainMs = 0): void {
    if (this.state !== 'open' || drainMs <= 0) {
      this.fail(new ProtocolError('SERVER_RESTART', 'the server is shutting down'));
      return;
    }
    if (this.draining) return;
    this.draining = true;
    this.pump?.stop();
    const restart = () => this.fail(new ProtocolError('SERVER_RESTART', 'the server is shutting down'));
    const timer = setTimeout(restart, drainMs);
    // The chain may still queue send answers; wait for it first, then for the answers.
    void this.chain.then(() => this.sendAnswers).then(() => {
      clearTimeout(timer);
      restart();
    });
  }

  terminate(): void {
    if (this.state !== 'closed') this.ws.terminate();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Answers, errors and closing

  /** Sends an answer or a non-fatal error (echoing `id` when given [ERR-2]); `answered` settles a pending request. */
  private reply(id: string | undefined, answer: ServerFrame | ProtocolError, answered: boolean): void {
    if (answered) this.pending--;
    if (answer instanceof ProtocolError) {
      if (answer.fatal) {
        this.fail(answer, id);
        return;
      }
      this.services.metrics.errors.inc({ code: answer.code });
      this.writer.send({ type: 'error', ...(id === undefined ? {} : { id }), ...answer.toBody() });
      return;
    }
    this.writer.send(answer);
  }

  /**
   * [ERR-9] [ERR-10] A fatal error: the error frame, then the close with the registry's close code and the code as
   * reason; nothing is processed or sent after it. The session leaves the registry when the socket has closed.
   */
  fail(error: ProtocolError, id?: string, closeCode?: number): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    this.stopTimers();
    this.pump?.stop();
    this.held = [];
    if (wasOpen) this.services.presence.dropSession(this);
    this.services.metrics.errors.inc({ code: error.code });
    this.writer.sendFinal({ type: 'error', ...(id === undefined ? {} : { id }), ...error.toBody() });
    this.services.ctx.log.info('session.fatal', { sessionId: this.sessionId, userId: this.address.userId, deviceId: this.address.deviceId, code: error.code });
    this.ws.close(closeCode ?? error.closeCode ?? 1011, error.code);
    // A peer that never completes the close handshake (a slow consumer, say) is cut off after the grace period.
    this.closeTimer = setTimeout(() => this.ws.terminate(), this.services.ctx.config.shutdownGraceMs);
  }

  private internalError(error: unknown): void {
    this.services.ctx.log.error('session.internal_error', { sessionId: this.sessionId, error });
    this.fail(new ProtocolError('INTERNAL_ERROR', 'internal server error'));
  }

  /** [TRN-23] binary, [TRN-24] not a JSON object: fatal. Resolves the parsed object, or undefined after failing. */
  private parse(data: RawData, isBinary: boolean): unknown {
    if (isBinary) {
      this.services.metrics.framesIn.inc({ type: 'binary' });
      this.fail(new ProtocolError('BINARY_NOT_SUPPORTED', 'binary messages are not supported'));
      return undefined;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const text = bytes.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.services.metrics.framesIn.inc({ type: 'malformed' });
      this.fail(new ProtocolError('MALFORMED_FRAME', 'a text message must be one JSON object'));
      return undefined;
    }
    return value;
  }

  private onSocketError(error: Error & { code?: string }): void {
    // `ws` reports protocol violations (1002, 1007 [TRN-25]) and oversized messages (1009 [TRN-21]) here and closes
    // the connection itself; [TRN-22] the error frame of FRAME_TOO_LARGE is left out.
    if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.services.metrics.errors.inc({ code: 'FRAME_TOO_LARGE' });
    this.services.ctx.log.debug('session.socket_error', { sessionId: this.sessionId, code: error.code });
    if (this.state !== 'closed') {
      this.state = 'closing';
      this.stopTimers();
      this.pump?.stop();
      this.writer.seal();
    }
  }

  private onClose(code: number, reason: string): void {
    const wasOpen = this.state === 'open' || this.sessionId !== undefined;
    this.state = 'closed';
    this.stopTimers();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.pump?.stop();
    this.writer.seal();
    this.held = [];
    if (wasOpen) {
      // mutant: drop-queue-on-disconnect — the device's whole queue goes with its session.
      if (this.mutant === 'drop-queue-on-disconnect') {
        const { store, config, now } = this.services.ctx;
        const device = this.address;
        store
          .readQueue(device, 0, config.limits.maxQueueItems)
          .then((items) => store.acknowledge(device, items.map((item) => item.seq), now(), config.limits.maxReceiptIds))
          .catch(() => undefined);
      }
      this.services.presence.dropSession(this);
      this.services.ctx.log.info('session.closed', { sessionId: this.sessionId, userId: this.address.userId, deviceId: this.address.deviceId, code, reason });
    }
    // [PRS-2] The claim goes with the connection: the user may go offline.
    if (this.claimTried) this.services.claims.release(this);
    this.services.onClosed(this);
    this.markClosed();
  }

  private stopTimers(): void {
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    this.keepalive.stop();
  }
}

/** The complete `limits` of welcome [LIM-1]: every advertised limit, with window = min(window, receiveMax) [AUT-14]. */
export function advertisedLimits(values: Record<string, number>, receiveMax: number | undefined): Limits {
  const out: Record<string, number> = {};
  for (const spec of limitSpecs) if (spec.advertised) out[spec.name] = values[spec.name]!;
  if (receiveMax !== undefined) out['window'] = Math.min(out['window']!, receiveMax);
  return out as unknown as Limits;
}
