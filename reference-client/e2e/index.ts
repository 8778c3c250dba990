// The E2E layer of the reference client: bytes in, bytes out (no sockets, no files).
export * from './bytes.ts';
export * from './constants.ts';
export * from './errors.ts';
export * from './random.ts';
export * from './keys.ts';
export * from './x25519.ts';
export * from './backend.ts';
export * from './xeddsa.ts';
export * from './kdf.ts';
export * from './cipher.ts';
export * from './envelope.ts';
export * from './ratchet.ts';
export * from './session.ts';
export * from './x3dh.ts';
export * from './session-cipher.ts';
export * from './memory-store.ts';
