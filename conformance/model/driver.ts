// The real side of the model: a scenario's users and devices on the server under test, driven through the case
// context (fresh users, sessions through the wire client), with every client-side event written to the history. A
// device either acknowledges what it receives at once or withholds its acknowledgements; every acknowledgement is
// followed by a `ping`, whose `pong` proves the server applied it (TRN-34). Restarts crash the server
// (ctx.restartServer()). The final drain connects every device, acknowledging everything, and waits until nothing
// the checker expects is outstanding.
import type { AckFrame, DeliverFrame, DeviceEnvelope } from '../../spec/index.ts';
import { CaseFailure, show } from '../case.ts';
import type { CaseContext, Device, User } from '../context.ts';
import { as, must } from '../expect.ts';
import type { Session } from '../session.ts';
import { outstanding } from './checker.ts';
import { Recorder, type SentEnvelope } from './history.ts';

/** Labels of the scenario's users, in order: user `a` has devices `a1`, `a2`. */
export const USER_LABELS = ['a', 'b', 'c'] as const;

/**
 * Time the final drain waits for what is outstanding: five times the second RCP-3 asks delivered receipts to take,
 * so that a server slower than that fails the SHOULD but is not called lossy. A drain that gets everything ends at once.
 */
export const DRAIN_TIMEOUT_MS = 5000;
/** The same while shrinking a failure; a shrunk scenario is confirmed with DRAIN_TIMEOUT_MS before it is reported. */
export const SHRINK_DRAIN_TIMEOUT_MS = 2000;
/** Time the final drain keeps listening once nothing is outstanding, to see late duplicates. */
const SETTLE_MS = 50;
/** Time a client-side close gets before the connection is dropped. */
const CLOSE_TIMEOUT_MS = 1000;

export function deviceLabel(user: number, device: number): string {
  return `${USER_LABELS[user] ?? `u${user}`}${device + 1}`;
}

interface SentMessage {
  messageId: string;
  to: User;
  envelopes: SentEnvelope[];
}

interface DeviceState {
  label: string;
  device: Device;
  session: Session | undefined;
  /** `acking`: acknowledges every item on arrival; `withholding`: only when told to (Ack). */
  mode: 'acking' | 'withholding';
  /** Seqs delivered on the current session that this client has not acknowledged yet, in arrival order. */
  unacked: number[];
  /** The highest seq delivered on the current session (0: none). */
  highest: number;
  /** Every message this device tried to send, by messageId (resends repeat one of them). */
  messages: Map<string, SentMessage>;
  sent: number;
}

export class Driver {
  readonly recorder: Recorder;
  /** The commands run so far, as the script lines of a report. */
  readonly script: string[] = [];
  private readonly states = new Map<string, DeviceState>();
  private readonly users = new Map<string, User>();
  /** Pings sent after acks and not yet answered, as `session|id`. */
  private readonly pings = new Set<string>();
  /** Sessions that received their queue_empty (DLV-25). */
  private readonly caughtUp = new Set<string>();

  private constructor(
    readonly ctx: CaseContext,
    private readonly onRestart: (ms: number) => void,
  ) {
    this.recorder = new Recorder(() => ctx.transcript.now());
  }

  /** Registers one fresh user per entry of `topology` (its number of devices), labelled a, b, c. */
  static async create(ctx: CaseContext, topology: readonly number[], onRestart: (ms: number) => void = () => {}): Promise<Driver> {
    const driver = new Driver(ctx, onRestart);
    for (const [u, devices] of topology.entries()) {
      const user = await ctx.user({ devices });
      // Transcript labels follow the script (a, a1) rather than the context's own (u1, u1/1).
      user.label = USER_LABELS[u] ?? user.label;
      driver.users.set(user.label, user);
      for (const [d, device] of user.devices.entries()) {
        device.label = deviceLabel(u, d);
        driver.recorder.devices.push({ label: device.label, user: user.label, userId: device.userId, deviceId: device.deviceId });
        driver.states.set(device.label, { label: device.label, device, session: undefined, mode: 'acking', unacked: [], highest: 0, messages: new Map(), sent: 0 });
      }
    }
    return driver;
  }

  private state(label: string): DeviceState {
    const state = this.states.get(label);
    if (!state) throw new RangeError(`the scenario has no device ${label}`);
    return state;
  }

  private session(label: string): Session {
    const session = this.state(label).session;
    if (!session) throw new RangeError(`model bug: ${label} is not connected`);
    return session;
  }

  /** Commands run (the script also has the start and the final drain). */
  steps = 0;

  /** Runs one command of the script: notes it, runs it, then fails on any protocol violation seen meanwhile. */
  async step(text: string, action: () => Promise<void>): Promise<void> {
    this.steps++;
    this.script.push(text);
    this.ctx.note(`model: ${text}`);
    await action();
    this.ctx.transcript.throwIfViolated();
  }

  /** The start of every scenario: each device connects, acknowledging on arrival. */
  async start(): Promise<void> {
    this.script.push('every device connects, acknowledging what it receives');
    await Promise.all([...this.states.keys()].map((label) => this.connect(label)));
  }

