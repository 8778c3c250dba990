// Request bodies: reading with a size cap, the media type check, JSON decoding and schema validation. The router
// calls these in the order of [TRN-11]: size (413), then media type (415), then JSON and schema (400).
import type { IncomingMessage } from 'node:http';
import { describeIssues, validate } from '../../spec/index.ts';
import { ProtocolError } from '../errors.ts';

/** Whether the request announces a body at all (a Content-Length above 0, or a transfer coding). */
export function announcesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length.trim() !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads the whole body, refusing with PAYLOAD_TOO_LARGE as soon as it is known to exceed `maxBytes` [TRN-7]: from
 * the Content-Length header before reading anything, or while streaming a chunked body. On refusal the rest of the
 * body is left unread; the caller answers and closes the connection.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => new ProtocolError('PAYLOAD_TOO_LARGE', `request body is longer than maxHttpBodyBytes (${maxBytes} bytes)`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && /^\d+$/.test(declared.trim()) && Number(declared.trim()) > maxBytes) {
    return Promise.reject(tooLarge());
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error: Error | undefined) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.pause();
        finish(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onError = (error: Error) => finish(error);
    const onAborted = () => finish(new Error('request aborted by the client'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

interface MediaType {
  type: string;
  params: Map<string, string>;
}

/** Parses a Content-Type value (RFC 9110 section 8.3.1): `type/subtype *( ";" name=value )`, value token or quoted. */
export function parseMediaType(value: string): MediaType | undefined {
  const [essence, ...rest] = value.split(';');
  const type = essence!.trim().toLowerCase();
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+\/[a-z0-9!#$%&'*+.^_`|~-]+$/.test(type)) return undefined;
  const params = new Map<string, string>();
  for (const part of rest) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const name = part.slice(0, eq).trim().toLowerCase();
    let paramValue = part.slice(eq + 1).trim();
    if (paramValue.startsWith('"') && paramValue.endsWith('"') && paramValue.length >= 2) {
      paramValue = paramValue.slice(1, -1).replace(/\\(.)/g, '$1');
    }
    // A repeated parameter is ambiguous; the first one is kept and a differing repeat makes the type unusable.
    if (params.has(name) && params.get(name)!.toLowerCase() !== paramValue.toLowerCase()) return undefined;
    params.set(name, paramValue);
  }
  return { type, params };
}

/**
 * [TRN-5] A body needs `application/json` (case-insensitive), with no charset or `charset=utf-8` (case-insensitive);
 * other parameters are ignored.
 */
export function checkMediaType(contentType: string | undefined): void {
  const refuse = (why: string) => new ProtocolError('UNSUPPORTED_MEDIA_TYPE', `${why}; send Content-Type: application/json; charset=utf-8`);
  if (contentType === undefined || contentType.trim() === '') throw refuse('the request has a body but no Content-Type');
  const parsed = parseMediaType(contentType);
  if (!parsed) throw refuse('the Content-Type cannot be parsed');
  if (parsed.type !== 'application/json') throw refuse(`media type ${parsed.type} is not supported`);
  const charset = parsed.params.get('charset');
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') throw refuse(`charset ${charset} is not supported`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes a JSON object body and validates it against `schema` (a path under spec/schemas) [TRN-6]. Members the
 * schema does not know are kept and ignored [ERR-15]. The message names the first problems, never the values.
 */
export function parseJsonBody<T>(bytes: Buffer, schema: string): T {
  if (bytes.length === 0) throw new ProtocolError('BAD_REQUEST', 'the request body is missing');
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    // [TRN-4] Bodies are UTF-8.
    throw new ProtocolError('BAD_REQUEST', 'the request body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError('BAD_REQUEST', 'the request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('BAD_REQUEST', 'the request body must be a JSON object');
  }
  const result = validate<T>(schema, value);
  if (!result.ok) {
    throw new ProtocolError('BAD_REQUEST', `the request body does not match ${schema}: ${describeIssues(result.issues)}`);
  }
  return result.value;
}

/**
 * The constraints a batch of one-time prekeys has beyond its schema: at most `prekeyBatchMax` entries and no keyId
 * twice [PKY-5] [IDN-9]. `where` names the member for the error message.
 */
export function checkPreKeyBatch(keys: ReadonlyArray<{ keyId: number }>, prekeyBatchMax: number, where: string): void {
  if (keys.length > prekeyBatchMax) {
    throw new ProtocolError('BAD_REQUEST', `${where} has ${keys.length} entries; prekeyBatchMax is ${prekeyBatchMax}`);
  }
  const seen = new Set<number>();
  for (const key of keys) {
    if (seen.has(key.keyId)) throw new ProtocolError('BAD_REQUEST', `${where} repeats keyId ${key.keyId}`);
    seen.add(key.keyId);
  }
}
