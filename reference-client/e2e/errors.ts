// One error type for the E2E layer with the stable local codes of PROTOCOL.md 8.8.1. Callers and tests branch on
// `code`, never on the message text; messages never contain key material [E2E-11].

export const E2E_ERROR_CODES = [
  'E2E_INVALID_KEY',
  'E2E_INVALID_AGREEMENT',
  'E2E_BAD_SIGNATURE',
  'E2E_UNSUPPORTED_VERSION',
  'E2E_MALFORMED_MESSAGE',
  'E2E_BAD_MAC',
  'E2E_BAD_CIPHERTEXT',
  'E2E_DUPLICATE_MESSAGE',
  'E2E_TOO_FAR_AHEAD',
  'E2E_NO_SESSION',
  'E2E_STALE_SESSION',
  'E2E_UNKNOWN_PREKEY',
  'E2E_UNTRUSTED_IDENTITY',
] as const;

export type E2eErrorCode = (typeof E2E_ERROR_CODES)[number];

export class E2eError extends Error {
  readonly code: E2eErrorCode;

  constructor(code: E2eErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'E2eError';
    this.code = code;
  }
}

export function isE2eError(value: unknown, code?: E2eErrorCode): value is E2eError {
  return value instanceof E2eError && (code === undefined || value.code === code);
}
