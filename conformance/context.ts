// The per-case context: fresh users and devices for every case (so cases are independent and run in parallel),
// HTTP through the wire client with every answer checked against its schema (TRN-3), WebSocket sessions with
// transcripts, the case's clock, and the environment (restart support, run seed).
import { validate, type DeviceRegistration, type Limits, type LinkCodeResponse, type LinkDeviceResponse, type RegisterResponse } from '../spec/index.ts';
import { Connection, WireError, type Credentials } from '../reference-client/wire/connection.ts';
import { HttpApi, type CallOptions, type HttpResult } from '../reference-client/wire/http.ts';
import { CaseFailure, CaseNotRun, CaseUnsupported, MAX_CASE_BUDGET_MS, ServerUnreachable, show, type Need } from './case.ts';
import { httpErrorOf, must } from './expect.ts';
import { caseSeed, freshUsername, Material, Rng } from './fixtures.ts';
import { Session } from './session.ts';
import { Transcript } from './transcript.ts';

/**
 * How the server under test goes down before it comes back. `crash`: killed without warning (SIGKILL for the built-in
 * reference server), the test of every durability promise. `graceful`: told to shut down (SIGTERM), the test of what a
 * server does before a deliberate restart (KAL-13).
 */
export type RestartKind = 'crash' | 'graceful';

/** Restarts the server under test and resolves once it serves requests again. */
export interface Restarter {
  /** The kinds of restart this restarter can perform. */
  readonly kinds: ReadonlySet<RestartKind>;
  restart(kind: RestartKind): Promise<void>;
}

/** Makes the storage of the server under test fail (`inject`) and work again (`heal`), without restarting it. */
export interface Faulter {
  inject(): Promise<void>;
  heal(): Promise<void>;
}

/** What every case of one run shares. */
export interface SuiteEnv {
  url: string;
  /**
   * Every URL of the service under test when there are several (`--url A --url B`), `url` first: each case spreads
   * its WebSocket connections and HTTP requests over them in turn (DPL-1). Absent, or one URL: everything goes to `url`.
   */
  urls?: readonly string[];
  seed: number;
  restarter?: Restarter;
  faulter?: Faulter;
  /** Registrations that met 429 RATE_LIMITED waited this long in total (reported, not counted against cases). */
  rateLimitWaitMs: number;
  /** Runs of the model-based delivery property (`--model-runs`; conformance/model/, default DEFAULT_MODEL_RUNS). */
  modelRuns?: number;
}

export interface Device extends Credentials {
  user: User;
  /** `u3/2`: the user's short label and the deviceId, for transcripts. */
  label: string;
  registration: DeviceRegistration;
}

export interface User {
  username: string;
  userId: string;
  /** Short label for transcripts: `u1`, `u2`, … in order of creation within the case. */
  label: string;
  devices: Device[];
}

/**
 * How the wire client behaves on a connection a case opens. Both default to true; a case that plays a dead peer (the
 * idle timeout, KAL-5) turns them off.
 */
export interface ConnectionOptions {
  /** Answer server `ping` frames with `pong`. */
  answerPings?: boolean;
  /** Answer WebSocket control Ping frames with Pong frames (KAL-4). */
  answerControlPings?: boolean;
}

const JSON_UTF8 = 'application/json;charset=utf-8';
/** Longer than any restarter waits for the server to come back (CommandRestarter: 60 s). */
const RESTART_ALLOWANCE_MS = 120_000;

export class CaseContext {
  readonly transcript: Transcript;
  readonly material: Material;
  readonly api: HttpApi;
  private deadline: number;
  private readonly sessions: Session[] = [];
  private userCount = 0;
  private connectionCount = 0;
  private faulted = false;
  private readonly startedAt: number;
  private budgetApplied = false;
  /** The service's URLs and one HTTP client for each; `turn` picks the next (see `nextUrl`). */
  private readonly urls: readonly string[];
  private readonly apis: readonly HttpApi[];
  private turn: number;

