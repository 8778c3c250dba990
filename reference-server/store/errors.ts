// Errors the store raises. Each has a stable `code`; the server maps StoreUnavailableError to the protocol's
// TEMPORARILY_UNAVAILABLE answer and treats StoreCorruptError as a refusal to start.

export class StoreError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The data directory holds damage that recovery must not paper over (it would lose acknowledged records). */
export class StoreCorruptError extends StoreError {
  constructor(message: string) {
    super('STORE_CORRUPT', message);
  }
}

/** A write could not be made durable; nothing was promised to anyone, and the caller may retry later. */
export class StoreUnavailableError extends StoreError {
  constructor(message: string) {
    super('STORE_UNAVAILABLE', message);
  }
}