  /** Opens a session for `label`; with a session already open this is a replacement (DLV-34). */
  async connect(label: string): Promise<void> {
    const state = this.state(label);
    const session = await this.ctx.open({ label });
    const where = { device: label, session: session.label };
    state.session = session;
    state.unacked = [];
    state.highest = 0;
    session.conn.on('deliver', (frame) => this.onDeliver(state, session, frame));
    session.conn.on('queue_empty', (frame) => {
      this.caughtUp.add(session.label);
      this.recorder.record({ kind: 'queue_empty', ...where, lastSeq: frame.lastSeq });
    });
    session.conn.on('pong', (frame) => {
      this.pings.delete(`${session.label}|${frame.id}`);
      this.recorder.record({ kind: 'pong', ...where, id: frame.id });
    });
    session.conn.on('send_ok', (frame) => this.recorder.record({ kind: 'send_ok', ...where, id: frame.id, messageId: frame.messageId, serverTime: frame.serverTime, duplicate: frame.duplicate }));
    session.conn.on('error', (frame) => {
      // Our acks name only seqs delivered on the session (DLV-11): the server has no reason to refuse one.
      if (frame.code === 'INVALID_ACK' || (frame.code === 'INVALID_FRAME' && frame.id === undefined)) {
        this.ctx.transcript.violation(new CaseFailure('DLV-11', 'acks of seqs delivered on the session applied without error', show(frame), session.label));
      }
    });
    void session.conn.closed.then((info) => {
      for (const key of this.pings) if (key.startsWith(`${session.label}|`)) this.pings.delete(key);
      this.recorder.record({ kind: 'closed', ...where, code: info.code });
    });
    this.recorder.record({ kind: 'connect', ...where });
    const answer = await session.hello(state.device);
    must.frameType(answer, 'welcome', 'AUT-13', `hello of ${label}`);
  }

  private onDeliver(state: DeviceState, session: Session, frame: DeliverFrame): void {
    for (const item of frame.items) this.recorder.record({ kind: 'deliver', device: state.label, session: session.label, item });
    if (state.session !== session) return; // a replaced session: the server no longer listens to it (DLV-35)
    for (const item of frame.items) {
      if (!state.unacked.includes(item.seq)) state.unacked.push(item.seq);
      state.highest = Math.max(state.highest, item.seq);
    }
    if (state.mode === 'acking') void this.ackSeqs(state, [...state.unacked], false);
  }

  /** Acknowledges `seqs` (in frames of at most maxAckBatch), each followed by a ping; waits for the pongs if `confirm`. */
  private async ackSeqs(state: DeviceState, seqs: number[], confirm: boolean): Promise<void> {
    const session = state.session;
    if (!session || seqs.length === 0) return;
    const batch = Math.max(1, session.limits.maxAckBatch);
    const sent: Array<Promise<void>> = [];
    for (let i = 0; i < seqs.length; i += batch) sent.push(this.ack(state, session, { seqs: seqs.slice(i, i + batch) as [number, ...number[]] }, confirm));
    await Promise.all(sent);
  }

  private async ack(state: DeviceState, session: Session, frame: Pick<AckFrame, 'upTo' | 'seqs'>, confirm: boolean): Promise<void> {
    const covered = (seq: number) => (frame.upTo !== undefined && seq <= frame.upTo) || (frame.seqs?.includes(seq) ?? false);
    state.unacked = state.unacked.filter((seq) => !covered(seq));
    const ping = session.conn.newId('p');
    this.recorder.record({ kind: 'ack', device: state.label, session: session.label, ...frame, ping });
    session.ack(frame);
    this.pings.add(`${session.label}|${ping}`);
    if (!confirm) {
      session.conn.request({ type: 'ping', id: ping }, this.ctx.remaining()).catch(() => {}); // the session may close first
      return;
    }
    as(await session.request({ type: 'ping', id: ping }, 'KAL-1'), 'pong', 'KAL-1', `ping after the ack of ${state.label}`);
  }

