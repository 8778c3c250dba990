// What the spec allows as the answer to one WebSocket data message, computed from the message alone with the spec's
// own validators: the answers oracle then holds the server to it. Every rule cites the requirement it comes from.
//
// The expectation is exact where the spec is (a frame failing its schema gets INVALID_FRAME and nothing else, TRN-26;
// a binary message gets BINARY_NOT_SUPPORTED and 1003, TRN-23) and a set of allowed answers where the outcome depends
// on server state the fuzzer does not track (a valid `send` may be accepted, a duplicate, STALE_DEVICES, ...).
import { isUtf8 } from 'node:buffer';
import { checkClientFrame, type Limits } from '../../spec/index.ts';

export interface Expectation {
  /** What the message is, for reports: `send`, `invalid ack`, `malformed`, ... */
  what: string;
  /** The requirement the expected answer comes from. */
  requirement: string;
  /** The id the answer must echo, when the message carried a valid one [TRN-28] [ERR-2]. */
  echo: string | undefined;
  /** Whether exactly one answer must come (`required`), may come (`optional`), or none may (`none`). */
  answer: 'required' | 'optional' | 'none';
  /** Success frame types the answer may be. */
  success: readonly string[];
  /** Error codes the answer may carry. */
  errors: ReadonlySet<string>;
  /** Whether the connection must end after this message. */
  mustClose: boolean;
  /** Close codes allowed without a fatal error frame (RFC 6455 violations, TRN-21, TRN-25). */
  closes: ReadonlySet<number>;
  /** The message's JSON object, for checks of the answer's content (send_ok.messageId, welcome.userId, ...). */
  frame?: Record<string, unknown>;
  /** Whether the message may end the connection (the steps after it then expect nothing for sure). */
  mayClose: boolean;
}

export interface ExpectContext {
  limits: Limits;
  /** The connection has a session, or its hello has been sent with credentials that will succeed. */
  authenticated: boolean;
  /** Whether a hello with these credentials succeeds. */
  credentialsValid: (userId: unknown, deviceId: unknown, secret: unknown) => boolean;
  /** The text came from a text-level mutation: JSON parsers may legitimately differ on it (duplicate names, -0, ...). */
  lenient?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const NONE: ReadonlySet<number> = new Set();

/** The frame's id when it is one the server must echo: an own string member matching common.json#requestId [TRN-28]. */
export function validId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, 'id')) return undefined;
  const id = (value as { id?: unknown }).id;
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : undefined;
}

function base(what: string, requirement: string, partial: Partial<Expectation>): Expectation {
  return {
    what,
    requirement,
    echo: undefined,
    answer: 'required',
    success: [],
    errors: new Set(),
    mustClose: false,
    closes: NONE,
    mayClose: partial.mustClose ?? false,
    ...partial,
  };
}

/** [TRN-21] [TRN-22] A message over maxFrameBytes: close 1009, the FRAME_TOO_LARGE error frame optional. */
export function expectOversized(what: string): Expectation {
  return base(what, 'TRN-21', { answer: 'optional', errors: new Set(['FRAME_TOO_LARGE']), mustClose: true, closes: new Set([1009]) });
}

/** The answer to a message on a connection that has already ended, or will have by then: nothing [ERR-10]. */
export function afterClose(what: string): Expectation {
  return base(what, 'ERR-10', { answer: 'none' });
}

/** JSON text without insignificant whitespace, to tell whether a text is exactly what JSON.stringify writes. */
function minify(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') out += c;
  }
  return out;
}

/**
 * Whether JSON parsers may disagree about `text`: repeated member names (TRN-13 lets a server refuse them), numbers
 * written with a fraction or exponent, escapes of lone surrogates, a byte order mark. Text that JSON.stringify would
 * write byte for byte (whitespace aside) is unambiguous.
 */
export function ambiguousJson(text: string, value: unknown): boolean {
  if (text.charCodeAt(0) === 0xfeff) return true;
  if (/\\u[dD][89a-fA-F][0-9a-fA-F]{2}/.test(text)) return true;
  try {
    return minify(text) !== JSON.stringify(value);
  } catch {
    // Nesting too deep for JSON.stringify: only the fuzzer's own canonical deep arrays get here.
    return false;
  }
}

/**
 * The expectation for one data message (after reassembly of its fragments) [TRN-19]. `parsed`, when given, is the
 * value the payload is JSON.stringify's text of (the planner has it already; parsing it again would be wasted work).
 */
