// Turns the steps of one connection into wire payloads and their expectations, tracking what the connection's state
// will be: whether a hello has been sent that will succeed, whether a fragmented message is under way (RFC 6455
// 5.4), and whether an earlier step has ended (or may have ended) the connection [ERR-10].
import type { Limits } from '../spec/index.ts';
import { fill, fillText, type Bindings, type Step } from './input.ts';
import { afterClose, expectMessage, expectOversized, expectViolation, type Expectation } from './oracles/expect.ts';
import { OPCODE } from './raw-ws.ts';

/** What to put on the wire for one step: a whole message, a list of raw frames, or a pause. */
export type Wire =
  | { kind: 'message'; payload: Buffer; binary: boolean }
  | { kind: 'fragments'; payload: Buffer; sizes: number[]; pingBetween: boolean }
  | { kind: 'frame'; fin: boolean; rsv: number; opcode: number; masked: boolean; payload: Buffer; declaredLength?: number }
  | { kind: 'wait'; ms: number }
  | { kind: 'other'; step: Step };

export interface Planned {
  wire: Wire;
  /** Undefined for steps that expect nothing by themselves (waits, control frames that get a control answer). */
  exp: Expectation | undefined;
}

export interface PlanContext {
  limits: Limits;
  credentialsValid: (userId: unknown, deviceId: unknown, secret: unknown) => boolean;
  /** The connection already has a session (a lane session or a fresh one after its welcome). */
  authenticated: boolean;
}