  async disconnect(label: string, how: 'close' | 'drop'): Promise<void> {
    const state = this.state(label);
    const session = this.session(label);
    state.session = undefined;
    if (how === 'drop') session.terminate();
    else await Promise.race([session.close(), new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS))]);
  }

  /** Sends `count` new messages from `from` to every device of user `to` (but `from`), pipelined on one connection. */
  async send(from: string, to: string, count: number): Promise<string[]> {
    const state = this.state(from);
    const session = this.session(from);
    const user = this.users.get(to);
    if (!user) throw new RangeError(`the scenario has no user ${to}`);
    const recipients = user.devices.filter((d) => d !== state.device);
    const messages: SentMessage[] = [];
    for (let i = 0; i < count; i++) {
      const messageId = `msg-${from}-${String(++state.sent).padStart(3, '0')}`;
      // Opaque bodies (the server cannot read them); their text names the message and the device, for transcripts.
      const envelopes = recipients.map((d) => ({ device: d.label, type: 'ratchet' as const, body: Buffer.from(`${messageId} for ${d.label}`).toString('base64') }));
      const message = { messageId, to: user, envelopes };
      state.messages.set(messageId, message);
      messages.push(message);
    }
    const answers = messages.map((m) => this.submit(state, session, m, false));
    for (const [i, answer] of (await Promise.all(answers)).entries()) {
      if (answer === undefined) continue;
      const messageId = messages[i]!.messageId;
      must.equal({ messageId: answer.messageId, duplicate: answer.duplicate }, { messageId, duplicate: false }, 'MSG-12', `send_ok of ${messageId}`);
    }
    return messages.map((m) => m.messageId);
  }

  /** Sends message `messageId` of `from` again, with the same envelopes (MSG-14 decides the answer; the checker judges it). */
  async resend(from: string, messageId: string): Promise<void> {
    const state = this.state(from);
    const message = state.messages.get(messageId);
    if (!message) throw new RangeError(`model bug: ${from} never sent ${messageId}`);
    await this.submit(state, this.session(from), message, true);
  }

  /** One `send` request; resolves with its send_ok, or undefined after TEMPORARILY_UNAVAILABLE (MSG-18). */
  private async submit(state: DeviceState, session: Session, message: SentMessage, resend: boolean) {
    const id = session.conn.newId('s');
    const envelopes = message.envelopes.map((e) => ({ deviceId: this.state(e.device).device.deviceId, type: e.type, body: e.body }));
    this.recorder.record({ kind: 'send', device: state.label, session: session.label, id, messageId: message.messageId, to: message.to.label, envelopes: message.envelopes, resend });
    const answer = await session.request({ type: 'send', id, messageId: message.messageId, to: message.to.userId, envelopes: envelopes as [DeviceEnvelope, ...DeviceEnvelope[]] }, 'MSG-12');
    if (answer.type === 'send_ok') return answer;
    if (answer.type === 'error' && answer.code === 'TEMPORARILY_UNAVAILABLE') {
      this.recorder.record({ kind: 'send_failed', device: state.label, session: session.label, id, messageId: message.messageId, reason: answer.code });
      return undefined;
    }
    return must.fail(resend ? 'MSG-14' : 'MSG-12', `send_ok for ${message.messageId} (a valid send to every device of ${message.to.label})`, answer, `${resend ? 'resend' : 'send'} by ${state.label}`);
  }

  /** Acknowledges what the device received on its current session: everything (ack upTo) or every other item (ack seqs). */
  async acknowledge(label: string, which: 'all' | 'some'): Promise<void> {
    const state = this.state(label);
    const session = this.session(label);
    if (which === 'all') {
      if (state.highest > 0) await this.ack(state, session, { upTo: state.highest }, true);
      return;
    }
    await this.ackSeqs(state, state.unacked.filter((_, i) => i % 2 === 0), true);
  }

  withhold(label: string): void {
    this.state(label).mode = 'withholding';
  }

  /** Acknowledges on arrival again, starting with what it holds unacknowledged. */
  async autoAck(label: string): Promise<void> {
    const state = this.state(label);
    state.mode = 'acking';
    await this.ackSeqs(state, [...state.unacked], true);
  }

  /** Crashes and restarts the server; every session is gone afterwards. */
  async restart(): Promise<void> {
    this.recorder.record({ kind: 'restart', how: 'crash' });
    const before = performance.now();
    await this.ctx.restartServer();
    this.onRestart(performance.now() - before);
    this.recorder.record({ kind: 'restarted' });
    for (const state of this.states.values()) {
      state.session?.terminate();
      state.session = undefined;
    }
  }

  /**
   * The final drain: every device closes its session, connects again and acknowledges everything; waits until every
   * new session has had its whole backlog (queue_empty, DLV-27), every ack is confirmed and the checker expects nothing
   * more (every accepted message delivered and acknowledged, every applied acknowledgement's receipt arrived), or
   * until `timeoutMs`. Resolves whether it got there.
   */
  async drain(timeoutMs = DRAIN_TIMEOUT_MS): Promise<boolean> {
    this.script.push('final drain: every device connects again and acknowledges everything');
    this.ctx.note('model: final drain');
    const states = [...this.states.values()];
    await Promise.all(states.filter((s) => s.session).map((s) => this.disconnect(s.label, 'close')));
    for (const state of states) state.mode = 'acking';
    await Promise.all(states.map((s) => this.connect(s.label)));
    const sessions = states.map((s) => s.session!.label);
    const settled = () => sessions.every((label) => this.caughtUp.has(label)) && this.pings.size === 0 && outstanding(this.recorder).length === 0;
    const done = await this.recorder.until(settled, Math.min(timeoutMs, this.ctx.remaining()));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    this.ctx.transcript.throwIfViolated();
    const behind = sessions.filter((label) => !this.caughtUp.has(label));
    if (behind.length > 0) throw new CaseFailure('DLV-25', 'a queue_empty on every session of the final drain', `none on ${behind.join(', ')} within ${timeoutMs} ms`, 'final drain');
    return done;
  }
}