export function expectMessage(payload: Buffer, binary: boolean, ctx: ExpectContext, parsed?: { value: unknown }): Expectation {
  // [TRN-21] [TRN-22] Over maxFrameBytes: close 1009, the error frame optional. Checked before anything else, since
  // a server need not even read the rest of the message.
  if (payload.length > ctx.limits.maxFrameBytes) return expectOversized(`a ${payload.length}-byte message`);
  // [TRN-23] [AUT-11] Binary: BINARY_NOT_SUPPORTED and 1003, also before authentication.
  if (binary) return base('binary message', 'TRN-23', { errors: new Set(['BINARY_NOT_SUPPORTED']), mustClose: true });
  // [TRN-25] A text message that is not UTF-8: 1007, no Tickwire error.
  if (!parsed && !isUtf8(payload)) return base('text message that is not UTF-8', 'TRN-25', { answer: 'none', mustClose: true, closes: new Set([1007]) });
  const text = parsed ? '' : payload.toString('utf8');
  let value: unknown;
  if (parsed) value = parsed.value;
  else {
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
  }
  // [TRN-24] [AUT-11] Not a JSON object: MALFORMED_FRAME and 4400.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return base('text that is not a JSON object', 'TRN-24', { errors: new Set(['MALFORMED_FRAME']), mustClose: true });
  }
  const strict = ctx.authenticated ? expectOnSession(value as Record<string, unknown>, ctx) : expectBeforeHello(value as Record<string, unknown>, ctx);
  // JSON.stringify's own text is canonical but for the escapes of lone surrogates.
  const ambiguous = parsed ? /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/.test(payload.toString('latin1')) : ambiguousJson(text, value);
  if (!ctx.lenient || !ambiguous) return strict;
  // A parser may refuse what JSON.parse accepted: the answer may then be INVALID_FRAME (or, before hello,
  // UNAUTHENTICATED), or MALFORMED_FRAME with its close.
  const errors = new Set([...strict.errors, 'MALFORMED_FRAME', ctx.authenticated ? 'INVALID_FRAME' : 'UNAUTHENTICATED']);
  return { ...strict, what: `${strict.what} (ambiguous JSON)`, errors, answer: strict.answer === 'none' ? 'optional' : strict.answer, mustClose: false, mayClose: true, echo: strict.echo };
}

/** The first data message of a connection, before `hello` has succeeded (section 2.9). */
function expectBeforeHello(value: Record<string, unknown>, ctx: ExpectContext): Expectation {
  const check = checkClientFrame(value);
  const echo = validId(value);
  if (!check.ok || check.frame.type !== 'hello') {
    // [AUT-11] Any JSON object but a valid hello: UNAUTHENTICATED, close 4401.
    return base(`${typeof value['type'] === 'string' ? String(value['type']).slice(0, 40) : 'untyped'} before hello`, 'AUT-11', {
      echo,
      errors: new Set(['UNAUTHENTICATED']),
      mustClose: true,
      frame: value,
    });
  }
  const hello = check.frame;
  if (ctx.credentialsValid(hello.userId, hello.deviceId, hello.secret)) {
    // [AUT-13] welcome echoing the hello id.
    return base('hello', 'AUT-13', { echo, success: ['welcome'], frame: value });
  }
  // [AUT-12] Wrong credentials: AUTH_FAILED echoing the id, close 4401.
  return base('hello with wrong credentials', 'AUT-12', { echo, errors: new Set(['AUTH_FAILED']), mustClose: true, frame: value });
}

/** Codes a request may get from the server's own rules at any time [TRN-37] [ERR-11]. */
const REQUEST_ANYTIME = ['TOO_MANY_PENDING', 'RATE_LIMITED'];