  /** `budgetMs`: the case's own budget from the advertised limits (ConformanceCase.budgetMs), applied at its first welcome. */
  constructor(
    readonly env: SuiteEnv,
    readonly caseId: string,
    private readonly timeoutMs: number,
    private readonly budgetMs?: (limits: Limits) => number,
  ) {
    const start = performance.now();
    this.startedAt = start;
    this.transcript = new Transcript(start);
    this.deadline = start + timeoutMs;
    this.material = new Material(new Rng(caseSeed(env.seed, caseId)));
    this.api = new HttpApi(env.url);
    this.urls = env.urls && env.urls.length > 1 ? env.urls : [env.url];
    this.apis = this.urls.map((url) => (url === env.url ? this.api : new HttpApi(url)));
    // Where the rotation starts depends on the run seed and the case, so a replay with --seed spreads alike.
    this.turn = caseSeed(env.seed, caseId) % this.urls.length;
  }

  /** The first URL of the service under test (`--url`). */
  get url(): string {
    return this.env.url;
  }

  /**
   * The URL for the next connection or HTTP request of the case: with several URLs (one service, DPL-1) each takes the
   * next in turn, so that a case's sender and recipient sit on different processes; with one, always that one.
   */
  private nextUrl(): number {
    const index = this.turn % this.urls.length;
    this.turn++;
    return index;
  }

  /** Whether the run spreads the case over several URLs (transcripts then name the URL of each exchange). */
  private get spread(): boolean {
    return this.urls.length > 1;
  }

  /** Milliseconds left for the case, at least 1. */
  remaining(): number {
    return Math.max(1, Math.floor(this.deadline - performance.now()));
  }

  /** Gives the case more time (used while waiting out a registration rate limit). */
  extend(ms: number): void {
    this.deadline += ms;
  }

  get deadlineAt(): number {
    return this.deadline;
  }

  /** Raises the deadline to the case's `budgetMs` of these limits, once; over the cap the case is UNSUPPORTED. */
  private applyBudget(limits: Limits): void {
    if (this.budgetApplied || !this.budgetMs) return;
    this.budgetApplied = true;
    const budget = Math.ceil(this.budgetMs(limits));
    const cap = Math.max(MAX_CASE_BUDGET_MS, this.timeoutMs);
    if (budget > cap) throw new CaseUnsupported(`the advertised limits make this case take about ${budget} ms, more than the ${cap} ms a case may take`);
    this.deadline = Math.max(this.deadline, this.startedAt + budget);
    this.note(`time budget ${budget} ms from the advertised limits`);
  }

  note(text: string): void {
    this.transcript.add('suite', 'note', text);
  }

  unsupported(reason: string): never {
    throw new CaseUnsupported(reason);
  }

  notRun(reason: string): never {
    throw new CaseNotRun(reason);
  }

