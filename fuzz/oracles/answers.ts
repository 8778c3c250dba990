// The answers oracle for WebSocket connections: every frame the server sends is checked on its own (schema, error
// registry, details shapes, no forged `from`), and matched to the message it answers, whose expectation
// (oracles/expect.ts) says what the spec allows. One AnswerBook per connection; it holds the expectations of the
// messages sent on it, in order, and settles each one when its answer arrives, when the connection closes, or when
// its time is up.
//
// Matching: expectations are grouped by the id their answer echoes (one group for answers without an id; TRN-30 lets
// ids repeat). An answer goes to an expectation of its group that allows it, oldest first; when all that allow it
// hold an answer already, one of those is moved to another expectation that allows its answer (an augmenting path,
// as in bipartite matching), so that which message an answer belongs to never decides a verdict when several could
// have caused it. Optional answers (an `ack` or `typing` that may fail) are given `settleMs`, and stay matchable for a
// while afterwards, so that a server that answers late is never blamed for it: the fuzzer asserts what is answered,
// not how fast.
import { checkServerFrame, describeIssues, errorSpec, type ServerFrame, type ValidationIssue } from '../../spec/index.ts';
import type { FuzzInput } from '../input.ts';
import type { Expectation } from './expect.ts';
import { finding, findingAbout, show, type Finding } from './finding.ts';
import { activeNow } from '../clock.ts';

/** One input being run: its findings and the answers it got, for the summary. */
export interface InputRun {
  index: number;
  input: FuzzInput;
  findings: Finding[];
  /** Labels of what came back: `send_ok`, `error:INVALID_FRAME`, `close:4400`, `http:400:BAD_REQUEST`, ... */
  answers: string[];
}

/** What the answers oracle needs to know about the campaign. */
export interface Watch {
  /** Users that never act after set-up (the victim and its friend) [AUT-9]. */
  silentUsers: ReadonlySet<string>;
  /**
   * MessageIds the oracles acknowledged on a silent user's behalf (draining what attackers sent it): their delivered
   * receipts from that user are real [RCP-1].
   */
  silentAcked: ReadonlySet<string>;
  /** The messages a silent user sent at set-up (friend's seeded messages to the victim). */
  seededMessages: ReadonlySet<string>;
  /** The server's window without receiveMax, from set-up, for [AUT-14]. */
  serverWindow: number;
}

export interface BookOptions {
  label: string;
  watch: Watch;
  /** Fatal errors the server may push on this connection unprompted (SESSION_REPLACED on a shared identity, ...). */
  pushFatal: ReadonlySet<string>;
  /** How long an optional answer is waited for before its message counts as done. */
  settleMs: number;
  /** How long a required answer, or a required close, may take. */
  timeoutMs: number;
  /** The connection has no session yet: until `welcome`, only an error that ends it may come [AUT-16]. */
  beforeWelcome?: boolean;
}

interface Entry {
  run: InputRun;
  exp: Expectation;
  at: number;
  done: boolean;
  matched: boolean;
  /** The answer assigned to it: a frame type, or `error:CODE`. */
  label?: string;
  resolve: () => void;
}

/** Pushes a server may send at any time on a session. */
const PUSH_TYPES = new Set(['deliver', 'queue_empty', 'presence', 'typing', 'prekeys_low', 'ping']);
/** Fatal errors no message asks for but that can end any session: shutdown, idle timeout, a slow reader [KAL-14]. */
const ALWAYS_PUSHABLE = new Set(['SERVER_RESTART', 'IDLE_TIMEOUT', 'SLOW_CONSUMER']);
/** How long settled expectations stay matchable for late answers. */
const LATE_MS = 30_000;
const MAX_RECENT = 1024;
/** How far an answer may be passed on to make room (the length of an augmenting path). */
const MAX_SHIFT = 4;
/** How long an answered expectation may still hand its answer on to another. */
const SHIFT_MS = 2000;