function expectOnSession(value: Record<string, unknown>, ctx: ExpectContext): Expectation {
  const check = checkClientFrame(value);
  const echo = validId(value);
  if (!check.ok) {
    if (check.reason === 'unknown-type') {
      // [TRN-27] [TRN-28]
      return base(`unknown type ${JSON.stringify(check.type ?? '').slice(0, 40)}`, 'TRN-27', { echo, errors: new Set(['UNKNOWN_FRAME_TYPE']), frame: value });
    }
    // [TRN-26] [TRN-28] No string type, or failing its schema: INVALID_FRAME, nothing else.
    return base(check.reason === 'no-type' ? 'frame without a string type' : `invalid ${check.type}`, 'TRN-26', { echo, errors: new Set(['INVALID_FRAME']), frame: value });
  }
  const frame = check.frame;
  const limits = ctx.limits;
  switch (frame.type) {
    case 'hello':
      // [AUT-17] Non-fatal, the session unchanged.
      return base('hello on a session', 'AUT-17', { echo, errors: new Set(['ALREADY_AUTHENTICATED', 'TOO_MANY_PENDING']), frame: value });
    case 'ping':
      // [KAL-1]
      return base('ping', 'KAL-1', { echo, success: ['pong'], errors: new Set(REQUEST_ANYTIME), frame: value });
    case 'pong':
      // [KAL-15] No answer.
      return base('pong', 'KAL-15', { answer: 'none', frame: value });
    case 'send': {
      // [MSG-3] Frame constraints beyond the schema: INVALID_FRAME exactly when one is broken.
      const deviceIds = frame.envelopes.map((e) => e.deviceId);
      const broken =
        frame.envelopes.length > limits.maxDevicesPerUser ||
        new Set(deviceIds).size !== deviceIds.length ||
        frame.envelopes.some((e) => decodedLength(e.body) === 0);
      if (broken) return base('send breaking MSG-3', 'MSG-3', { echo, errors: new Set(['INVALID_FRAME', ...REQUEST_ANYTIME]), frame: value });
      // [MSG-2] Everything after step (1) depends on server state.
      return base('send', 'MSG-2', {
        echo,
        success: ['send_ok'],
        errors: new Set(['ENVELOPE_TOO_LARGE', 'UNKNOWN_USER', 'STALE_DEVICES', 'QUEUE_FULL', 'TEMPORARILY_UNAVAILABLE', ...REQUEST_ANYTIME]),
        frame: value,
      });
    }
    case 'receipt': {
      // [RCP-10]
      if (frame.messageIds.length > limits.maxReceiptIds) return base('receipt over maxReceiptIds', 'RCP-10', { echo, errors: new Set(['INVALID_FRAME', ...REQUEST_ANYTIME]), frame: value });
      return base('receipt', 'RCP-10', { echo, success: ['receipt_ok'], errors: new Set(['UNKNOWN_USER', 'UNKNOWN_DEVICE', 'QUEUE_FULL', 'TEMPORARILY_UNAVAILABLE', ...REQUEST_ANYTIME]), frame: value });
    }
    case 'subscribe_presence':
      // [PRS-3]
      if (frame.userIds.length > limits.maxPresenceBatch) return base('subscribe_presence over maxPresenceBatch', 'PRS-3', { echo, errors: new Set(['INVALID_FRAME', ...REQUEST_ANYTIME]), frame: value });
      return base('subscribe_presence', 'PRS-3', { echo, success: ['subscribed'], errors: new Set(['UNKNOWN_USER', 'TOO_MANY_SUBSCRIPTIONS', ...REQUEST_ANYTIME]), frame: value });
    case 'unsubscribe_presence':
      // [PRS-18] [PRS-9]
      if (frame.userIds.length > limits.maxPresenceBatch) return base('unsubscribe_presence over maxPresenceBatch', 'PRS-18', { echo, errors: new Set(['INVALID_FRAME', ...REQUEST_ANYTIME]), frame: value });
      return base('unsubscribe_presence', 'PRS-9', { echo, success: ['unsubscribed'], errors: new Set(REQUEST_ANYTIME), frame: value });
    case 'ack':
      // [DLV-13] Over maxAckBatch: INVALID_FRAME. [DLV-12] A seq not delivered on this session: INVALID_ACK, which the
      // fuzzer cannot predict (its session acknowledges deliveries concurrently). [TRN-31] No success answer.
      if ((frame.seqs?.length ?? 0) > limits.maxAckBatch) return base('ack over maxAckBatch', 'DLV-13', { echo, errors: new Set(['INVALID_FRAME']), frame: value });
      return base('ack', 'TRN-31', { echo, answer: 'optional', errors: new Set(['INVALID_ACK', 'TEMPORARILY_UNAVAILABLE']), frame: value });
    case 'typing':
      // [PRS-12] [PRS-13] UNKNOWN_USER, unless dropped by the rate limit; [TRN-31] no success answer.
      return base('typing', 'PRS-12', { echo, answer: 'optional', errors: new Set(['UNKNOWN_USER']), frame: value });
  }
}

/** Bytes a padded standard base64 string decodes to (the schema has checked its alphabet and padding). */
export function decodedLength(base64: string): number {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  return (base64.length / 4) * 3 - padding;
}

/**
 * The expectation for a raw WebSocket frame that RFC 6455 forbids (TRN-25): the server fails the connection with
 * 1002 (1007 for a Close frame whose reason is not UTF-8, 1009 for a length over maxFrameBytes), without a Tickwire
 * error code.
 */
export function expectViolation(what: string, closes: number[] = [1002]): Expectation {
  return base(what, 'TRN-25', { answer: 'none', mustClose: true, closes: new Set(closes) });
}
