// The HTTP router, driven by spec/routes.json: path templates, parameters, and the fixed order of checks of
// [TRN-11]: (1) routing 404, 405; (2) device authentication 401; (3) body size 413; (4) media type 415; (5) path,
// query and body 400; (6) rate limits 429; (7) the endpoint's own checks. Endpoints supply only steps 5 (extra body
// constraints), 6 and 7; everything else happens here, once, for every route.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SCHEMA_BASE, validate, type RouteSpec } from '../../spec/index.ts';
import type { Counter, Histogram, Logger, Metrics } from '../context.ts';
import { ProtocolError } from '../errors.ts';
import { LATENCY_BUCKETS } from '../metrics.ts';
import { StoreError, StoreUnavailableError } from '../store/errors.ts';
import type { Store } from '../store/store.ts';
import { hold, type AuthFailures } from '../auth-throttle.ts';
import { authenticate, type Authenticated, type LastSeenBook } from './auth.ts';
import { announcesBody, checkMediaType, parseJsonBody, readBody } from './body.ts';
import { errorResponse, writeResponse, type ApiResponse } from './respond.ts';

/** A parameter of a route, as spec/routes.json lists it (RouteSpec in spec/registries.ts does not type it). */
export interface ParamSpec {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  /** `$id`-based reference, e.g. `https://schemas.tickwire.dev/v1/common.json#/$defs/deviceId`. */
  schema: string;
}

export type RouteWithParams = RouteSpec & { params?: ParamSpec[] };

/** Everything an endpoint gets once the router's checks have passed. */
export interface ApiRequest {
  route: RouteSpec;
  /** Path and query parameters after validation: integers for integer schemas, strings otherwise. */
  params: Record<string, string | number>;
  /** The authenticated device, for routes whose auth is `device` [AUT-8]. */
  auth: Authenticated | undefined;
  /** The body, valid against the route's request schema (undefined for routes without one). */
  body: unknown;
  /** The peer address of the TCP connection (the reference server does not trust forwarding headers). */
  sourceAddress: string;
  /** The time the request was admitted, from the server's clock. */
  now: number;
}

export interface Endpoint {
  /** The route's `name` in spec/routes.json. */
  route: string;
  /** Step 5: constraints on the body beyond its schema; throw BAD_REQUEST. */
  checkBody?(request: ApiRequest): void;
  /** Step 6: rate limits; throw RATE_LIMITED. */
  rateLimit?(request: ApiRequest): void | Promise<void>;
  /** Step 7: the endpoint's own checks and its work. */
  handle(request: ApiRequest): Promise<ApiResponse>;
}

export interface RouterDeps {
  store: Store;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  lastSeen: LastSeenBook;
  authThrottle: AuthFailures;
  maxHttpBodyBytes: () => number;
  /** True once a graceful shutdown began: unexpected failures are then answered 503 rather than 500. */
  closing: () => boolean;
}

type Segment = { literal: string } | { param: string };

interface PathEntry {
  template: string;
  segments: Segment[];
  byMethod: Map<string, RouteWithParams>;
  allow: string[];
}

/** Splits a path into segments without any decoding or normalisation [TRN-8]. */
function splitPath(path: string): string[] {
  return path.split('/').slice(1);
}

function compile(template: string): Segment[] {
  return splitPath(template).map((s) => (s.startsWith('{') && s.endsWith('}') ? { param: s.slice(1, -1) } : { literal: s }));
}

