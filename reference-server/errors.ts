// The one error type of the server: a protocol error with a stable code from spec/errors.json. Everything that
// answers a client (HTTP or WebSocket) turns failures into a ProtocolError, and the registry decides the HTTP status,
// whether a WebSocket session survives it, and the close code [ERR].
import { errorSpec, type ErrorCode } from '../spec/index.ts';

export interface ProtocolErrorOptions {
  details?: Record<string, unknown>;
  retryAfterMs?: number;
}

export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: ProtocolErrorOptions = {}) {
    super(message);
    if (!errorSpec(code)) throw new RangeError(`error code ${code} is not in spec/errors.json`);
    this.name = 'ProtocolError';
    this.code = code;
    this.details = options.details;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** HTTP status from the registry; 500 for a code that has none. */
  get httpStatus(): number {
    return errorSpec(this.code)?.httpStatus ?? 500;
  }

  /** Whether the WebSocket session closes after this error. */
  get fatal(): boolean {
    return errorSpec(this.code)?.fatal ?? false;
  }

  /** WebSocket close code for a fatal error. */
  get closeCode(): number | undefined {
    return errorSpec(this.code)?.closeCode;
  }

  /** The `error` member of an HTTP error body, or the fields of a WebSocket `error` frame. */
  toBody(): { code: ErrorCode; message: string; details?: Record<string, unknown>; retryAfterMs?: number } {
    return {
      code: this.code,
      message: this.message,
      ...(this.details === undefined ? {} : { details: this.details }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
    };
  }
}
