// Protocol constants fixed by spec/PROTOCOL.md section 1 (Transport) and section 9 (Versioning).

/** The WebSocket subprotocol a client offers and a server selects [TRN]. */
export const WS_SUBPROTOCOL = 'tickwire.v1';
/** Every HTTP route of protocol version 1 lives under this prefix. */
export const API_PREFIX = '/v1';
/** The WebSocket endpoint, on the same origin as the HTTP API. */
export const WS_PATH = '/v1/ws';
