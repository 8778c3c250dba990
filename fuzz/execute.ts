// Runs one input against the server and collects what the answers oracle makes of it. Each class has its transport:
// the lane's long-lived session (`frame`, `sequence`), a fresh authenticated raw WebSocket (`fatal`, and any frame
// input that may end its connection), a fresh unauthenticated one (`preauth`), a raw HTTP connection (`http`,
// `handshake`, `tcp`).
import { fillText, type Bindings, type FuzzInput, type HttpRequestStep, type Step } from './input.ts';
import { AnswerBook, type InputRun, type Watch } from './oracles/answers.ts';
import { expectMessage } from './oracles/expect.ts';
import { finding, findingAbout, show } from './oracles/finding.ts';
import { checkHttpResponse, expectHandshake, expectHttp, type HttpExpectation } from './oracles/http-answers.ts';
import { Planner, type Planned } from './plan.ts';
import { RawHttpConnection, header, requestBytes, type RawResponse } from './raw-http.ts';
import { RawWebSocket, handshakeRequest } from './raw-ws.ts';
import type { LaneSession } from './session.ts';
import { knownCredentials, withBindings, type Identity, type World } from './world.ts';

/** A counting semaphore: at most `capacity` holders at once. */
export class Slots {
  private used = 0;
  private waiters: Array<() => void> = [];
  constructor(private readonly capacity: number) {}
  async acquire(): Promise<void> {
    while (this.used >= this.capacity) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.used++;
  }
  release(): void {
    this.used--;
    // Everyone re-checks: acquirers and those waiting for idle share the list.
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
  /** Resolves once nothing holds a slot. */
  async idle(): Promise<void> {
    while (this.used > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

export interface Lane {
  index: number;
  world: World;
  watch: Watch;
  bindings: Bindings;
  session: LaneSession;
  /** Idle keep-alive HTTP connections of the lane (one per concurrent request at most). */
  httpPool: RawHttpConnection[];
  /** Inputs on their own connections (every class but the session's) running at once on this lane. */
  rawSlots: Slots;
  /** The lane's spare device has one session at a time (a second would replace the first, DLV-34). */
  spare: Slots;
  settleMs: number;
  timeoutMs: number;
  /** In-flight inputs allowed on the lane's session. */
  maxInFlight: number;
  idCounter: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function newRun(index: number, input: FuzzInput): InputRun {
  return { index, input, findings: [], answers: [] };
}

function stepBindings(lane: Lane, runIndex: number, step: number): Bindings {
  return withBindings(lane.bindings, { id: `i${runIndex}.${step}.${lane.idCounter++ % 1000}` });
}

function credentialsValidFor(world: World) {
  return (userId: unknown, deviceId: unknown, secret: unknown) => knownCredentials(world, userId, deviceId, secret);
}

function plan(lane: Lane, run: InputRun, steps: Step[], authenticated: boolean): Planned[] {
  const planner = new Planner({ limits: lane.world.limits, credentialsValid: credentialsValidFor(lane.world), authenticated });
  return steps.map((step, i) => planner.plan(step, stepBindings(lane, run.index, i)));
}

/**
 * Runs `input`; resolves once it is sent with `done`, which settles when its answers have been judged. Session
 * inputs resolve early (the lane pipelines them); the others resolve when they are finished.
 */
export async function execute(lane: Lane, run: InputRun): Promise<{ done: Promise<void> }> {
  const input = run.input;
  const spare = lane.world.workers[lane.index % lane.world.workers.length]!.spare;
  let task: () => Promise<void>;
  switch (input.class) {
    case 'frame':
    case 'sequence': {
      const planned = plan(lane, run, input.steps, true);
      // A message that will end the connection goes to a fresh session, so the lane's pipeline is not cut. (One
      // that only may, as some servers read ambiguous JSON, stays: if the session ends, what is in flight is moot.)
      if (!planned.some((p) => p.exp?.mustClose || p.wire.kind !== 'message')) {
        await lane.session.room(lane.maxInFlight);
        return lane.session.send(run, planned);
      }
      task = () => withSpare(lane, () => onRawSocket(lane, run, input.steps, spare));
      break;
    }
    case 'fatal':
      task = () => withSpare(lane, () => onRawSocket(lane, run, input.steps, spare));
      break;
    case 'preauth':
      task = () => onRawSocket(lane, run, input.steps, undefined);
      break;
    case 'http':
      task = async () => {
        for (const step of input.steps) if ('http' in step) await httpStep(lane, run, step.http);
      };
      break;
    case 'handshake':
      task = () => handshake(lane, run, input.steps);
      break;
    case 'tcp':
      task = () => tcp(lane, run, input.steps);
      break;
  }
  // Inputs on their own connections run beside the lane's pipeline, a few at a time.
  await lane.rawSlots.acquire();
  const done = task()
    .catch((error: unknown) => {
      run.findings.push(finding('answers', 'TRN-1', `the input could not be run: ${(error as Error).message}`, 'a server that accepts connections', show((error as Error).stack ?? String(error))));
    })
    .finally(() => lane.rawSlots.release());
  return { done };
}

async function withSpare(lane: Lane, task: () => Promise<void>): Promise<void> {
  await lane.spare.acquire();
  try {
    await task();
  } finally {
    lane.spare.release();
  }
}

/** Steps on a fresh raw WebSocket; with `hello`, after authenticating as that identity. */
async function onRawSocket(lane: Lane, run: InputRun, steps: Step[], hello: Identity | undefined): Promise<void> {
  const { world } = lane;
  const opened = await RawWebSocket.open(world.url, { timeoutMs: lane.timeoutMs });
  if (!opened.ok) {
    run.findings.push(finding('answers', 'TRN-15', 'a standard WebSocket upgrade was refused', 'HTTP 101 selecting tickwire.v1', opened.response ? `HTTP ${opened.response.status} ${show(opened.response.body.toString('utf8'))}` : (opened.error ?? 'no answer')));
    opened.http.close();
    return;
  }
  const ws = opened.ws;
  for (const v of ws.violations) run.findings.push(finding('answers', 'TRN-15', v));
  const book = new AnswerBook({
    label: hello ? 'fresh session' : 'unauthenticated connection',
    watch: lane.watch,
    // Herald's sessions replace each other (DLV-34); a fresh session of a lane's spare device is never replaced.
    pushFatal: new Set(hello ? [] : ['SESSION_REPLACED']),
    settleMs: lane.settleMs,
    timeoutMs: lane.timeoutMs,
    beforeWelcome: true,
  });
  ws.onMessage = (m) => (m.binary ? book.receiveBinary(m.data) : book.receiveText(m.data.toString('utf8')));
  ws.onClose = (c) => book.close(c.code, c.reason, c.clean);
  book.lastRun = run;
  try {
    const planner = new Planner({ limits: world.limits, credentialsValid: credentialsValidFor(world), authenticated: false });
    if (hello) {
      const frame = { type: 'hello', id: 'fuzz-hello', userId: hello.userId, deviceId: hello.deviceId, secret: hello.secret };
      const planned = planner.plan({ frame }, lane.bindings);
      ws.sendText((planned.wire as { payload: Buffer }).payload);
      await book.expect(run, planned.exp ?? expectMessage(Buffer.from('{}'), false, { limits: world.limits, authenticated: false, credentialsValid: () => false }));
      if (book.isClosed) return;
    }
    const settles: Array<Promise<void>> = [];
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      const planned = planner.plan(step, stepBindings(lane, run.index, i));
      const wire = planned.wire;
      switch (wire.kind) {
        case 'message':
          if (wire.binary) ws.sendBinary(wire.payload);
          else ws.sendText(wire.payload);
          break;
        case 'fragments':
          ws.sendFragmented(wire.payload, wire.sizes, wire.pingBetween);
          break;
        case 'frame':
          ws.sendFrame(wire);
          break;
        case 'wait':
          await sleep(wire.ms);
          break;
        case 'other':
          if ('stopReading' in wire.step) ws.stopReading();
          break;
      }
      if (planned.exp) settles.push(book.expect(run, planned.exp));
    }
    await Promise.all(settles);
  } finally {
    if (!book.isClosed) {
      book.closingByClient();
      await ws.close(1000, 1000);
    }
    book.dispose();
    ws.destroy();
  }
}

/** The bytes and facts of an HTTP step with its placeholders filled. */
function httpRequest(lane: Lane, step: HttpRequestStep): { bytes: Buffer; facts: Parameters<typeof expectHttp>[0] } {
  const b = lane.bindings;
  const headers: Array<[string, string]> = step.headers.map(([n, v]) => [n, fillText(v, b)]);
  let authorization: string | undefined;
  if (step.auth) {
    const credentials = fillText(step.auth.credentials, b);
    authorization = `${step.auth.scheme} ${step.auth.plain ? credentials : Buffer.from(credentials, 'utf8').toString('base64')}`;
    headers.push(['Authorization', authorization]);
  }
  const body = step.bodyBase64 !== undefined ? Buffer.from(step.bodyBase64, 'base64') : step.body !== undefined ? Buffer.from(fillText(step.body, b), 'utf8') : undefined;
  const target = fillText(step.target, b);
  const host = new URL(lane.world.url).host;
  return {
    bytes: requestBytes(step.method, target, host, headers, body, step.noContentLength),
    facts: { method: step.method, target, headers, authorization, body },
  };
}

async function httpStep(lane: Lane, run: InputRun, step: HttpRequestStep, reuse = true): Promise<void> {
  const { bytes, facts } = httpRequest(lane, step);
  const exp = expectHttp(facts, { limits: lane.world.limits, knownCredentials: (u, d, s) => knownCredentials(lane.world, u, d, s) });
  let conn = reuse ? lane.httpPool.pop() : undefined;
  while (conn && !conn.usable) conn = lane.httpPool.pop();
  const reused = conn !== undefined;
  conn ??= await RawHttpConnection.open(lane.world.url, lane.timeoutMs);
  conn.write(bytes);
  let response: RawResponse;
  try {
    response = await conn.response(step.method, lane.timeoutMs);
  } catch (error) {
    conn.close();
    // A server may close an idle persistent connection at any moment (RFC 9112 9.6), and a request written as it
    // does gets no response at all; HTTP clients retry such a request once on a new connection (9.3.1), and so does
    // this. Two campaigns each saw one such race in a million inputs, which never reproduced.
    if (reused && (error as { code?: string }).code === 'CLOSED') {
      run.answers.push('http:closed-while-idle (retried)');
      return httpStep(lane, run, step, false);
    }
    if (exp.mayDrop && (error as { code?: string }).code === 'CLOSED') run.answers.push('http:closed');
    else run.findings.push(findingAbout(exp.what, 'answers', exp.requirement, 'no HTTP answer', 'one HTTP response', (error as Error).message));
    return;
  }
  judgeHttp(run, response, exp, step.method);
  if ((header(response, 'connection') ?? '').toLowerCase().includes('close') || !conn.usable || conn.unread.length > 0) conn.close();
  else lane.httpPool.push(conn);
}

function judgeHttp(run: InputRun, response: RawResponse, exp: HttpExpectation, method: string): void {
  let code = '';
  try {
    code = (JSON.parse(response.body.toString('utf8')) as { error?: { code?: string } }).error?.code ?? '';
  } catch {
    // not JSON: the oracle reports it
  }
  run.answers.push(`http:${response.status}${code ? `:${code}` : ''}`);
  run.findings.push(...checkHttpResponse(response, exp, method));
}

async function handshake(lane: Lane, run: InputRun, steps: Step[]): Promise<void> {
  const conn = await RawHttpConnection.open(lane.world.url, lane.timeoutMs);
  const host = new URL(lane.world.url).host;
  try {
    let text = '';
    let torn = false;
    for (const step of steps) {
      if ('tcp' in step) {
        const chunk = fillText(Buffer.from(step.tcp, 'base64').toString('utf8'), withBindings(lane.bindings, { host }));
        text += chunk;
        conn.write(Buffer.from(chunk, 'utf8'));
      } else if ('slow' in step) {
        const chunk = fillText(Buffer.from(step.slow, 'base64').toString('utf8'), withBindings(lane.bindings, { host }));
        text += chunk;
        await conn.writeSlowly(Buffer.from(chunk, 'utf8'), step.gapMs);
      } else if ('wait' in step) {
        torn = true;
        await sleep(step.wait);
      }
    }
    const complete = text.includes('\r\n\r\n');
    if (!complete || torn) {
      // A torn handshake: end our side and accept any conforming answer, or none.
      conn.socket.end();
      let response: RawResponse | undefined;
      try {
        response = await conn.response('GET', Math.min(lane.timeoutMs, 2000));
      } catch {
        response = undefined;
      }
      if (response) {
        run.answers.push(`http:${response.status}`);
        if (response.status !== 101) run.findings.push(...checkHttpResponse(response, { what: 'a torn upgrade request', requirement: 'ERR-1', success: false, route: undefined, errors: new Set(), lenient: true }, 'GET'));
      }
      return;
    }
    const { upgrade, exp } = expectHandshake(text);
    let response: RawResponse;
    try {
      response = await conn.response(text.startsWith('HEAD') ? 'HEAD' : 'GET', lane.timeoutMs);
    } catch (error) {
      if (exp.mayDrop && (error as { code?: string }).code === 'CLOSED') run.answers.push('http:closed');
      else run.findings.push(findingAbout(exp.what, 'answers', exp.requirement, 'no HTTP answer', 'one HTTP response', (error as Error).message));
      return;
    }
    if (response.status === 101) {
      run.answers.push('http:101');
      if (upgrade === false && !exp.lenient) run.findings.push(findingAbout(exp.what, 'answers', exp.requirement, 'upgraded', `HTTP ${[...exp.errors].join('/')}`, 'HTTP 101'));
      const protocol = header(response, 'sec-websocket-protocol');
      // [TRN-15] [VER-6]
      if (protocol !== 'tickwire.v1') run.findings.push(finding('answers', 'TRN-15', 'a 101 answer that does not select tickwire.v1', 'Sec-WebSocket-Protocol: tickwire.v1', protocol ?? '(none)'));
      return;
    }
    judgeHttp(run, response, upgrade === true ? { ...exp, success: false, errors: new Set(['TEMPORARILY_UNAVAILABLE']) } : exp, text.startsWith('HEAD') ? 'HEAD' : 'GET');
  } finally {
    conn.close();
  }
}

/** Raw TCP: any HTTP answer must conform (ERR-1); a complete request written slowly gets its normal answer. */
async function tcp(lane: Lane, run: InputRun, steps: Step[]): Promise<void> {
  const host = new URL(lane.world.url).host;
  const fill = (b64: string) => Buffer.from(fillText(Buffer.from(b64, 'base64').toString('latin1'), withBindings(lane.bindings, { host })), 'latin1');
  if (steps[0] && 'upgrade' in steps[0]) {
    await tcpOverWebSocket(lane, run, steps);
    return;
  }
  const conn = await RawHttpConnection.open(lane.world.url, lane.timeoutMs);
  let reading = true;
  let slowRequest: Buffer | undefined;
  try {
    for (const step of steps) {
      if ('tcp' in step) conn.write(fill(step.tcp));
      else if ('slow' in step) {
        slowRequest = fill(step.slow);
        await conn.writeSlowly(slowRequest, step.gapMs);
      } else if ('wait' in step) await sleep(step.wait);
      else if ('stopReading' in step) {
        reading = false;
        conn.socket.pause();
      }
    }
    if (!reading) return;
    if (slowRequest) {
      // A complete request sent slowly gets exactly its normal answer.
      const text = slowRequest.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const [method = 'GET', target = '/'] = text.slice(0, text.indexOf('\r\n')).split(' ');
      const headers = text
        .slice(text.indexOf('\r\n') + 2, end)
        .split('\r\n')
        .map((line): [string, string] => [line.slice(0, line.indexOf(':')).trim(), line.slice(line.indexOf(':') + 1).trim()]);
      const body = Buffer.from(text.slice(end + 4), 'latin1');
      const exp = expectHttp({ method, target, headers, authorization: undefined, body: body.length > 0 ? body : undefined }, { limits: lane.world.limits, knownCredentials: (u, d, s) => knownCredentials(lane.world, u, d, s) });
      try {
        judgeHttp(run, await conn.response(method, lane.timeoutMs), exp, method);
      } catch (error) {
        run.findings.push(findingAbout(`${exp.what} written one byte at a time`, 'answers', exp.requirement, 'no HTTP answer', 'one HTTP response', (error as Error).message));
      }
      return;
    }
    // Garbage: the server may answer (conformingly) or just close; end our side and read what comes.
    conn.socket.end();
    await conn.untilEnd(Math.min(lane.timeoutMs, 2000));
    for (let i = 0; i < 4 && conn.unread.length > 0; i++) {
      let response: RawResponse;
      try {
        response = await conn.response('GET', 10);
      } catch {
        break;
      }
      run.answers.push(`http:${response.status}`);
      run.findings.push(...checkHttpResponse(response, { what: 'bytes that are not a well-formed request', requirement: 'ERR-1', success: false, route: undefined, errors: new Set(), lenient: true }, 'GET'));
    }
  } finally {
    conn.close();
  }
}

async function tcpOverWebSocket(lane: Lane, run: InputRun, steps: Step[]): Promise<void> {
  const first = steps[0] as { upgrade: true; hello?: boolean };
  const opened = await RawWebSocket.open(lane.world.url, { request: handshakeRequest(lane.world.url), timeoutMs: lane.timeoutMs });
  if (!opened.ok) {
    run.findings.push(finding('answers', 'TRN-15', 'a standard WebSocket upgrade was refused', 'HTTP 101', opened.response ? `HTTP ${opened.response.status}` : (opened.error ?? '')));
    opened.http.close();
    return;
  }
  const ws = opened.ws;
  try {
    if (first.hello) {
      const h = lane.world.herald;
      ws.sendText(Buffer.from(JSON.stringify({ type: 'hello', id: 'h', userId: h.userId, deviceId: h.deviceId, secret: h.secret })));
    }
    for (const step of steps.slice(1)) {
      if ('text' in step) ws.sendText(Buffer.from(fillText(step.text, lane.bindings), 'utf8'));
      else if ('tcp' in step) ws.write(Buffer.from(step.tcp, 'base64'));
      else if ('stopReading' in step) ws.stopReading();
      else if ('wait' in step) await sleep(step.wait);
    }
    // Whatever the server made of it, every frame it managed to send must still be a valid one.
    for (const m of ws.messages) {
      if (m.binary) run.findings.push(finding('answers', 'TRN-19', 'the server sent a binary message', 'text messages only', `${m.data.length} bytes`));
    }
  } finally {
    ws.destroy();
  }
}
