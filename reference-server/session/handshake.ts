// The WebSocket opening handshake at GET /v1/ws (section 1.3): which upgrade requests the server refuses, and how.
// The checks run before `ws` sees the request, so that every refusal carries a Tickwire error body
// (spec/schemas/http/error.json) rather than the library's plain-text one.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProtocolError } from '../errors.ts';
import { WS_PATH, WS_SUBPROTOCOL } from '../../spec/index.ts';

export interface UpgradeRefusal {
  error: ProtocolError;
  headers?: Record<string, string>;
}

const KEY = /^[A-Za-z0-9+/]{22}==$/;

/** Comma-separated header tokens, lower-cased when `fold` is set; repeated headers are joined by Node already. */
function tokens(value: string | string[] | undefined, fold: boolean): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '')
    .map((token) => (fold ? token.toLowerCase() : token));
}

/** The subprotocols a request offers, in order [TRN-16]. */
export function offeredSubprotocols(req: IncomingMessage): string[] {
  return tokens(req.headers['sec-websocket-protocol'], false);
}

/**
 * Checks an upgrade request; undefined when the server may upgrade it. The order: the route (path, then method)
 * [TRN-11], a valid RFC 6455 upgrade request [TRN-18], then the subprotocol [TRN-17].
 */
export function checkUpgrade(req: IncomingMessage, accepting: boolean): UpgradeRefusal | undefined {
  // [TRN-8] Paths match exactly; the query string takes no part.
  const url = req.url ?? '';
  const query = url.indexOf('?');
  const path = query < 0 ? url : url.slice(0, query);
  if (path !== WS_PATH) return { error: new ProtocolError('NOT_FOUND', 'no route for this path') };
  // [TRN-9]
  if (req.method !== 'GET') return { error: new ProtocolError('METHOD_NOT_ALLOWED', 'only GET is defined for /v1/ws'), headers: { Allow: 'GET' } };
  // [TRN-18] A valid RFC 6455 (section 4.2.1) opening handshake.
  const key = req.headers['sec-websocket-key'];
  const valid =
    req.httpVersionMajor === 1 &&
    req.httpVersionMinor >= 1 &&
    // RFC 6455 4.2.1 (1): an HTTP/1.1 request with a Host header.
    req.headers.host !== undefined &&
    tokens(req.headers.upgrade, true).includes('websocket') &&
    tokens(req.headers.connection, true).includes('upgrade') &&
    typeof key === 'string' &&
    KEY.test(key) &&
    Buffer.from(key, 'base64').length === 16;
  if (!valid) return { error: new ProtocolError('BAD_REQUEST', 'not a valid WebSocket upgrade request') };
  if (req.headers['sec-websocket-version'] !== '13') {
    return { error: new ProtocolError('BAD_REQUEST', 'Sec-WebSocket-Version must be 13'), headers: { 'Sec-WebSocket-Version': '13' } };
  }
  // [TRN-17] The client must offer tickwire.v1; [VER-6] the server selects it among those offered.
  if (!offeredSubprotocols(req).includes(WS_SUBPROTOCOL)) {
    return { error: new ProtocolError('UNSUPPORTED_SUBPROTOCOL', `the Sec-WebSocket-Protocol header must offer ${WS_SUBPROTOCOL}`) };
  }
  if (!accepting) {
    return { error: new ProtocolError('TEMPORARILY_UNAVAILABLE', 'the server is shutting down', { retryAfterMs: 1000 }) };
  }
  return undefined;
}

/** Answers a refused upgrade with an HTTP error response and closes the socket without upgrading it [TRN-3]. */
export function refuseUpgrade(socket: Duplex, refusal: UpgradeRefusal): void {
  const status = refusal.error.httpStatus;
  const body = JSON.stringify({ error: refusal.error.toBody() });
  const headers: Record<string, string> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    ...(refusal.error.retryAfterMs === undefined ? {} : { 'Retry-After': String(Math.ceil(refusal.error.retryAfterMs / 1000)) }),
    ...refusal.headers,
  };
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  socket.on('error', () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