function labelOf(frame: ServerFrame): string {
  return frame.type === 'error' ? `error:${frame.code}` : frame.type;
}

function allows(exp: Expectation, label: string): boolean {
  if (exp.answer === 'none') return false;
  return label.startsWith('error:') ? exp.errors.has(label.slice(6)) : exp.success.includes(label);
}

export class AnswerBook {
  /** Expectations not yet settled, in the order their messages were sent. */
  private entries: Entry[] = [];
  /** Recently settled expectations, for the close check (a close may follow a message that has settled). */
  private recent: Entry[] = [];
  /**
   * Expectations by the id their answer echoes ('' for none), oldest first: the open ones, and settled ones for a
   * while (answered ones SHIFT_MS, to hand their answer on; unanswered ones LATE_MS, for a late answer).
   */
  private readonly groups = new Map<string, Entry[]>();
  private fatal: string | undefined;
  private closeInfo: { code: number; reason: string; clean: boolean } | undefined;
  private clientClosing = false;
  private beforeWelcome: boolean;
  private timer: NodeJS.Timeout | undefined;
  /** The run that sent last on this connection: unattributable findings go to it. */
  lastRun: InputRun | undefined;
  /** Called with each finding that has no run to go to (a connection between inputs). */
  orphan: ((f: Finding) => void) | undefined;
  /** Called with every well-formed deliver frame (the session acknowledges its items). */
  onDeliver: ((frame: Extract<ServerFrame, { type: 'deliver' }>) => void) | undefined;

  constructor(private readonly options: BookOptions) {
    this.beforeWelcome = options.beforeWelcome ?? false;
  }

  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  get fatalCode(): string | undefined {
    return this.fatal;
  }

  get openEntries(): number {
    return this.entries.length;
  }

