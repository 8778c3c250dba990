// What the fuzzer sends: one input is a small scenario of one class, written as a list of readable steps, so that a
// saved failure reads like a script (fast-check's commands, libsignal's fuzz actions) and replays against any server.
//
// Inputs never name a server's real ids. They carry placeholders that the executor fills from the identities it set up
// on the server under test (fuzz/world.ts): `@{victim.userId}` becomes the victim's userId, `@{#peer.deviceId}` the
// peer's deviceId as a JSON number, `@{id}` a request id unique to the step. The same file therefore replays on a
// fresh server, where every id differs.

/** A JSON value as the generators build it (placeholders are strings). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The classes of input. Where each runs:
 * - `frame`, `sequence`: frames on a long-lived authenticated session (one mutated frame; frames out of sequence);
 * - `fatal`: frames and WebSocket-level garbage on a fresh authenticated connection, expected to end it;
 * - `preauth`: frames on a new connection before (or instead of) `hello`;
 * - `handshake`: mutated and torn WebSocket opening handshakes;
 * - `http`: one HTTP request, mutated from the spec's routes and bodies;
 * - `tcp`: raw bytes, slow writers and connections that never read.
 */
export type InputClass = 'frame' | 'sequence' | 'fatal' | 'preauth' | 'handshake' | 'http' | 'tcp';
export const INPUT_CLASSES: readonly InputClass[] = ['frame', 'sequence', 'fatal', 'preauth', 'handshake', 'http', 'tcp'];

/** One WebSocket frame exactly as given, including what RFC 6455 forbids (reserved bits and opcodes, no mask). */
export interface WsFrameStep {
  fin: boolean;
  /** The three RSV bits, 0..7. */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Payload, base64. */
  payload: string;
  /** Announce this payload length instead of the real one (the rest of the connection is then garbage). */
  declaredLength?: number;
}

export interface HttpRequestStep {
  method: string;
  /** The request target exactly as written on the request line (no normalisation). */
  target: string;
  headers: Array<[string, string]>;
  /**
   * An Authorization header built at send time: `scheme` then, unless `plain`, the base64 of `credentials`, a template
   * such as `@{clerk.userId}.@{clerk.deviceId}:@{clerk.secret}` (AUT-5).
   */
  auth?: { scheme: string; credentials: string; plain?: boolean };
  /** Body text (placeholders filled), or `bodyBase64` for bytes that are not UTF-8. */
  body?: string;
  bodyBase64?: string;
  /** Leave Content-Length out (the request then has no body unless Transfer-Encoding says otherwise). */
  noContentLength?: boolean;
}

export type Step =
  /** A JSON value sent as one text message. */
  | { frame: Json }
  /** A text message exactly as given (placeholders filled). */
  | { text: string }
  /** A text message whose payload bytes are given (base64), valid UTF-8 or not. */
  | { textBytes: string }
  /** A binary message (base64). */
  | { binary: string }
  /** A text message split into fragments of these sizes (the last fragment takes the rest). */
  | { fragments: Json | string; sizes: number[]; pingBetween?: boolean }
  | { wsFrame: WsFrameStep }
  /** Raw bytes on the TCP connection (base64). */
  | { tcp: string }
  /** Raw bytes written one byte at a time, `gapMs` apart (a slow writer). */
  | { slow: string; gapMs: number }
  | { wait: number }
  /** Stop reading from the connection (a client that never reads); later steps still write. */
  | { stopReading: true }
  /** `tcp` class: perform a standard WebSocket handshake on the connection (and `hello` as herald); text steps after it are WebSocket messages. */
  | { upgrade: true; hello?: boolean }
  | { http: HttpRequestStep };

export interface FuzzInput {
  class: InputClass;
  /** One line saying what the input is (generator and mutation), for summaries and corpus file names. */
  title: string;
  steps: Step[];
}

export type Bindings = ReadonlyMap<string, string | number>;

