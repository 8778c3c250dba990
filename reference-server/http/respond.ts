// Writing HTTP answers: JSON success bodies, error bodies from ProtocolError, and the headers some errors require.
// Every body the API writes goes through here, so the content type of [TRN-3] and the error shape of [ERR-1] are
// decided in one place.
import type { ServerResponse } from 'node:http';
import { ProtocolError } from '../errors.ts';

/** What an endpoint hands back to the router: a status and, for most routes, a JSON object to send. */
export interface ApiResponse {
  status: number;
  /** A JSON object; absent for 204 answers. */
  body?: object;
  /** A non-JSON body (only the operational `/metrics` endpoint uses it). */
  text?: { contentType: string; content: string };
  headers?: Record<string, string>;
}

/** [TRN-3] Every HTTP response with a body carries this content type. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The realm named in WWW-Authenticate on every 401 [AUT-7]. */
export const AUTH_CHALLENGE = 'Basic realm="tickwire"';

/** Error response body `{ error: { code, message, details?, retryAfterMs? } }` [ERR-1]. */
export function errorBody(error: ProtocolError): { error: ReturnType<ProtocolError['toBody']> } {
  return { error: error.toBody() };
}

/** The headers an error of this code requires besides the content type. */
export function errorHeaders(error: ProtocolError, allow?: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  // [AUT-7] The same challenge on every 401, whichever part of the credentials was wrong.
  if (error.code === 'UNAUTHORIZED') headers['WWW-Authenticate'] = AUTH_CHALLENGE;
  // [TRN-9] A 405 lists the methods defined for the path.
  if (error.code === 'METHOD_NOT_ALLOWED' && allow) headers['Allow'] = allow.join(', ');
  // [ERR-4] With 429, Retry-After is retryAfterMs / 1000 rounded up; a 503 may carry one too (section 7.1).
  if (error.retryAfterMs !== undefined && (error.code === 'RATE_LIMITED' || error.code === 'TEMPORARILY_UNAVAILABLE')) {
    headers['Retry-After'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
  }
  return headers;
}

/** Turns a ProtocolError into the response the router writes. */
export function errorResponse(error: ProtocolError, allow?: readonly string[]): ApiResponse {
  return { status: error.httpStatus, body: errorBody(error), headers: errorHeaders(error, allow) };
}

/** Writes `response` to `res`. Bodies are JSON (or the explicit text of `/metrics`); 204 answers carry none. */
export function writeResponse(res: ServerResponse, response: ApiResponse): void {
  for (const [name, value] of Object.entries(response.headers ?? {})) res.setHeader(name, value);
  res.setHeader('Cache-Control', 'no-store');
  if (response.text) {
    const payload = Buffer.from(response.text.content, 'utf8');
    res.writeHead(response.status, { 'Content-Type': response.text.contentType, 'Content-Length': payload.length });
    res.end(payload);
    return;
  }
  if (response.body === undefined) {
    res.writeHead(response.status);
    res.end();
    return;
  }
  const payload = Buffer.from(JSON.stringify(response.body), 'utf8');
  res.writeHead(response.status, { 'Content-Type': JSON_CONTENT_TYPE, 'Content-Length': payload.length });
  res.end(payload);
}
