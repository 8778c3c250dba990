// The answers oracle for HTTP: from the request bytes alone, which answer TRN-11's order of checks allows (routing
// 404/405, credentials 401, size 413, media type 415, parameters and body 400, then the endpoint's own outcomes), and
// whether the response the server sent is one of them, with the status, body, content type and headers the spec
// gives each code. Where the spec leaves room (percent-encoded paths, repeated member names, a malformed parameter
// of a media type) the expectation is lenient: any error the registry knows, with its own status, passes.
import { errorSpec, routes, validate, type Limits, type RouteSpec } from '../../spec/index.ts';
import { ambiguousJson } from './expect.ts';
import { findingAbout, show, type Finding } from './finding.ts';
import { header, type RawResponse } from '../raw-http.ts';
import { isUtf8 } from 'node:buffer';

export interface HttpRequestFacts {
  method: string;
  target: string;
  headers: Array<[string, string]>;
  /** The Authorization header value, if any. */
  authorization: string | undefined;
  body: Buffer | undefined;
}

export interface HttpExpectation {
  what: string;
  requirement: string;
  /** The route's success answer is allowed. */
  success: boolean;
  route: RouteSpec | undefined;
  /** Error codes allowed. */
  errors: ReadonlySet<string>;
  /** Only the registry's consistency is checked (the spec leaves the outcome open). */
  lenient: boolean;
  /** For 405: the methods Allow must list. */
  allow?: string[];
  /** The request is not well-formed HTTP/1.1 (RFC 9112): the server may also just close the connection. */
  mayDrop?: boolean;
}

export interface HttpContext {
  limits: Limits;
  /** Whether `userId.deviceId:secret` names a current device the fuzzer holds. */
  knownCredentials: (userId: string, deviceId: number, secret: string) => boolean;
}

const CONTENT_TYPE = 'application/json; charset=utf-8';
const ALWAYS = ['TEMPORARILY_UNAVAILABLE'];

interface PathEntry {
  template: string;
  segments: Array<{ literal: string } | { param: string }>;
  byMethod: Map<string, RouteSpec>;
}

let table: PathEntry[] | undefined;
function pathTable(): PathEntry[] {
  if (table) return table;
  table = [];
  for (const route of routes) {
    let entry = table.find((e) => e.template === route.path);
    if (!entry) {
      const segments = route.path.split('/').slice(1).map((s) => (s.startsWith('{') ? { param: s.slice(1, -1) } : { literal: s }));
      entry = { template: route.path, segments, byMethod: new Map() };
      table.push(entry);
    }
    entry.byMethod.set(route.method, route);
  }
  return table;
}

/** [TRN-8] The route table entry for a path, matched exactly; a literal segment wins over a parameter (section 1.7). */
function match(path: string): { entry: PathEntry; params: Map<string, string> } | undefined {
  const parts = path.split('/').slice(1);
  let best: { entry: PathEntry; params: Map<string, string>; score: string } | undefined;
  for (const entry of pathTable()) {
    if (entry.segments.length !== parts.length) continue;
    const params = new Map<string, string>();
    let score = '';
    let ok = true;
    entry.segments.forEach((segment, i) => {
      const part = parts[i]!;
      if ('literal' in segment) {
        if (segment.literal !== part) ok = false;
        score += '1';
      } else {
        if (part === '') ok = false;
        params.set(segment.param, part);
        score += '0';
      }
    });
    if (ok && (!best || score > best.score)) best = { entry, params, score };
  }
  return best;
}

function lenient(what: string, route?: RouteSpec): HttpExpectation {
  return { what, requirement: 'ERR-1', success: true, route, errors: new Set(), lenient: true };
}

/** RFC 9110 token characters (methods, header names). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 3986 characters of an origin-form request target, `%` included. */
const TARGET = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/;
/** Header values: visible ASCII, space, tab and obs-text; no other control characters (RFC 9110 5.5). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\uffff]*$/;
/** Heads larger than this may be refused by a server's HTTP layer (RFC 9110 leaves the limit to the server). */
const LARGE_HEAD = 8192;