/** The request target's path and query, from origin-form (`/a?b`) or absolute-form (`http://h/a?b`). */
function splitTarget(url: string | undefined): { path: string; query: URLSearchParams } | undefined {
  if (url === undefined) return undefined;
  let target = url;
  if (!target.startsWith('/')) {
    try {
      const parsed = new URL(target);
      target = parsed.pathname + parsed.search;
    } catch {
      return undefined;
    }
  }
  const q = target.indexOf('?');
  // [TRN-8] The query string takes no part in matching.
  return q < 0 ? { path: target, query: new URLSearchParams() } : { path: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

/** Validates a parameter's text against its schema: as an integer when the schema takes one, else as a string. */
function parseParam(spec: ParamSpec, text: string): string | number | undefined {
  const path = spec.schema.startsWith(SCHEMA_BASE) ? spec.schema.slice(SCHEMA_BASE.length) : spec.schema;
  if (validate(path, text).ok) return text;
  // [TRN-10] Integers are decimal, without sign or leading zeros.
  if (/^(0|[1-9][0-9]{0,15})$/.test(text)) {
    const value = Number(text);
    if (validate(path, value).ok) return value;
  }
  return undefined;
}

export class Router {
  private readonly paths: PathEntry[] = [];
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly requests: Counter;
  private readonly errors: Counter;
  private readonly latency: Histogram;

  constructor(routes: readonly RouteWithParams[], endpoints: readonly Endpoint[], private readonly deps: RouterDeps) {
    for (const route of routes) {
      let entry = this.paths.find((p) => p.template === route.path);
      if (!entry) {
        entry = { template: route.path, segments: compile(route.path), byMethod: new Map(), allow: [] };
        this.paths.push(entry);
      }
      if (entry.byMethod.has(route.method)) throw new RangeError(`route ${route.method} ${route.path} is defined twice`);
      entry.byMethod.set(route.method, route);
      entry.allow.push(route.method);
      entry.allow.sort();
    }
    for (const endpoint of endpoints) {
      if (!routes.some((r) => r.name === endpoint.route)) throw new RangeError(`endpoint ${endpoint.route} names no route`);
      this.endpoints.set(endpoint.route, endpoint);
    }
    const missing = routes.filter((r) => !this.endpoints.has(r.name)).map((r) => r.name);
    if (missing.length > 0) throw new RangeError(`routes without an endpoint: ${missing.join(', ')}`);
    this.requests = deps.metrics.counter('tickwire_http_requests_total', 'HTTP requests answered, by route and status.');
    this.errors = deps.metrics.counter('tickwire_http_errors_total', 'HTTP error answers, by error code.');
    this.latency = deps.metrics.histogram('tickwire_http_request_duration_seconds', 'Time to answer an HTTP request, by route.', LATENCY_BUCKETS);
  }

  /**
   * Finds the path template for `path`. Where a literal segment and a parameter could both match, the literal wins:
   * `/v1/devices/link-codes` is never a `{deviceId}` (section 1.7). A parameter needs a non-empty segment.
   */
  match(path: string): { entry: PathEntry; values: Map<string, string> } | undefined {
    const parts = splitPath(path);
    let best: { entry: PathEntry; values: Map<string, string>; score: string } | undefined;
    for (const entry of this.paths) {
      if (entry.segments.length !== parts.length) continue;
      const values = new Map<string, string>();
      let score = '';
      let ok = true;
      entry.segments.forEach((segment, i) => {
        const part = parts[i]!;
        if ('literal' in segment) {
          if (segment.literal !== part) ok = false;
          score += '1';
        } else {
          if (part === '') ok = false;
          values.set(segment.param, part);
          score += '0';
        }
      });
      if (ok && (!best || score > best.score)) best = { entry, values, score };
    }
    return best && { entry: best.entry, values: best.values };
  }

  /** The `request` listener of the HTTP server. */
  listener = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    let routeName = 'unmatched';
    this.dispatch(req, res, (name) => (routeName = name))
      .catch((error: unknown) => this.failure(error, routeName))
      .then((response) => {
        if (res.headersSent || res.destroyed) return;
        writeResponse(res, response);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.requests.inc({ route: routeName, status: String(response.status) });
        this.latency.observe(seconds, { route: routeName });
        const body = response.body as { error?: { code?: string } } | undefined;
        if (body?.error?.code) this.errors.inc({ code: body.error.code });
        // Access log: method, route name, status and time only; never the path (it can name a user), a header or a
        // body [SEC-1] [SEC-2].
        this.deps.log.debug('http.request', { method: req.method, route: routeName, status: response.status, ms: Math.round(seconds * 1000) });
      })
      .catch((error: unknown) => {
        this.deps.log.error('http.write_failed', { error });
        res.destroy();
      });
  };

  private async dispatch(req: IncomingMessage, res: ServerResponse, named: (route: string) => void): Promise<ApiResponse> {
    // RFC 9112 3.2: an HTTP/1.1 request without Host is a bad request, whatever its path [TRN-6].
    if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && req.headers.host === undefined) throw new ProtocolError('BAD_REQUEST', 'an HTTP/1.1 request needs a Host header');
    // (1) Routing: 404, then 405 [TRN-8] [TRN-9].
    const target = splitTarget(req.url);
    const found = target && this.match(target.path);
    if (!target || !found) throw new ProtocolError('NOT_FOUND', 'no route for this path');
    const route = found.entry.byMethod.get(req.method ?? '');
    if (!route) {
      named('method_not_allowed');
      return errorResponse(new ProtocolError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not defined for this path`), found.entry.allow);
    }
    named(route.name);
    const endpoint = this.endpoints.get(route.name)!;
    const now = this.deps.now();

    // (2) Authentication of endpoints whose auth is `device` [AUT-7].
    const auth = route.auth === 'device' ? await this.authenticate(req, now) : undefined;

    // (3) Body size and (4) media type, for endpoints with a request schema [TRN-7] [TRN-5]; the others ignore the
    // body and its Content-Type [TRN-12].
    let bytes: Buffer | undefined;
    if (route.request) {
      try {
        bytes = await readBody(req, this.deps.maxHttpBodyBytes());
      } catch (error) {
        // Whatever is left of an oversized body is not read: close the connection after answering.
        if (error instanceof ProtocolError) res.setHeader('Connection', 'close');
        throw error;
      }
      if (bytes.length > 0 || announcesBody(req)) checkMediaType(req.headers['content-type']);
    } else {
      req.resume();
    }

    // (5) Path parameters, query parameters and body [TRN-10] [TRN-6].
    const params: Record<string, string | number> = {};
    for (const spec of (route as RouteWithParams).params ?? []) {
      let text: string | undefined;
      if (spec.in === 'path') text = found.values.get(spec.name);
      else {
        const all = target.query.getAll(spec.name);
        if (all.length > 1) throw new ProtocolError('BAD_REQUEST', `query parameter ${spec.name} is given more than once`);
        text = all[0];
      }
      if (text === undefined) {
        if (spec.required) throw new ProtocolError('BAD_REQUEST', `parameter ${spec.name} is required`);
        continue;
      }
      const value = parseParam(spec, text);
      if (value === undefined) throw new ProtocolError('BAD_REQUEST', `${spec.in} parameter ${spec.name} is not valid`);
      params[spec.name] = value;
    }
    const body = route.request ? parseJsonBody(bytes!, route.request) : undefined;
    const request: ApiRequest = { route, params, auth, body, sourceAddress: req.socket.remoteAddress ?? 'unknown', now };
    endpoint.checkBody?.(request);

    // (6) Rate limits, then (7) the endpoint's own checks.
    await endpoint.rateLimit?.(request);
    const response = await endpoint.handle(request);
    return this.checked(route, response);
  }

  /** [TRN-3] A success body must match the route's response schema; a mismatch is our bug, answered as a 500. */
  /** Step (2) [AUT-7]; a failure's 401 is held back as [SEC-8] asks once its address has failed often. */
  private async authenticate(req: IncomingMessage, now: number): Promise<Authenticated> {
    try {
      return await authenticate(req.headers.authorization, this.deps.store, now, this.deps.lastSeen);
    } catch (error) {
      if (error instanceof ProtocolError && error.code === 'UNAUTHORIZED') await hold(await this.deps.authThrottle.failed(req.socket.remoteAddress ?? 'unknown'));
      throw error;
    }
  }

  private checked(route: RouteSpec, response: ApiResponse): ApiResponse {
    if (response.status !== route.success.status || response.text) return response;
    const schema = route.success.schema;
    const ok = schema === null ? response.body === undefined : response.body !== undefined && validate(schema, response.body).ok;
    if (ok) return response;
    this.deps.log.error('http.response_invalid', { route: route.name, status: response.status });
    return errorResponse(new ProtocolError('INTERNAL_ERROR', 'the server produced an invalid answer'));
  }

  private failure(error: unknown, route: string): ApiResponse {
    if (error instanceof ProtocolError) return errorResponse(error);
    if (error instanceof StoreUnavailableError || (this.deps.closing() && error instanceof StoreError)) {
      // A 503 promises nothing; the client retries later [ERR] (section 7.1).
      this.deps.log.warn('http.store_unavailable', { route, error });
      return errorResponse(new ProtocolError('TEMPORARILY_UNAVAILABLE', 'the server cannot complete the request now', { retryAfterMs: 1000 }));
    }
    if (this.deps.closing()) {
      return errorResponse(new ProtocolError('TEMPORARILY_UNAVAILABLE', 'the server is shutting down', { retryAfterMs: 1000 }));
    }
    this.deps.log.error('http.internal_error', { route, error });
    return errorResponse(new ProtocolError('INTERNAL_ERROR', 'internal server error'));
  }
}
