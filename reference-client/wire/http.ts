// The HTTP half of the wire client: calls the routes of spec/routes.json by name, with device credentials, and
// checks every answer body against the spec's schema for it (the success schema, or http/error.json).
import { routes, validate, type RouteSpec, type ValidationIssue } from '../../spec/index.ts';
import type { Credentials } from './connection.ts';

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or undefined for an empty body. */
  body: T;
  /** Schema problems with the body, empty when it validates (or when no schema applies). */
  issues: ValidationIssue[];
  /** The body exactly as received, before decoding (checks of the JSON text itself, TRN-13). */
  bytes?: Uint8Array;
}

export interface CallOptions {
  params?: Record<string, string | number>;
  query?: Record<string, string | number>;
  body?: unknown;
  credentials?: Credentials;
  /** Raw Authorization header (overrides credentials); negative tests use it. */
  authorization?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export function basicAuth(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.userId}.${credentials.deviceId}:${credentials.secret}`).toString('base64')}`;
}

export class HttpApi {
  constructor(readonly baseUrl: string) {}

  route(name: string): RouteSpec {
    const route = routes.find((r) => r.name === name);
    if (!route) throw new RangeError(`no route named ${name} in spec/routes.json`);
    return route;
  }

  /** Calls a route by name and validates the answer against the spec. */
  async call<T = unknown>(name: string, options: CallOptions = {}): Promise<HttpResult<T>> {
    const route = this.route(name);
    const path = route.path.replace(/\{(\w+)\}/g, (_, key: string) => {
      const value = options.params?.[key];
      if (value === undefined) throw new RangeError(`route ${name} needs parameter ${key}`);
      return encodeURIComponent(String(value));
    });
    const result = await this.raw<T>(route.method, path, options);
    const schema = result.status === route.success.status ? route.success.schema : result.status >= 400 ? 'http/error.json' : null;
    if (schema && !(result.status === 204)) {
      const check = validate(schema, result.body);
      if (!check.ok) result.issues = check.issues;
    } else if (result.status !== route.success.status && result.status < 400) {
      result.issues = [{ path: '', message: `unexpected status ${result.status}` }];
    }
    return result;
  }

  /** A raw request to any path (negative tests: unknown routes, wrong methods, malformed bodies). */
  async raw<T = unknown>(method: string, path: string, options: CallOptions = {}): Promise<HttpResult<T>> {
    const url = new URL(path, this.baseUrl);
    for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { ...options.headers };
    if (options.authorization !== undefined) headers['authorization'] = options.authorization;
    else if (options.credentials) headers['authorization'] = basicAuth(options.credentials);
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
    const bytes = new Uint8Array(await response.arrayBuffer());
    const text = new TextDecoder().decode(bytes);
    let parsed: unknown;
    const issues: ValidationIssue[] = [];
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
        issues.push({ path: '', message: 'body is not JSON' });
      }
    }
    return { status: response.status, headers: response.headers, body: parsed as T, issues, bytes };
  }
}
