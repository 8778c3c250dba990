// Sending (PROTOCOL.md 4.2, 4.3): `prepare` encrypts one envelope per device of the recipient user [MSG-1]
// [E2E-76], fetching and checking bundles for devices without a session, and puts the message in the outbox; the
// pump then submits outbox entries on the current session, in creation order, within maxPendingRequests [TRN-36].
// - send_ok: the tick becomes 'sent' and the entry leaves the outbox.
// - STALE_DEVICES: fetch bundles for `missing`, forget `extra`, encrypt for the new devices and resend with the
//   same messageId [MSG-22] [E2E-78]; unchanged devices keep their envelopes [MSG-20].
// - TEMPORARILY_UNAVAILABLE, TOO_MANY_PENDING, RATE_LIMITED, QUEUE_FULL, a timeout or unknown code: resend later with
//   the same messageId [MSG-19] [ERR-7] [ERR-12]. A closed connection: resend after the next welcome.
// - UNKNOWN_USER, ENVELOPE_TOO_LARGE, INVALID_FRAME: the message can never go; it leaves the outbox with a warning.
import type { DeviceEnvelope, Limits, StaleDevicesDetails } from '../spec/index.ts';
import type { ReceiptEvent } from './client-api.ts';
import { MAX_STALE_ROUNDS, SEND_RETRY_DELAY_MS } from './constants.ts';
import { ClientError, describeError } from './errors.ts';
import type { Outbox, OutboxEntry } from './outbox.ts';
import type { PendingRequests } from './requests.ts';
import type { SessionManager } from './session-manager.ts';
import { frameBytes } from './session-limits.ts';
import type { TickStore } from './ticks.ts';
import type { Connection } from './wire/connection.ts';

/** Runs async tasks one at a time (encryption and session setup must not interleave). */
export class SerialLock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

const PERMANENT = new Set(['UNKNOWN_USER', 'ENVELOPE_TOO_LARGE', 'INVALID_FRAME']);

export interface SenderDeps {
  self: { userId: string; deviceId: number };
  sessions: SessionManager;
  outbox: Outbox;
  ticks: TickStore;
  lock: SerialLock;
  limits(): Limits;
  emitReceipt(receipt: ReceiptEvent): void;
  warn(code: string, message: string): void;
}

