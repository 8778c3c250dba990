// Requests that node:http's parser refuses before they reach the router: an unknown method token, a head too large,
// characters the parser does not take, an HTTP version it does not speak. Node's own answer is a bare status line
// without a body ("400 Bad Request", "431 Request Header Fields Too Large"), which breaks ERR-1 (every error response
// carries the registry's status and an error body) and, for a method the parser does not know, TRN-9 (a path that
// matches a route gets 405 with Allow). This listener answers them the protocol's way and closes the connection.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ProtocolError } from '../errors.ts';
import type { Logger } from '../context.ts';
import { errorBody, errorHeaders, JSON_CONTENT_TYPE } from './respond.ts';
import type { Router } from './router.ts';

/** RFC 9110 token: what a method may be. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** How long, and how far, the rest of a request line with an unknown method is waited for. */
const LINE_WAIT_MS = 2000;
const MAX_LINE = 8192;

interface Refusal {
  error: ProtocolError;
  allow?: readonly string[];
}

type ParserError = Error & { code?: string; rawPacket?: Buffer; bytesParsed?: number };

/** The protocol's answer to a request the parser refused with `code`; `line` is its request line, when known. */
export function refusalFor(code: string | undefined, line: string | undefined, router: Router): Refusal {
  if (code === 'HPE_INVALID_METHOD' && line !== undefined) {
    // A method Node does not know is still a method [TRN-9].
    const [method, target, version, ...rest] = line.split(' ');
    if (method && target && version && rest.length === 0 && TOKEN.test(method) && target.startsWith('/') && /^HTTP\/1\.[01]$/.test(version)) {
      const query = target.search(/[?#]/);
      const found = router.match(query < 0 ? target : target.slice(0, query));
      // [TRN-8] [TRN-9]
      if (!found) return { error: new ProtocolError('NOT_FOUND', 'no route for this path') };
      return { error: new ProtocolError('METHOD_NOT_ALLOWED', `${method} is not defined for this path`), allow: found.entry.allow };
    }
  }
  if (code === 'HPE_HEADER_OVERFLOW') return { error: new ProtocolError('BAD_REQUEST', 'the request head is too large') };
  // [TRN-6] [TRN-18] Anything else the parser cannot read is not a valid request.
  return { error: new ProtocolError('BAD_REQUEST', 'the request is not valid HTTP/1.1') };
}

function respond(socket: Duplex, refusal: Refusal, log: Logger, code: string | undefined): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { error, allow } = refusal;
  log.debug('http.client_error', { parser: code, answer: error.code });
  const body = JSON.stringify(errorBody(error));
  const headers: Record<string, string> = {
    'Content-Type': JSON_CONTENT_TYPE,
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    Connection: 'close',
    ...errorHeaders(error, allow),
  };
  const head = [`HTTP/1.1 ${error.httpStatus} ${STATUS_CODES[error.httpStatus] ?? ''}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  socket.on('error', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/** The 'clientError' listener of the HTTP server. */
export function clientErrorListener(router: Router, log: Logger): (error: ParserError, socket: Duplex) => void {
  return (error, socket) => {
    // A reset or a timeout leaves nobody to answer (Node's own 408 is not a registry code either).
    if (error.code === 'ECONNRESET' || error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (error.code !== 'HPE_INVALID_METHOD' || !error.rawPacket) {
      respond(socket, refusalFor(error.code, undefined, router), log, error.code);
      return;
    }
    // The buffer can hold earlier requests of the connection: the failing one starts where the previous one ended,
    // which is not always after a line break (a body ends where its Content-Length says). The parser stops within the
    // method, after the part of it that matched a method it knows ("PUT" of "PUTX"), so the method starts at the run
    // of token characters that ends there. A client that writes slowly may not have sent the rest of the line yet:
    // it is read (briefly, and only so far) before answering.
    const raw = error.rawPacket;
    const stop = Math.max(0, Math.min(error.bytesParsed ?? 0, raw.length));
    let start = stop;
    while (start > 0 && raw[start - 1] !== 0x0a && TOKEN.test(String.fromCharCode(raw[start - 1]!))) start--;
    let pending = raw.subarray(start);
    const answer = () => {
      const end = pending.indexOf('\r\n');
      respond(socket, refusalFor(error.code, end < 0 ? undefined : pending.subarray(0, end).toString('latin1'), router), log, error.code);
    };
    if (pending.includes('\r\n')) {
      answer();
      return;
    }
    socket.removeAllListeners('data');
    const finish = () => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      answer();
    };
    const onData = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.includes('\r\n') || pending.length > MAX_LINE) finish();
    };
    const timer = setTimeout(finish, LINE_WAIT_MS);
    socket.on('data', onData);
  };
}