  /** Registers the expectation of a message just sent; resolves when it is settled. */
  expect(run: InputRun, exp: Expectation): Promise<void> {
    this.lastRun = run;
    if (this.closeInfo) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // Messages that get no answer stay open for settleMs too, so that an answer to one is caught as such.
      const entry: Entry = { run, exp, at: activeNow(), done: false, matched: false, resolve };
      this.entries.push(entry);
      const key = exp.echo ?? '';
      const group = this.groups.get(key);
      if (group) group.push(entry);
      else this.groups.set(key, [entry]);
      this.arm();
    });
  }

  /** The fuzzer is about to close the connection itself: the server's Close frame then needs no fatal error. */
  closingByClient(): void {
    this.clientClosing = true;
  }

  /** A parsed text message from the server (any JSON value), or `undefined` for text that is not JSON. */
  receiveText(text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.report(finding('answers', 'TRN-19', 'the server sent a text message that is not JSON', 'one JSON object per text message', show(text)));
      return;
    }
    const check = checkServerFrame(value);
    if (check.ok) this.receive(check.frame);
    else this.invalid(value, check.issues);
  }

  receiveBinary(data: Buffer): void {
    this.report(finding('answers', 'TRN-19', 'the server sent a binary message', 'text messages only', `${data.length} bytes`));
  }

  /** A server frame that fails the spec's schemas, or names a type the spec does not have. */
  invalid(value: unknown, issues: ValidationIssue[]): void {
    const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
    const run = this.takeById(value);
    if (typeof type === 'string' && !['error', ...PUSH_TYPES, 'welcome', 'send_ok', 'receipt_ok', 'subscribed', 'unsubscribed', 'pong'].includes(type)) {
      this.report(finding('answers', 'TRN-19', `the server sent a frame of type ${JSON.stringify(type)}, which section 1.8 does not list`, 'a server frame type of section 1.8', show(value)), run);
      return;
    }
    const schema = typeof type === 'string' ? `spec/schemas/ws/server/${type}.json` : 'a JSON object with a string type';
    this.report(finding('answers', type === 'error' ? 'ERR-2' : 'TRN-19', `a server frame fails ${schema}: ${describeIssues(issues)}`, `valid against ${schema}`, show(value)), run);
  }

  /** A server frame valid against its schema. */
  receive(frame: ServerFrame): void {
    if (this.fatal !== undefined) {
      // [ERR-10] Nothing but that one error after a fatal error.
      this.report(finding('answers', 'ERR-10', `a frame after the fatal error ${this.fatal}`, 'nothing after a fatal error frame', show(frame)));
      return;
    }
    if (this.beforeWelcome && frame.type !== 'welcome' && frame.type !== 'error') {
      // [AUT-16] Before welcome, only an error that ends the connection.
      this.report(finding('answers', 'AUT-16', `a ${frame.type} frame before welcome`, 'nothing but an error that ends the connection', show(frame)));
    }
    if (frame.type === 'welcome') this.beforeWelcome = false;
    this.checkFrom(frame);
    if (frame.type === 'deliver') this.onDeliver?.(frame);
    const id = (frame as { id?: unknown }).id;
    if (typeof id === 'string' && frame.type !== 'ping') {
      const run = this.matchById(id, frame);
      if (frame.type === 'error') this.checkError(frame, run);
      return;
    }
    if (frame.type === 'error') {
      const run = this.matchIdless(frame);
      this.checkError(frame, run);
      return;
    }
    if (!PUSH_TYPES.has(frame.type)) {
      // Every answer type carries an id (schemas); a push type is the only thing that may come without one.
      this.report(finding('answers', 'TRN-30', `a ${frame.type} frame that answers nothing`, 'an answer echoing a request id', show(frame)));
    }
  }

  /** The connection ended: the server's Close frame (clean) or a dropped TCP connection (code 1006). */
  close(code: number, reason: string, clean: boolean): void {
    if (this.closeInfo) return;
    this.closeInfo = { code, reason, clean };
    const label = `close:${code}`;
    const closer = this.entries.find((e) => e.exp.mustClose || e.exp.mayClose) ?? undefined;
    (closer?.run ?? this.lastRun)?.answers.push(label);
    if (this.fatal !== undefined) {
      const spec = errorSpec(this.fatal);
      // [ERR-9] The registry's close code, and the error code as the close reason.
      if (!clean) this.report(finding('answers', 'ERR-9', `the connection dropped without a Close frame after the fatal error ${this.fatal}`, `Close frame ${spec?.closeCode ?? '?'} ${this.fatal}`, `TCP closed (1006)`), closer?.run);
      else if (code !== spec?.closeCode || reason !== this.fatal) {
        this.report(finding('answers', 'ERR-9', `a fatal ${this.fatal} error closed with ${code} ${JSON.stringify(reason)}`, `close ${spec?.closeCode ?? '?'} with reason ${this.fatal}`, `close ${code} with reason ${JSON.stringify(reason)}`), closer?.run);
      }
    } else if (!this.clientClosing) {
      const allowed = this.entries.some((e) => e.exp.closes.has(code)) || this.recent.some((e) => e.exp.closes.has(code) && activeNow() - e.at < 2000);
      if (!clean && !allowed) {
        this.report(finding('answers', 'ERR-9', 'the server dropped the connection without a Close frame', 'the connection open, or a Close frame after a fatal error', 'TCP closed (1006)'), closer?.run);
      } else if (!allowed) {
        this.report(finding('answers', 'ERR-9', `the server closed with ${code} ${JSON.stringify(reason)} without a fatal error`, 'a close only after a fatal error frame, or for an RFC 6455 violation', `close ${code} ${JSON.stringify(reason)}`), closer?.run);
      } else if (code === 1009 && reason !== 'FRAME_TOO_LARGE') {
        // [TRN-21] "Closes with 1009 (FRAME_TOO_LARGE)": the error code is the close reason (section 0.3).
        this.report(finding('answers', 'TRN-21', `an oversized message closed with 1009 and reason ${JSON.stringify(reason)}`, 'close 1009 with reason FRAME_TOO_LARGE', `close 1009 ${JSON.stringify(reason)}`), closer?.run);
      }
    }
    // [TRN-30] Requests still unanswered when the connection closes have no answer to wait for.
    for (const entry of this.entries) this.settle(entry);
    this.entries = [];
    this.disarm();
  }

  /** Settles everything still open (the connection is being abandoned) and stops the timer. */
  dispose(): void {
    for (const entry of this.entries) this.settle(entry);
    this.entries = [];
    this.disarm();
  }

  private report(f: Finding, run?: InputRun): void {
    const target = run ?? this.lastRun;
    // A code outside the registry is the heart of whatever else is wrong with that answer: it names the failure.
    if (target) {
      if (f.requirement === 'ERR-3') target.findings.unshift(f);
      else target.findings.push(f);
    } else this.orphan?.(f);
  }

  private takeById(value: unknown): InputRun | undefined {
    const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
    if (typeof id !== 'string') return undefined;
    const entry = (this.groups.get(id) ?? []).find((e) => !e.matched);
    if (!entry) return undefined;
    this.markMatched(entry, 'invalid');
    return entry.run;
  }

  /** Checks an error frame against the registry; `run` is the input it answers, when known. */
  private checkError(frame: Extract<ServerFrame, { type: 'error' }>, run: InputRun | undefined): void {
    const spec = errorSpec(frame.code);
    if (!spec || !spec.transports.includes('ws')) {
      // [ERR-3] Only the registry's codes, on their transport.
      this.report(finding('answers', 'ERR-3', `error code ${frame.code} is ${spec ? 'not a WebSocket code' : 'not in spec/errors.json'}`, 'a code of spec/errors.json whose transports include ws', show(frame)), run);
      return;
    }
    if (spec.fatal) this.fatal = frame.code;
    // [ERR-4] A WebSocket RATE_LIMITED carries retryAfterMs.
    if (frame.code === 'RATE_LIMITED' && frame.retryAfterMs === undefined) this.report(finding('answers', 'ERR-4', 'RATE_LIMITED without retryAfterMs', 'retryAfterMs present', show(frame)), run);
    // [ERR-5] details arrays in ascending order.
    const details = frame.details as Record<string, unknown> | undefined;
    for (const key of frame.code === 'STALE_DEVICES' ? ['missing', 'extra'] : frame.code === 'QUEUE_FULL' ? ['deviceIds'] : []) {
      const list = details?.[key];
      if (Array.isArray(list) && list.some((v, i) => i > 0 && (v as number) <= (list[i - 1] as number))) {
        this.report(finding('answers', 'ERR-5', `${frame.code} details.${key} is not strictly ascending`, 'ascending deviceIds, each once', show(frame)), run);
      }
    }
  }

  /** [AUT-9] Nothing the server delivers may claim to come from a user that has not acted since set-up. */
  private checkFrom(frame: ServerFrame): void {
    const silent = this.options.watch.silentUsers;
    if (frame.type === 'typing' && silent.has(frame.from.userId)) {
      this.report(finding('answers', 'AUT-9', `a typing frame claims to come from ${frame.from.userId}, which never typed`, '`from` set from the authenticated sender', show(frame)));
    }
    if (frame.type !== 'deliver') return;
    for (const item of frame.items) {
      if (forged(item, this.options.watch)) {
        this.report(finding('answers', 'AUT-9', `a delivered ${item.kind} claims to come from ${item.from.userId}.${item.from.deviceId}, which never sent it`, '`from` set from the authenticated sender (a cross-user effect)', show(item)));
      }
    }
  }

  /**
   * Gives the answer `label` to an expectation of `group` that allows it, moving earlier assignments along an
   * augmenting path when needed. Returns the expectation that got it, and every one that got its first answer.
   */
  private assign(group: Entry[], label: string): { entry: Entry; fresh: Entry[] } | undefined {
    const visited = new Set<Entry>();
    const fresh: Entry[] = [];
    // Messages still waiting come first, oldest first (answers mostly come in the order of the messages they answer),
    // and among them those that must be answered before those that may not be (an optional answer may never come,
    // and must not keep what a required one needs); settled ones only take a late answer. What this order gets
    // wrong, the augmenting path below and the rescue at a required expectation's deadline (tick) put right.
    const waiting = group.filter((e) => !e.done);
    const order = [...waiting.filter((e) => e.exp.answer === 'required'), ...waiting.filter((e) => e.exp.answer !== 'required'), ...group.filter((e) => e.done)];
    // Kuhn's augmenting path: an expectation holding another answer may take this one if its own can move on. One
    // that holds the same answer is no help (moving it changes nothing), and is skipped.
    const give = (answer: string, depth: number): Entry | undefined => {
      const free = order.find((e) => e.label === undefined && !visited.has(e) && allows(e.exp, answer));
      if (free) {
        visited.add(free);
        free.label = answer;
        fresh.push(free);
        return free;
      }
      if (depth >= MAX_SHIFT) return undefined;
      for (const e of order) {
        if (visited.has(e) || e.label === undefined || e.label === answer || !allows(e.exp, answer)) continue;
        visited.add(e);
        if (give(e.label, depth + 1)) {
          e.label = answer;
          return e;
        }
      }
      return undefined;
    };
    const entry = give(label, 0);
    return entry && { entry, fresh };
  }

  /**
   * A required expectation at its deadline: if a message whose answer was only optional holds an answer this one
   * allows, that answer was more likely this one's; it moves, and the optional one goes without.
   */
  private rescue(entry: Entry): boolean {
    const group = this.groups.get(entry.exp.echo ?? '') ?? [];
    const holder = group.find((e) => e !== entry && e.label !== undefined && e.exp.answer !== 'required' && allows(entry.exp, e.label));
    if (!holder) return false;
    entry.label = holder.label;
    holder.label = undefined;
    this.markMatched(entry, entry.label!);
    return true;
  }

  /** Marks an expectation answered; settles it unless it still waits for its close. */
  private markMatched(entry: Entry, label: string): void {
    entry.label ??= label;
    if (entry.matched) return;
    entry.matched = true;
    if (!entry.exp.mustClose || this.closeInfo) {
      this.settle(entry);
      const at = this.entries.indexOf(entry);
      if (at >= 0) this.entries.splice(at, 1);
    }
  }

  /** Matches an answer echoing `id`; returns the input it is taken to answer. */
  private matchById(id: string, frame: ServerFrame): InputRun | undefined {
    const label = labelOf(frame);
    const group = this.groups.get(id) ?? [];
    const assigned = this.assign(group, label);
    if (assigned) {
      for (const e of assigned.fresh) this.markMatched(e, e.label!);
      this.count(assigned.entry.run, frame);
      this.checkContent(assigned.entry, frame);
      return assigned.entry.run;
    }
    const unanswered = group.filter((e) => e.label === undefined);
    const open = unanswered.find((e) => e.exp.answer === 'required') ?? unanswered[0];
    if (open) {
      // The message it answers expected something else.
      open.label = label;
      this.count(open.run, frame);
      this.report(this.wrongAnswer(open.exp, frame), open.run);
      this.markMatched(open, label);
      return open.run;
    }
    if (group.length > 0) {
      const run = group[group.length - 1]!.run;
      this.report(finding('answers', 'TRN-30', `a second answer to request ${JSON.stringify(id)}`, 'exactly one answer per request', show(frame)), run);
      return run;
    }
    this.report(finding('answers', 'ERR-2', `an answer echoing ${JSON.stringify(id)}, an id no frame on this connection carried validly`, 'ids echoed only from frames that carried them', show(frame)));
    return undefined;
  }

  /** Matches an error without an id; returns the input it is taken to answer. */
  private matchIdless(frame: Extract<ServerFrame, { type: 'error' }>): InputRun | undefined {
    const label = labelOf(frame);
    const assigned = this.assign(this.groups.get('') ?? [], label);
    if (assigned) {
      for (const e of assigned.fresh) this.markMatched(e, e.label!);
      this.count(assigned.entry.run, frame);
      return assigned.entry.run;
    }
    const open = this.entries.filter((e) => !e.matched);
    if (this.options.pushFatal.has(frame.code) || ALWAYS_PUSHABLE.has(frame.code)) {
      (this.lastRun ?? open[0]?.run)?.answers.push(label);
      return undefined;
    }
    // The oldest message that must get an error without an id gets this one, wrong as it is.
    const owed = open.find((e) => e.exp.echo === undefined && e.exp.answer === 'required' && e.exp.errors.size > 0 && e.label === undefined);
    if (owed) {
      this.count(owed.run, frame);
      this.report(this.wrongAnswer(owed.exp, frame), owed.run);
      this.markMatched(owed, label);
      return owed.run;
    }
    // An error that should have echoed an id: ERR-2 (the code itself is what that message expected).
    const withId = open.find((e) => e.exp.echo !== undefined && allows(e.exp, label));
    if (withId) {
      this.count(withId.run, frame);
      this.report(finding('answers', 'ERR-2', `${frame.code} without the id ${JSON.stringify(withId.exp.echo)} of the frame it answers`, `id ${JSON.stringify(withId.exp.echo)} echoed`, show(frame)), withId.run);
      this.markMatched(withId, label);
      return withId.run;
    }
    const expected = open.length > 0 ? `${open.slice(0, 3).map((e) => describeExpectation(e.exp)).join(' | ')}${open.length > 3 ? ` | … (${open.length} open)` : ''}` : 'no error: nothing sent asks for one';
    this.report(finding('answers', open[0]?.exp.requirement ?? 'ERR-3', `error ${frame.code} answers no message sent`, expected, show(frame)), open[0]?.run);
    return open[0]?.run;
  }

  private wrongAnswer(exp: Expectation, frame: ServerFrame): Finding {
    const got = frame.type === 'error' ? `error ${frame.code}` : frame.type;
    return findingAbout(exp.what, 'answers', exp.requirement, `got ${got}`, describeExpectation(exp), show(frame));
  }

  /** Checks of a success answer's content against the message it answers. */
  private checkContent(entry: Entry, frame: ServerFrame): void {
    const sent = entry.exp.frame;
    if (!sent) return;
    if (frame.type === 'send_ok' && frame.messageId !== sent['messageId']) {
      this.report(finding('answers', 'MSG-12', 'send_ok echoes another messageId', `messageId ${show(sent['messageId'])}`, show(frame)), entry.run);
    }
    if (frame.type === 'welcome') {
      if (frame.userId !== sent['userId'] || frame.deviceId !== sent['deviceId']) {
        this.report(finding('answers', 'AUT-13', 'welcome names another device than the hello', `${show(sent['userId'])}.${show(sent['deviceId'])}`, show(frame)), entry.run);
      }
      const receiveMax = typeof sent['receiveMax'] === 'number' ? sent['receiveMax'] : Infinity;
      const window = Math.min(this.options.watch.serverWindow, receiveMax);
      if (frame.limits.window !== window) {
        this.report(finding('answers', 'AUT-14', 'welcome.limits.window is not min(window, receiveMax)', `window ${window}`, `window ${frame.limits.window}`), entry.run);
      }
    }
    if (frame.type === 'error' && frame.code === 'STALE_DEVICES' && Array.isArray(sent['envelopes'])) {
      // [MSG-6] extra ⊆ E and missing ∩ E = ∅.
      const e = new Set((sent['envelopes'] as Array<{ deviceId: number }>).map((x) => x.deviceId));
      const details = frame.details as { missing: number[]; extra: number[] };
      if (details.extra.some((d) => !e.has(d)) || details.missing.some((d) => e.has(d))) {
        this.report(finding('answers', 'MSG-6', 'STALE_DEVICES details contradict the envelopes sent', 'extra ⊆ envelope deviceIds, missing disjoint from them', show({ sent: [...e], details })), entry.run);
      }
    }
  }

  private count(run: InputRun, frame: ServerFrame): void {
    run.answers.push(frame.type === 'error' ? `error:${frame.code}` : frame.type);
  }

  private settle(entry: Entry): void {
    if (entry.done) return;
    entry.done = true;
    if (!entry.matched) {
      // Still matchable by a late answer for a while.
      this.recent.push(entry);
      if (this.recent.length > MAX_RECENT) this.recent.shift();
    }
    entry.resolve();
  }

  /**
   * Forgets settled expectations: answered ones after SHIFT_MS (an answer is passed on only between messages close in
   * time), unanswered ones after LATE_MS, and the oldest settled ones beyond MAX_RECENT. Open ones always stay.
   */
  private prune(now: number): void {
    for (const [key, group] of this.groups) {
      let kept = group.filter((e) => !e.done || (now - e.at < (e.matched ? SHIFT_MS : LATE_MS)));
      if (kept.length > MAX_RECENT) {
        let excess = kept.length - MAX_RECENT;
        kept = kept.filter((e) => !(e.done && excess-- > 0));
      }
      if (kept.length === 0) this.groups.delete(key);
      else if (kept.length !== group.length) this.groups.set(key, kept);
    }
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), Math.max(5, Math.min(50, this.options.settleMs)));
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = activeNow();
    const keep: Entry[] = [];
    // A copy: settling and rescuing change this.entries.
    for (const entry of [...this.entries]) {
      const age = now - entry.at;
      if (entry.exp.mustClose) {
        if (age > this.options.timeoutMs) {
          this.report(findingAbout(entry.exp.what, 'answers', entry.exp.requirement, 'the connection stayed open', describeExpectation(entry.exp), `still open after ${this.options.timeoutMs} ms`), entry.run);
          this.settle(entry);
        } else keep.push(entry);
      } else if (entry.exp.answer === 'required' && !entry.matched) {
        if (age > this.options.timeoutMs && this.rescue(entry)) {
          // Its answer had gone to a message that need not have had one.
        } else if (age > this.options.timeoutMs) {
          this.report(findingAbout(entry.exp.what, 'answers', entry.exp.requirement, 'no answer', describeExpectation(entry.exp), `nothing within ${this.options.timeoutMs} ms`), entry.run);
          this.settle(entry);
        } else keep.push(entry);
      } else if (age >= this.options.settleMs || entry.matched) {
        this.settle(entry);
      } else keep.push(entry);
    }
    this.entries = keep;
    while (this.recent.length > 0 && now - this.recent[0]!.at > LATE_MS) this.recent.shift();
    this.prune(now);
    if (this.entries.length === 0 && this.groups.size === 0) this.disarm();
  }
}

/** Whether an item claims to come from a silent user without that user having caused it [AUT-9]. */
export function forged(item: Extract<ServerFrame, { type: 'deliver' }>['items'][number], watch: Watch): boolean {
  if (!watch.silentUsers.has(item.from.userId)) return false;
  if (item.kind === 'message') return !watch.seededMessages.has(item.messageId);
  return !(item.status === 'delivered' && item.messageIds.every((m) => watch.silentAcked.has(m)));
}

export function describeExpectation(exp: Expectation): string {
  const parts: string[] = [];
  if (exp.success.length > 0) parts.push(exp.success.join(' or '));
  if (exp.errors.size > 0) parts.push(`error ${[...exp.errors].join('/')}`);
  if (parts.length === 0) parts.push('no answer');
  let text = `${exp.answer === 'optional' ? 'at most one ' : exp.answer === 'none' ? '' : ''}${parts.join(' or ')}`;
  if (exp.echo !== undefined) text += ` echoing id ${JSON.stringify(exp.echo)}`;
  if (exp.mustClose) text += `, then the close${exp.closes.size > 0 ? ` ${[...exp.closes].join('/')}` : ''}`;
  return `${text} (${exp.requirement})`;
}