export class Sender {
  private requests: PendingRequests | undefined;
  /** messageId → the connection it is being submitted on. */
  private readonly inFlight = new Map<string, Connection>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly deps: SenderDeps) {}

  attach(requests: PendingRequests): void {
    this.requests = requests;
    this.inFlight.clear();
    this.pump();
  }

  detach(): void {
    this.requests?.release();
    this.requests = undefined;
    this.inFlight.clear();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Encrypts `plaintext` for every device of `to` and stores it in the outbox; throws before storing anything. */
  prepare(to: string, plaintext: Uint8Array, messageId: string, now: number): Promise<OutboxEntry> {
    return this.deps.lock.run(async () => {
      const { sessions } = this.deps;
      const devices = (await sessions.ensureSessions(to)).filter((d) => !(to === this.deps.self.userId && d === this.deps.self.deviceId));
      // [MSG-8] nothing to send to (own user without other devices, or a user whose bundle listed no device).
      if (devices.length === 0) throw new ClientError('NO_RECIPIENT_DEVICES', `${to} has no device to send to`);
      const envelopes = devices.map((deviceId) => this.envelopeFor(to, deviceId, plaintext));
      this.checkSize(to, messageId, envelopes);
      this.deps.ticks.advance(messageId, 'pending'); // before the outbox, so a send_ok after a crash finds the tick
      return this.deps.outbox.add({ messageId, to, plaintext: Buffer.from(plaintext).toString('base64'), envelopes, createdAt: now });
    });
  }

  private envelopeFor(userId: string, deviceId: number, plaintext: Uint8Array): DeviceEnvelope {
    const envelope = this.deps.sessions.encrypt({ userId, deviceId }, plaintext);
    return { deviceId, type: envelope.type, body: Buffer.from(envelope.body).toString('base64') };
  }

  /** [E2E-77] every envelope within maxEnvelopeBytes; [TRN-20] the whole send within maxFrameBytes. */
  private checkSize(to: string, messageId: string, envelopes: DeviceEnvelope[]): void {
    const limits = this.deps.limits();
    for (const e of envelopes) {
      if (Buffer.byteLength(e.body, 'base64') > limits.maxEnvelopeBytes) throw new ClientError('MESSAGE_TOO_LARGE', `envelope exceeds maxEnvelopeBytes ${limits.maxEnvelopeBytes}`);
    }
    const frame = { type: 'send', id: 'x'.repeat(24), messageId, to, envelopes };
    if (frameBytes(frame) > limits.maxFrameBytes) throw new ClientError('MESSAGE_TOO_LARGE', `send frame exceeds maxFrameBytes ${limits.maxFrameBytes}`);
  }

  /** Submits every outbox entry that is not already in flight on the current session. */
  pump(): void {
    if (this.requests === undefined) return;
    for (const entry of this.deps.outbox.list()) {
      if (this.inFlight.get(entry.messageId) === this.requests.connection) continue;
      void this.submit(entry.messageId);
    }
  }

  private retryLater(delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.pump();
    }, delayMs);
    this.timers.add(timer);
  }

  private async submit(messageId: string): Promise<void> {
    const requests = this.requests;
    const entry = this.deps.outbox.get(messageId);
    if (requests === undefined || entry === undefined) return;
    const connection = requests.connection;
    this.inFlight.set(messageId, connection);
    const done = (): void => {
      if (this.inFlight.get(messageId) === connection) this.inFlight.delete(messageId);
    };
    let answer;
    try {
      answer = await requests.request({ type: 'send', messageId, to: entry.to, envelopes: entry.envelopes as [DeviceEnvelope, ...DeviceEnvelope[]] }, true);
    } catch {
      // [TRN-33] closed or timed out: the outcome is unknown; resend with the same messageId [MSG-19].
      done();
      if (connection.isOpen && this.requests === requests) this.retryLater(SEND_RETRY_DELAY_MS);
      return;
    }
    done();
    if (answer.type === 'send_ok') {
      // An answer is the truth whichever session is current now.
      this.deps.outbox.remove(messageId);
      if (this.deps.ticks.advance(messageId, 'sent')) this.deps.emitReceipt({ messageId, status: 'sent' });
      return;
    }
    if (answer.type !== 'error') return;
    if (answer.code === 'STALE_DEVICES') {
      await this.restale(entry, answer.details as StaleDevicesDetails | undefined);
      if (this.requests === requests) void this.submit(messageId);
      return;
    }
    if (PERMANENT.has(answer.code)) {
      this.deps.outbox.remove(messageId);
      this.deps.warn('SEND_REFUSED', `message ${messageId} to ${entry.to} refused with ${answer.code}; it will not be sent`);
      return;
    }
    if (this.requests === requests) this.retryLater(Math.max(answer.retryAfterMs ?? 0, SEND_RETRY_DELAY_MS));
  }

  /** [MSG-22] Brings the entry's envelopes in line with the device set the server reported. */
  private restale(entry: OutboxEntry, details: StaleDevicesDetails | undefined): Promise<void> {
    return this.deps.lock.run(async () => {
      const { sessions, outbox } = this.deps;
      const current = outbox.get(entry.messageId);
      if (current === undefined) return;
      const give = (why: string): void => {
        outbox.remove(current.messageId);
        this.deps.warn('SEND_FAILED', `message ${current.messageId} to ${current.to} given up: ${why}`);
      };
      if (details === undefined || !Array.isArray(details.missing) || !Array.isArray(details.extra)) return give('STALE_DEVICES without details');
      if (current.staleRounds >= MAX_STALE_ROUNDS) return give(`device set still stale after ${MAX_STALE_ROUNDS} rounds`);
      const plaintext = new Uint8Array(Buffer.from(current.plaintext, 'base64'));
      const extra = new Set(details.extra);
      for (const deviceId of extra) sessions.forget({ userId: current.to, deviceId }); // [E2E-78]
      const envelopes = current.envelopes.filter((e) => !extra.has(e.deviceId));
      try {
        for (const deviceId of details.missing) {
          await sessions.establishOne(current.to, deviceId);
          envelopes.push(this.envelopeFor(current.to, deviceId, plaintext));
        }
      } catch (error) {
        // [E2E-69] a rejected bundle stops the whole message; anything else (rate limit, network) retries later.
        const { code, message } = describeError(error);
        if (code === 'BAD_BUNDLE' || code === 'UNTRUSTED_IDENTITY') return give(`${code}: ${message}`);
        this.deps.warn('STALE_RECOVERY_DELAYED', `${code}: ${message}`);
        await new Promise((resolve) => setTimeout(resolve, SEND_RETRY_DELAY_MS));
        return;
      }
      envelopes.sort((a, b) => a.deviceId - b.deviceId);
      if (envelopes.length === 0) return give('the recipient has no devices left');
      outbox.update({ ...current, envelopes, staleRounds: current.staleRounds + 1 });
    });
  }
}