const EXACT = /^@\{(#?)([A-Za-z0-9_.]+)\}$/;
const ANYWHERE = /@\{(#?)([A-Za-z0-9_.]+)\}/g;

/** The bound value; an unknown name (a mutation can make one) stays literal text. */
function lookup(bindings: Bindings, name: string, literal: string): string | number {
  return bindings.get(name) ?? literal;
}

/**
 * Sets an own member. A member named __proto__ is defined rather than assigned: the fuzzer sends it on purpose, and
 * assigning it would change the prototype of the object instead (JSON.parse makes it an own member too).
 */
export function setMember(target: { [key: string]: Json }, key: string, value: Json): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** Fills the placeholders of a JSON value: `"@{#x}"` becomes the number x, `"@{x}"` the string x, and embedded ones text. */
export function fill(value: Json, bindings: Bindings): Json {
  if (typeof value === 'string') {
    if (!value.includes('@{')) return value;
    const exact = EXACT.exec(value);
    if (exact && bindings.has(exact[2]!)) {
      const bound = lookup(bindings, exact[2]!, value);
      return exact[1] === '#' ? Number(bound) : String(bound);
    }
    return fillText(value, bindings);
  }
  if (Array.isArray(value)) return value.map((item) => fill(item, bindings));
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(value)) setMember(out, key, fill(value[key]!, bindings));
    return out;
  }
  return value;
}

/** Fills the placeholders inside a text: `@{#x}` and `@{x}` both become the bound value's text. */
export function fillText(text: string, bindings: Bindings): string {
  if (!text.includes('@{')) return text;
  return text.replace(ANYWHERE, (whole: string, _hash: string, name: string) => String(lookup(bindings, name, whole)));
}

/**
 * JSON text of a value whose numeric placeholders stay bare (`"deviceId":@{#peer.deviceId}`), so that text-level
 * mutations of it still fill in as numbers.
 */
export function templateText(value: Json): string {
  return JSON.stringify(value).replace(/"(@\{#[A-Za-z0-9_.]+\})"/g, '$1');
}

/** A copy of a JSON value (structuredClone would turn a __proto__ member into a prototype; this does not). */
export function cloneJson(value: Json): Json {
  if (Array.isArray(value)) return value.map(cloneJson);
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(value)) setMember(out, key, cloneJson(value[key]!));
    return out;
  }
  return value;
}

/** A short readable rendering of a step for reports (long payloads cut). */
export function describeStep(step: Step, max = 160): string {
  const cut = (text: string) => (text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text);
  if ('frame' in step) return `frame ${cut(JSON.stringify(step.frame))}`;
  if ('text' in step) return `text ${cut(JSON.stringify(step.text))}`;
  if ('textBytes' in step) return `text bytes ${cut(Buffer.from(step.textBytes, 'base64').toString('hex'))}`;
  if ('binary' in step) return `binary ${Buffer.from(step.binary, 'base64').length} bytes`;
  if ('fragments' in step) return `fragmented (${step.sizes.join('+')}${step.pingBetween ? ', pings between' : ''}) ${cut(typeof step.fragments === 'string' ? step.fragments : JSON.stringify(step.fragments))}`;
  if ('wsFrame' in step) {
    const f = step.wsFrame;
    return `ws frame fin=${f.fin ? 1 : 0} rsv=${f.rsv} opcode=${f.opcode} ${f.masked ? 'masked' : 'UNMASKED'} ${Buffer.from(f.payload, 'base64').length} bytes${f.declaredLength !== undefined ? ` declared ${f.declaredLength}` : ''}`;
  }
  if ('tcp' in step) return `tcp ${cut(JSON.stringify(Buffer.from(step.tcp, 'base64').toString('latin1')))}`;
  if ('slow' in step) return `slow (${step.gapMs} ms/byte) ${cut(JSON.stringify(Buffer.from(step.slow, 'base64').toString('latin1')))}`;
  if ('wait' in step) return `wait ${step.wait} ms`;
  if ('stopReading' in step) return 'stop reading';
  if ('upgrade' in step) return `WebSocket upgrade${step.hello ? ' and hello' : ''}`;
  const h = step.http;
  const auth = h.auth ? `; Authorization: ${h.auth.scheme} ${h.auth.plain ? '' : 'base64 '}${cut(h.auth.credentials)}` : '';
  return `http ${h.method} ${cut(h.target)} [${h.headers.map(([n, v]) => `${n}: ${cut(v)}`).join('; ')}${auth}]${h.body !== undefined ? ` body ${cut(JSON.stringify(h.body))}` : ''}${h.bodyBase64 !== undefined ? ` body bytes ${Buffer.from(h.bodyBase64, 'base64').length}` : ''}`;
}