/** Why a request is not well-formed HTTP/1.1, or undefined. A server answers 400 or closes the connection. */
function malformed(req: HttpRequestFacts): string | undefined {
  if (!TOKEN.test(req.method)) return `method ${JSON.stringify(req.method)} is not a token`;
  // A fragment is not part of a request target (RFC 9112 3.2); servers drop it or refuse it: that is left lenient.
  for (const [name, value] of req.headers) {
    if (!TOKEN.test(name)) return `header name ${JSON.stringify(name)}`;
    if (!FIELD_VALUE.test(value)) return `header ${name} has a control character`;
  }
  return undefined;
}

function error(what: string, requirement: string, codes: string[], route?: RouteSpec, allow?: string[]): HttpExpectation {
  return { what, requirement, success: false, route, errors: new Set([...codes, ...ALWAYS]), lenient: false, ...(allow ? { allow } : {}) };
}

const DEVICE_ID = /^[1-9][0-9]{0,9}$/;
function deviceIdOk(text: string): boolean {
  return DEVICE_ID.test(text) && Number(text) <= 2147483647;
}

/** [AUT-6] Whether an Authorization header names a current device; `undefined` when parsers may disagree. */
function credentialsValid(value: string | undefined, ctx: HttpContext): boolean | undefined {
  if (value === undefined) return false;
  const m = /^([A-Za-z]+) +([^ ]+) *$/.exec(value);
  if (!m || m[1]!.toLowerCase() !== 'basic') return /^[A-Za-z]+\s/.test(value) && /basic/i.test(value) ? undefined : false;
  const token = m[2]!;
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(token)) return undefined;
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const userPart = decoded.slice(0, colon);
  const secret = decoded.slice(colon + 1);
  const dot = userPart.lastIndexOf('.');
  if (dot < 0) return false;
  const userId = userPart.slice(0, dot);
  const deviceText = userPart.slice(dot + 1);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(userId) || !deviceIdOk(deviceText) || !/^[A-Za-z0-9_-]{43,128}$/.test(secret)) return false;
  return ctx.knownCredentials(userId, Number(deviceText), secret);
}