  async sleep(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, Math.min(ms, this.remaining())));
  }

  // ---- HTTP -------------------------------------------------------------------------------------------------------

  private checkHttp(result: HttpResult, what: string): void {
    const error = result.status >= 400;
    if (result.issues.length > 0) {
      const schema = error ? 'spec/schemas/http/error.json' : 'the response schema of section 1.7';
      throw new CaseFailure(error ? 'ERR-1' : 'TRN-3', `a body valid against ${schema}`, `${show(result.body)} (${result.issues.map((i) => `${i.path || '(root)'} ${i.message}`).join('; ')})`, what);
    }
    if (result.body !== undefined) {
      const type = (result.headers.get('content-type') ?? '').toLowerCase().replace(/[\s"]/g, '');
      must.hold(type === JSON_UTF8, 'TRN-3', 'Content-Type: application/json; charset=utf-8', type || '(none)', what);
    }
  }

  /** Calls a route of spec/routes.json by name; the answer is schema-checked (TRN-3, ERR-1) and transcribed. */
  async http<T = unknown>(route: string, options: CallOptions = {}): Promise<HttpResult<T>> {
    const spec = this.api.route(route);
    const what = `${spec.method} ${spec.path}`;
    const api = this.apis[this.nextUrl()]!;
    const sent = this.spread ? `${spec.method} ${api.baseUrl}${spec.path}` : what;
    this.transcript.add('http', 'sent', options.body === undefined ? sent : { request: sent, params: options.params, body: options.body });
    const result = await api.call<T>(route, { timeoutMs: this.remaining(), ...options }).catch((error: unknown) => this.httpFailed(error, what));
    this.transcript.add('http', 'received', { status: result.status, body: result.body });
    this.checkHttp(result, what);
    return result;
  }

  /** Any method and path (negative tests); error bodies are checked against http/error.json (ERR-1). */
  async raw<T = unknown>(method: string, path: string, options: CallOptions = {}): Promise<HttpResult<T>> {
    const what = `${method} ${path}`;
    const api = this.apis[this.nextUrl()]!;
    const sent = this.spread ? `${method} ${api.baseUrl}${path}` : what;
    this.transcript.add('http', 'sent', options.body === undefined ? sent : { request: sent, body: typeof options.body === 'string' ? options.body.slice(0, 300) : options.body });
    const result = await api.raw<T>(method, path, { timeoutMs: this.remaining(), ...options }).catch((error: unknown) => this.httpFailed(error, what));
    this.transcript.add('http', 'received', { status: result.status, body: result.body });
    if (result.status >= 400 && result.issues.length === 0) {
      const check = validate('http/error.json', result.body);
      if (!check.ok) result.issues = check.issues;
    }
    this.checkHttp(result, what);
    return result;
  }

  private httpFailed(error: unknown, what: string): never {
    const err = error as Error;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') throw new CaseFailure('TRN-1', `an answer to ${what}`, 'no answer before the case timed out');
    throw error;
  }

  // ---- users and devices ------------------------------------------------------------------------------------------

  /** Registers a user (POST /v1/accounts) and links `devices - 1` further devices. Waits out 429 RATE_LIMITED. */
  async user(options: { devices?: number; prekeys?: number } = {}): Promise<User> {
    const label = `u${++this.userCount}`;
    const username = freshUsername();
    const registration = this.material.deviceRegistration(`${label} device 1`, options.prekeys ?? 0);
    const result = await this.rateLimited(() => this.http<RegisterResponse>('register', { body: { username, device: registration } }));
    must.status(result, 201, 'IDN-6', `registering ${username}`);
    const user: User = { username, userId: result.body.userId, label, devices: [] };
    user.devices.push(this.device(user, result.body.deviceId, registration));
    for (let i = 1; i < (options.devices ?? 1); i++) await this.link(user, options.prekeys ?? 0);
    return user;
  }

  /** Links a new device to `user` with a link code obtained by its first current device. */
  async link(user: User, prekeys = 0): Promise<Device> {
    const owner = user.devices[0];
    if (!owner) throw new RangeError(`${user.label} has no device to obtain a link code`);
    const code = await this.http<LinkCodeResponse>('createLinkCode', { credentials: owner });
    must.status(code, 201, 'IDN-14', 'obtaining a link code');
    const registration = this.material.deviceRegistration(`${user.label} device ${user.devices.length + 1}`, prekeys);
    const linked = await this.rateLimited(() => this.http<LinkDeviceResponse>('linkDevice', { body: { linkCode: code.body.code, device: registration } }));
    must.status(linked, 201, 'IDN-16', 'linking a device');
    must.equal(linked.body.userId, user.userId, 'IDN-16', 'the linked device belongs to the code user');
    const device = this.device(user, linked.body.deviceId, registration);
    user.devices.push(device);
    return device;
  }

  private device(user: User, deviceId: number, registration: DeviceRegistration): Device {
    return { user, userId: user.userId, deviceId, secret: registration.secret, label: `${user.label}/${deviceId}`, registration };
  }

  /** Retries a registration-type request after 429 RATE_LIMITED, waiting `retryAfterMs`; the wait is not case time. */
  private async rateLimited<T>(call: () => Promise<HttpResult<T>>): Promise<HttpResult<T>> {
    for (let attempt = 0; ; attempt++) {
      const result = await call();
      const error = httpErrorOf(result);
      if (result.status !== 429 || error?.code !== 'RATE_LIMITED' || attempt >= 20) return result;
      const waitMs = Math.min(61_000, typeof error.retryAfterMs === 'number' ? error.retryAfterMs : 1000) + 50;
      this.note(`registration rate-limited; waiting ${waitMs} ms (raise registrationsPerMinute on the server under test)`);
      this.env.rateLimitWaitMs += waitMs;
      this.extend(waitMs);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }

  // ---- WebSocket sessions -----------------------------------------------------------------------------------------

  /** Opens a WebSocket without authenticating. Rejects with the wire client's WireError when the upgrade fails. */
  async open(options: { protocols?: string[]; label?: string } & ConnectionOptions = {}): Promise<Session> {
    const label = `${options.label ?? 'anon'}#${++this.connectionCount}`;
    const openedAt = this.transcript.now();
    const url = this.urls[this.nextUrl()]!;
    this.transcript.add(label, 'note', `open${this.spread ? ` on ${url}` : ''} ${options.protocols ? `offering [${options.protocols.join(', ')}]` : ''}`.trim());
    let conn: Connection;
    try {
      conn = await Connection.open(url, {
        transcript: true,
        handshakeTimeoutMs: this.remaining(),
        ...(options.protocols ? { protocols: options.protocols } : {}),
        ...(options.answerPings === undefined ? {} : { answerPings: options.answerPings }),
        ...(options.answerControlPings === undefined ? {} : { answerControlPings: options.answerControlPings }),
      });
    } catch (error) {
      if (error instanceof WireError) this.transcript.add(label, 'note', error.message);
      throw error;
    }
    const clock = { remaining: () => this.remaining(), transcript: this.transcript, onWelcome: (welcome: { limits: Limits }) => this.applyBudget(welcome.limits) };
    const session = new Session(conn, label, clock, openedAt);
    this.sessions.push(session);
    return session;
  }

  /** Opens a WebSocket and authenticates `device`; fails the case (AUT-13) unless the answer is `welcome`. */
  async connect(device: Device, options: { receiveMax?: number } & ConnectionOptions = {}): Promise<Session> {
    const { receiveMax, ...connection } = options;
    const session = await this.open({ label: device.label, ...connection });
    const answer = await session.hello(device, receiveMax === undefined ? {} : { receiveMax });
    must.frameType(answer, 'welcome', 'AUT-13', `hello of ${device.label}`);
    return session;
  }

  /**
   * Restarts the server under test: a crash (the default; cases that declare `needs: ['restart']`) or a graceful
   * restart (`needs: ['graceful-restart']`).
   */
  async restartServer(kind: RestartKind = 'crash'): Promise<void> {
    if (!this.env.restarter?.kinds.has(kind)) throw new CaseNotRun(restartUnavailable(kind));
    this.note(`restarting the server (${kind})`);
    // The restart is not case time: the deadline moves out by the restarter's own limit while it runs (so the
    // runner's timer cannot fire mid-restart and blame the case), then back to what the restart really took.
    const before = performance.now();
    this.extend(RESTART_ALLOWANCE_MS);
    try {
      await this.env.restarter.restart(kind);
    } finally {
      this.extend(performance.now() - before - RESTART_ALLOWANCE_MS);
    }
    this.note('server restarted');
  }

  /** Makes the server's storage fail (cases that declare `needs: ['storage-fault']`); cleanup heals it. */
  async injectStorageFault(): Promise<void> {
    if (!this.env.faulter) throw new CaseNotRun(UNAVAILABLE['storage-fault']);
    this.note('storage fault injected');
    this.faulted = true;
    await this.env.faulter.inject();
  }

  async healStorageFault(): Promise<void> {
    if (!this.faulted || !this.env.faulter) return;
    this.faulted = false;
    await this.env.faulter.heal();
    this.note('storage fault healed');
  }

  /** Closes every connection the case opened and merges their transcripts. */
  async cleanup(): Promise<void> {
    // A server left with broken storage would fail every later case for the wrong reason: end the run instead.
    await this.healStorageFault().catch((error: unknown) => {
      throw new ServerUnreachable(`could not heal the storage fault after ${this.caseId}: ${(error as Error).message}`);
    });
    for (const session of this.sessions) if (!session.closeInfo) session.terminate();
    await Promise.all(this.sessions.map((s) => Promise.race([s.conn.closed, new Promise((r) => setTimeout(r, 1000))])));
  }
}

const UNAVAILABLE: Record<Need, string> = {
  restart: 'needs a server restart: pass --restart-cmd (and --ready-url)',
  'graceful-restart': 'needs a graceful server restart: pass --graceful-restart-cmd (and --ready-url)',
  'storage-fault': 'needs a way to make the server\'s storage fail: pass --fault-cmd and --heal-cmd',
};

/** Why a case needing a restart of `kind` cannot run. */
export function restartUnavailable(kind: RestartKind): string {
  return kind === 'crash' ? UNAVAILABLE.restart : UNAVAILABLE['graceful-restart'];
}

/** Whether the run's environment offers `need`. */
export function canMeet(env: SuiteEnv, need: Need): boolean {
  if (need === 'storage-fault') return env.faulter !== undefined;
  return env.restarter?.kinds.has(need === 'restart' ? 'crash' : 'graceful') ?? false;
}

/** Why a case with `need` cannot run here. */
export function unmetReason(need: Need): string {
  return UNAVAILABLE[need];
}
