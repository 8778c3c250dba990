// One error type for the messaging library, with stable string codes. Codes that mirror a server error use the
// spec's registry code (section 7.3); the others are local. Callers and tests branch on `code`, never on text.

export const CLIENT_ERROR_CODES = [
  'INVALID_ARGUMENT',
  'STATE_INVALID',
  'STATE_EXISTS',
  'NOT_CONNECTED',
  'CLOSED',
  'HTTP_FAILED',
  'REQUEST_FAILED',
  'BAD_BUNDLE',
  'UNTRUSTED_IDENTITY',
  'NO_RECIPIENT_DEVICES',
  'MESSAGE_TOO_LARGE',
  'AUTH_FAILED',
  'DEVICE_REMOVED',
  'SESSION_REPLACED',
] as const;

export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

export class ClientError extends Error {
  readonly code: ClientErrorCode;
  /** The server's error code when the failure came from the server (HTTP_FAILED). */
  readonly serverCode: string | undefined;
  readonly status: number | undefined;

  constructor(code: ClientErrorCode, message: string, extra: { serverCode?: string; status?: number } = {}) {
    super(`${code}: ${message}`);
    this.name = 'ClientError';
    this.code = code;
    this.serverCode = extra.serverCode;
    this.status = extra.status;
  }
}

export function isClientError(value: unknown, code?: ClientErrorCode): value is ClientError {
  return value instanceof ClientError && (code === undefined || value.code === code);
}

/** A short description of any thrown value, without stack traces (never key material: E2E errors carry none). */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : error.name, message: error.message };
  }
  return { code: 'UNKNOWN', message: String(error) };
}