/** Valid close codes a server must accept (RFC 6455 7.4.1 and 7.4.2; 1012 to 1014 are IANA-registered since). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

export class Planner {
  private authenticated: boolean;
  /** A hello has gone out whose outcome is the session's (before it, the first message decides). */
  private helloSent = false;
  private state: 'open' | 'maybe-closed' | 'closed' = 'open';
  private fragmenting = false;
  private fragments: Buffer[] = [];
  private fragmentBinary = false;

  constructor(private readonly ctx: PlanContext) {
    this.authenticated = ctx.authenticated;
    this.helloSent = ctx.authenticated;
  }

  /** Fills the step's placeholders and works out its expectation; `id` is this step's request id. */
  plan(step: Step, bindings: Bindings): Planned {
    if ('frame' in step) {
      const value = fill(step.frame, bindings);
      return this.message(Buffer.from(JSON.stringify(value), 'utf8'), false, { value });
    }
    if ('text' in step) return this.message(Buffer.from(fillText(step.text, bindings), 'utf8'), false);
    if ('textBytes' in step) return this.message(Buffer.from(step.textBytes, 'base64'), false);
    if ('binary' in step) return this.message(Buffer.from(step.binary, 'base64'), true);
    if ('fragments' in step) {
      const text = typeof step.fragments === 'string' ? fillText(step.fragments, bindings) : JSON.stringify(fill(step.fragments, bindings));
      const payload = Buffer.from(text, 'utf8');
      const planned = this.message(payload, false);
      return { wire: { kind: 'fragments', payload, sizes: step.sizes, pingBetween: step.pingBetween ?? false }, exp: planned.exp };
    }
    if ('wsFrame' in step) return this.frame(step.wsFrame.fin, step.wsFrame.rsv, step.wsFrame.opcode, step.wsFrame.masked, Buffer.from(step.wsFrame.payload, 'base64'), step.wsFrame.declaredLength);
    if ('wait' in step) return { wire: { kind: 'wait', ms: step.wait }, exp: undefined };
    return { wire: { kind: 'other', step }, exp: undefined };
  }

  private message(payload: Buffer, binary: boolean, parsed?: { value: unknown }): Planned {
    const wire: Wire = { kind: 'message', payload, binary };
    if (this.fragmenting) {
      // RFC 6455 5.4: a new data message inside a fragmented one.
      return { wire, exp: this.violation('a data message inside a fragmented one') };
    }
    return { wire, exp: this.judge(payload, binary, parsed) };
  }

  private judge(payload: Buffer, binary: boolean, parsed?: { value: unknown }): Expectation {
    if (this.state === 'closed') return afterClose('a message after the connection ended');
    const exp = expectMessage(
      payload,
      binary,
      {
        limits: this.ctx.limits,
        authenticated: this.authenticated,
        credentialsValid: this.ctx.credentialsValid,
        lenient: true,
      },
      parsed,
    );
    if (!this.helloSent) {
      this.helloSent = true;
      if (exp.success.includes('welcome')) this.authenticated = true;
    }
    return this.advance(exp);
  }

  /** Applies the state change an expectation implies, and weakens it when an earlier step may have ended things. */
  private advance(exp: Expectation): Expectation {
    let out = exp;
    if (this.state === 'maybe-closed') {
      out = { ...exp, answer: exp.answer === 'required' ? 'optional' : exp.answer, mustClose: false, mayClose: true };
    }
    if (exp.mustClose) this.state = this.state === 'open' ? 'closed' : this.state;
    else if (exp.mayClose && this.state === 'open') this.state = 'maybe-closed';
    return out;
  }

  private violation(what: string, closes: number[] = [1002]): Expectation {
    if (this.state === 'closed') return afterClose(what);
    return this.advance(expectViolation(what, closes));
  }

  private frame(fin: boolean, rsv: number, opcode: number, masked: boolean, payload: Buffer, declaredLength: number | undefined): Planned {
    const wire: Wire = { kind: 'frame', fin, rsv, opcode, masked, payload, ...(declaredLength === undefined ? {} : { declaredLength }) };
    const declared = declaredLength ?? payload.length;
    if (declared > this.ctx.limits.maxFrameBytes && (opcode === OPCODE.text || opcode === OPCODE.binary || opcode === OPCODE.continuation)) {
      // [TRN-21] The length alone is over the limit.
      if (this.state === 'closed') return { wire, exp: afterClose('an oversized frame') };
      return { wire, exp: this.advance(expectOversized(`a frame announcing ${declared} bytes`)) };
    }
    if (declared !== payload.length) {
      // The rest of the connection is read as this frame's payload: nothing definite follows.
      const exp = this.violation(`a frame announcing ${declared} bytes but carrying ${payload.length}`, [1002, 1007, 1009]);
      const loose: Expectation = { ...exp, mustClose: false, mayClose: true, answer: 'optional', errors: new Set(['FRAME_TOO_LARGE', 'MALFORMED_FRAME', 'BINARY_NOT_SUPPORTED', 'INVALID_FRAME', 'UNKNOWN_FRAME_TYPE']) };
      this.state = this.state === 'closed' ? 'closed' : 'maybe-closed';
      return { wire, exp: loose };
    }
    if (rsv !== 0) return { wire, exp: this.violation(`a frame with reserved bits ${rsv}`) };
    if (!masked) return { wire, exp: this.violation('an unmasked client frame') };
    if ((opcode >= 3 && opcode <= 7) || opcode >= 11) return { wire, exp: this.violation(`a frame with reserved opcode ${opcode}`) };
    if (opcode >= 8) {
      if (payload.length > 125 || !fin) return { wire, exp: this.violation(payload.length > 125 ? 'a control frame over 125 bytes' : 'a fragmented control frame') };
      if (opcode === OPCODE.close) return { wire, exp: this.close(payload) };
      // A valid ping or pong: the server answers a ping with a control pong, nothing else.
      return { wire, exp: undefined };
    }
    if (opcode === OPCODE.continuation && !this.fragmenting) return { wire, exp: this.violation('a continuation frame without a message under way') };
    if (opcode !== OPCODE.continuation && this.fragmenting) return { wire, exp: this.violation('a data frame inside a fragmented message') };
    if (opcode !== OPCODE.continuation) {
      this.fragments = [];
      this.fragmentBinary = opcode === OPCODE.binary;
    }
    this.fragments.push(payload);
    const total = this.fragments.reduce((n, f) => n + f.length, 0);
    if (total > this.ctx.limits.maxFrameBytes) {
      this.fragmenting = false;
      return { wire, exp: this.advance(expectOversized(`fragments adding up to ${total} bytes`)) };
    }
    if (!fin) {
      this.fragmenting = true;
      return { wire, exp: undefined };
    }
    this.fragmenting = false;
    return { wire, exp: this.judge(Buffer.concat(this.fragments), this.fragmentBinary) };
  }

  /** A Close frame from the client: a valid one is answered with a Close frame; an invalid one fails the connection. */
  private close(payload: Buffer): Expectation {
    if (this.state === 'closed') return afterClose('a Close frame after the end');
    if (payload.length === 1) return this.violation('a Close frame with a one-byte payload');
    if (payload.length >= 2) {
      const code = payload.readUInt16BE(0);
      if (!validCloseCode(code)) return this.violation(`a Close frame with code ${code}`);
      const reason = payload.subarray(2);
      if (!Buffer.from(reason.toString('utf8'), 'utf8').equals(reason)) return this.violation('a Close frame whose reason is not UTF-8', [1007, 1002]);
      // 1012 to 1014 are newer than RFC 6455: a server may also refuse them as invalid.
      const closes = code >= 1012 && code <= 1014 ? [code, 1000, 1002] : [code, 1000];
      this.state = 'closed';
      return { ...expectViolation(`a Close frame with code ${code}`, closes), requirement: 'TRN-25', answer: 'none' };
    }
    this.state = 'closed';
    return { ...expectViolation('an empty Close frame', [1000, 1005]), answer: 'none' };
  }
}