/** [TRN-5] `true` for an acceptable JSON media type, `false` for a refused one, `undefined` when unclear. */
function mediaTypeOk(value: string | undefined): boolean | undefined {
  if (value === undefined || value.trim() === '') return false;
  const [essence, ...params] = value.split(';');
  const type = essence!.trim().toLowerCase();
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+\/[a-z0-9!#$%&'*+.^_`|~-]+$/.test(type)) return false;
  if (type !== 'application/json') return false;
  const charsets: string[] = [];
  for (const param of params) {
    if (param.trim() === '') continue;
    const eq = param.indexOf('=');
    if (eq <= 0) return undefined;
    const name = param.slice(0, eq).trim().toLowerCase();
    let v = param.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (name === 'charset') charsets.push(v.toLowerCase());
  }
  if (charsets.length > 1) return charsets.every((c) => c === 'utf-8') ? true : undefined;
  return charsets.length === 0 || charsets[0] === 'utf-8';
}

/** Constraints of request bodies beyond their schemas [IDN-9] [PKY-5]. */
function bodyConstraintsBroken(route: RouteSpec, body: Record<string, unknown>, limits: Limits): boolean {
  const keys = route.name === 'uploadOneTimePreKeys' ? body['preKeys'] : (body['device'] as Record<string, unknown> | undefined)?.['oneTimePreKeys'];
  if (!Array.isArray(keys)) return false;
  if (keys.length > limits.prekeyBatchMax) return true;
  return new Set(keys.map((k: { keyId: number }) => k.keyId)).size !== keys.length;
}

/** What the spec allows as the answer to one HTTP request (TRN-11's order). */
export function expectHttp(raw: HttpRequestFacts, ctx: HttpContext): HttpExpectation {
  // RFC 9110 5.5: whitespace around a field value is not part of it.
  const req = { ...raw, headers: raw.headers.map(([n, v]): [string, string] => [n, v.trim()]), authorization: raw.authorization?.trim() };
  const broken = malformed(req);
  if (broken) return { what: `a malformed request: ${broken}`, requirement: 'ERR-1', success: false, route: undefined, errors: new Set(['BAD_REQUEST']), lenient: false, mayDrop: true };
  // Characters RFC 3986 does not allow in a target: a server may refuse the request or read it as it comes.
  const target = req.target.split('#')[0]!;
  if (target.startsWith('/') && !TARGET.test(target)) return { ...lenient(`request target ${JSON.stringify(req.target).slice(0, 60)} with characters RFC 3986 does not allow`), mayDrop: true };
  const exp = expectWellFormed(req, ctx);
  const head = req.headers.reduce((n, [name, value]) => n + name.length + value.length + 4, req.target.length + 20);
  // A very large head may be refused as a whole before any route is looked at.
  if (head > LARGE_HEAD && !exp.lenient) return { ...exp, errors: new Set([...exp.errors, 'BAD_REQUEST']), mayDrop: true };
  return exp;
}

function expectWellFormed(req: HttpRequestFacts, ctx: HttpContext): HttpExpectation {
  const target = req.target;
  if (!target.startsWith('/') || target.includes('#')) return lenient(`request target ${JSON.stringify(target).slice(0, 60)} (not origin-form)`);
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  // RFC 3986 normalisation may decode %XX and remove dot segments; the spec's exact matching leaves this open.
  if (path.includes('%') || /\/\.\.?(\/|$)/.test(path)) return lenient(`path ${JSON.stringify(path).slice(0, 60)} that normalisation could change`);
  // (1) Routing [TRN-8] [TRN-9].
  const found = match(path);
  if (!found) return error(`${req.method} ${path.slice(0, 60)}`, 'TRN-8', ['NOT_FOUND']);
  const route = found.entry.byMethod.get(req.method);
  if (!route) return error(`${req.method} on ${found.entry.template}`, 'TRN-9', ['METHOD_NOT_ALLOWED'], undefined, [...found.entry.byMethod.keys()]);
  const what = `${route.name}`;
  // GET /v1/ws without an upgrade [TRN-18].
  if (route.name === 'webSocket') return error('GET /v1/ws without an upgrade', 'TRN-18', ['BAD_REQUEST'], route);
  // (2) Credentials [AUT-7].
  if (route.auth === 'device') {
    const valid = credentialsValid(req.authorization, ctx);
    if (valid === undefined) return lenient(`${what} with credentials parsers may read differently`, route);
    if (!valid) return error(`${what} without valid credentials`, 'AUT-7', ['UNAUTHORIZED'], route);
  }
  const body = req.body ?? Buffer.alloc(0);
  if (route.request) {
    // (3) Size [TRN-7].
    if (body.length > ctx.limits.maxHttpBodyBytes) return error(`${what} with a ${body.length}-byte body`, 'TRN-7', ['PAYLOAD_TOO_LARGE'], route);
    // (4) Media type [TRN-5].
    if (body.length > 0) {
      const ok = mediaTypeOk(req.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1]);
      if (ok === undefined) return lenient(`${what} with a media type parsers may read differently`, route);
      if (!ok) return error(`${what} with a non-JSON Content-Type`, 'TRN-5', ['UNSUPPORTED_MEDIA_TYPE'], route);
    }
  }
  // (5) Path and query parameters [TRN-10].
  const params = found.params;
  for (const [name, text] of params) {
    const bad =
      (name === 'deviceId' && !deviceIdOk(text)) ||
      (name === 'userId' && !/^[A-Za-z0-9_-]{1,64}$/.test(text)) ||
      (name === 'username' && !/^[a-z0-9_]{3,32}$/.test(text));
    if (bad) return error(`${what} with ${name} ${JSON.stringify(text).slice(0, 40)}`, 'TRN-10', ['BAD_REQUEST'], route);
  }
  if (route.name === 'getPreKeyBundle' && query !== '') {
    let values: string[];
    try {
      values = new URLSearchParams(query).getAll('deviceId');
    } catch {
      return lenient(`${what} with an odd query`, route);
    }
    if (/%(?![0-9A-Fa-f]{2})/.test(query)) return lenient(`${what} with a malformed percent-encoding in the query`, route);
    if (values.length > 1 || (values.length === 1 && !deviceIdOk(values[0]!))) return error(`${what} with query deviceId ${JSON.stringify(values).slice(0, 40)}`, 'TRN-10', ['BAD_REQUEST'], route);
  }
  // (5) The body [TRN-6].
  const signed = route.name === 'register' || route.name === 'linkDevice' || route.name === 'putSignedPreKey';
  if (route.request) {
    const bad = (why: string) => error(`${what} with ${why}`, 'TRN-6', ['BAD_REQUEST'], route);
    if (body.length === 0) return bad('no body');
    if (!isUtf8(body)) return bad('a body that is not UTF-8');
    const text = body.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return bad('a body that is not JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('a body that is not an object');
    if (ambiguousJson(text, value)) return lenient(`${what} with JSON parsers may read differently`, route);
    if (!validate(route.request, value).ok) return bad(`a body failing ${route.request}`);
    if (bodyConstraintsBroken(route, value as Record<string, unknown>, ctx.limits)) return bad('too many or repeated prekeys (IDN-9, PKY-5)');
  }
  // (6) and (7): rate limits and the endpoint's own checks depend on server state. [IDN-10] [IDN-11] A server may
  // verify signatures, refusing a bad one with 400.
  const codes = route.errors.filter((c) => !['BAD_REQUEST', 'UNAUTHORIZED', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE'].includes(c));
  if (signed) codes.push('BAD_REQUEST');
  return { what, requirement: 'TRN-11', success: true, route, errors: new Set([...codes, ...ALWAYS]), lenient: false };
}

/** Checks one response against its expectation and the registry; returns what is wrong. */
export function checkHttpResponse(response: RawResponse, exp: HttpExpectation, method: string): Finding[] {
  const out: Finding[] = [];
  const f = (requirement: string, summary: string, expected?: string, actual?: string) => out.push(findingAbout(exp.what, 'answers', requirement, summary, expected, actual));
  const status = response.status;
  const hasBody = method !== 'HEAD' && response.body.length > 0;
  const bodyText = response.body.toString('utf8');
  let body: unknown;
  if (hasBody) {
    try {
      body = JSON.parse(bodyText);
    } catch {
      body = undefined;
    }
  }
  if (hasBody) {
    // [TRN-3] Every body is JSON with this content type.
    const type = header(response, 'content-type');
    if ((type ?? '').toLowerCase().replace(/\s+/g, '') !== CONTENT_TYPE.replace(/\s+/g, '')) f('TRN-3', `Content-Type ${JSON.stringify(type ?? null)}`, CONTENT_TYPE, type ?? '(none)');
    if (body === undefined) f('TRN-3', 'the body is not JSON', 'one JSON object', show(bodyText));
  }
  if (status >= 400) {
    // [ERR-1] The registry's status for the code, and the error body.
    if (!hasBody) {
      if (method !== 'HEAD') f('ERR-1', `HTTP ${status} without an error body`, 'a body { error: { code, message } }', `HTTP ${status}, empty body`);
      return out;
    }
    const check = validate('http/error.json', body);
    if (!check.ok) {
      f('ERR-1', 'the error body fails spec/schemas/http/error.json', 'a valid error body', show(body));
      return out;
    }
    const e = (body as { error: { code: string; retryAfterMs?: number; details?: Record<string, unknown> } }).error;
    const spec = errorSpec(e.code);
    if (!spec || !spec.transports.includes('http')) f('ERR-3', `error code ${e.code} is not an HTTP code of spec/errors.json`, 'a registry code', show(body));
    else if (spec.httpStatus !== status) f('ERR-1', `${e.code} came with HTTP ${status}`, `HTTP ${spec.httpStatus}`, `HTTP ${status}`);
    if (e.code === 'INTERNAL_ERROR') f('ERR-3', 'the server failed internally (HTTP 500)', 'an answer the spec gives this request', show(body));
    else if (!exp.lenient && !exp.errors.has(e.code)) f(exp.requirement, `got ${e.code}`, describeHttp(exp), `HTTP ${status} ${e.code}`);
    if (e.code === 'UNAUTHORIZED' && header(response, 'www-authenticate') !== 'Basic realm="tickwire"') {
      f('AUT-7', 'a 401 without the challenge', 'WWW-Authenticate: Basic realm="tickwire"', header(response, 'www-authenticate') ?? '(none)');
    }
    if (e.code === 'METHOD_NOT_ALLOWED' && exp.allow) {
      const allow = (header(response, 'allow') ?? '').split(',').map((m) => m.trim()).filter(Boolean).sort();
      if (allow.join(',') !== [...exp.allow].sort().join(',')) f('TRN-9', 'Allow lists other methods', exp.allow.join(', '), header(response, 'allow') ?? '(none)');
    }
    if (e.code === 'RATE_LIMITED') {
      // [ERR-4] [LIM-10]
      const retry = header(response, 'retry-after');
      if (e.retryAfterMs === undefined || e.retryAfterMs < 1) f('LIM-10', 'RATE_LIMITED without retryAfterMs >= 1', 'retryAfterMs >= 1', show(body));
      else if (retry !== String(Math.ceil(e.retryAfterMs / 1000))) f('ERR-4', 'Retry-After does not match retryAfterMs', String(Math.ceil(e.retryAfterMs / 1000)), retry ?? '(none)');
    }
    if (e.code === 'DUPLICATE_PREKEY_ID') {
      const ids = e.details?.['keyIds'];
      if (Array.isArray(ids) && ids.some((v, i) => i > 0 && (v as number) <= (ids[i - 1] as number))) f('ERR-5', 'details.keyIds not ascending', 'ascending keyIds', show(ids));
    }
    return out;
  }
  if (status === 101) {
    f('TRN-15', 'an HTTP request was upgraded', describeHttp(exp), 'HTTP 101');
    return out;
  }
  // A success answer.
  if (exp.lenient && !exp.route) {
    // The request may have reached any route: a success status with a JSON body (checked above) is all we can say.
    if (status < 200 || status > 299) f('ERR-1', `got HTTP ${status}`, describeHttp(exp), `HTTP ${status}`);
    return out;
  }
  if (!exp.success || !exp.route) {
    f(exp.requirement, `got HTTP ${status}`, describeHttp(exp), `HTTP ${status} ${show(bodyText, 120)}`);
    return out;
  }
  const route = exp.route;
  if (status !== route.success.status) {
    f(exp.requirement, `success with HTTP ${status}`, `HTTP ${route.success.status}`, `HTTP ${status}`);
    return out;
  }
  if (route.success.schema === null) {
    if (hasBody) f('TRN-3', `HTTP ${status} with a body`, 'no body', show(bodyText));
  } else if (method !== 'HEAD') {
    const check = validate(route.success.schema, body);
    if (!check.ok) f('TRN-3', `the body fails spec/schemas/${route.success.schema}`, 'a valid body', show(body));
  }
  return out;
}

export function describeHttp(exp: HttpExpectation): string {
  if (exp.lenient) return 'any registry error with its own status, or the success answer';
  if (exp.mayDrop && !exp.success) return `${[...exp.errors].map((code) => `${errorSpec(code)?.httpStatus ?? '?'} ${code}`).join(' or ')}, or the connection closed (${exp.requirement})`;
  const parts = [...exp.errors].map((code) => `${errorSpec(code)?.httpStatus ?? '?'} ${code}`);
  if (exp.success && exp.route) parts.unshift(`${exp.route.success.status}`);
  return `${parts.join(' or ')} (${exp.requirement})`;
}

/**
 * The expectation for a WebSocket upgrade request given as its text (TRN-11 order: route 404/405, then a valid
 * RFC 6455 request or 400 BAD_REQUEST [TRN-18], then the subprotocol or 400 UNSUPPORTED_SUBPROTOCOL [TRN-17]);
 * `upgrade` says whether a 101 is the expected answer.
 */
export function expectHandshake(text: string): { upgrade: boolean | 'maybe'; exp: HttpExpectation } {
  const [requestLine = '', ...lines] = text.split('\r\n');
  const parts = requestLine.split(' ');
  if (parts.length !== 3) return { upgrade: false, exp: lenient('a request line parsers may read differently') };
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method)) return { upgrade: false, exp: { what: `a malformed request: method ${JSON.stringify(method)} is not a token`, requirement: 'ERR-1', success: false, route: undefined, errors: new Set(['BAD_REQUEST']), lenient: false, mayDrop: true } };
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) return { upgrade: false, exp: lenient('a header line parsers may read differently') };
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  if (!/^HTTP\/1\.[01]$/.test(version)) return { upgrade: false, exp: lenient(`HTTP version ${version}`) };
  if (!target.startsWith('/') || target.includes('#') || target.includes('%')) return { upgrade: false, exp: lenient(`target ${target}`) };
  const path = target.split('?')[0]!;
  const found = match(path);
  if (!found) return { upgrade: false, exp: error(`upgrade at ${path}`, 'TRN-8', ['NOT_FOUND']) };
  const route = found.entry.byMethod.get(method);
  if (!route) return { upgrade: false, exp: error(`${method} upgrade`, 'TRN-9', ['METHOD_NOT_ALLOWED'], undefined, [...found.entry.byMethod.keys()]) };
  if (route.name !== 'webSocket') return { upgrade: false, exp: lenient(`upgrade request to ${route.name}`) };
  const tokens = (name: string, fold: boolean) =>
    (headers.get(name) ?? [])
      .join(',')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean)
      .map((t) => (fold ? t.toLowerCase() : t));
  const keys = headers.get('sec-websocket-key') ?? [];
  const key = keys.length === 1 ? keys[0]! : '';
  const versions = headers.get('sec-websocket-version') ?? [];
  const valid =
    version === 'HTTP/1.1' &&
    tokens('upgrade', true).includes('websocket') &&
    tokens('connection', true).includes('upgrade') &&
    /^[A-Za-z0-9+/]{22}==$/.test(key) &&
    Buffer.from(key, 'base64').length === 16 &&
    versions.length === 1 &&
    versions[0] === '13';
  if (!valid) return { upgrade: false, exp: error('an invalid RFC 6455 upgrade request', 'TRN-18', ['BAD_REQUEST'], route) };
  // RFC 6455 4.1: the offered subprotocols are unique tokens. Whether a server must refuse a list that is not is left
  // open (the client requirement is not one of the server's checks of 4.2.1), so both answers pass.
  const offered = (headers.get('sec-websocket-protocol') ?? []).join(',').split(',').map((t) => t.trim());
  const listOk = headers.has('sec-websocket-protocol') ? offered.every((t) => TOKEN.test(t)) && new Set(offered).size === offered.length : true;
  if (!offered.includes('tickwire.v1')) {
    return { upgrade: false, exp: error('an upgrade without tickwire.v1', 'TRN-17', listOk ? ['UNSUPPORTED_SUBPROTOCOL'] : ['UNSUPPORTED_SUBPROTOCOL', 'BAD_REQUEST'], route) };
  }
  // RFC 6455 4.2.1 asks for an Upgrade header that includes "websocket"; one that lists more is read either way.
  const upgradeExact = (headers.get('upgrade') ?? []).join(',').trim().toLowerCase() === 'websocket';
  if (!listOk || !upgradeExact) return { upgrade: 'maybe', exp: error('an upgrade request servers may read either way', 'TRN-18', ['BAD_REQUEST'], route) };
  return { upgrade: true, exp: { what: 'a valid upgrade', requirement: 'TRN-15', success: true, route, errors: new Set(ALWAYS), lenient: false } };
}
