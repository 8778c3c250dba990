// The `http` class: one HTTP request built from spec/routes.json and the request examples of spec/examples/http, then
// mutated at every layer the server checks in TRN-11's order: the path and method (404, 405), the credentials (401),
// the body's size and media type (413, 415), path and query parameters and the body itself (400), and the endpoints'
// own checks. Requests authenticate as `clerk`, a user with one device, so that no mutation can delete a device the
// campaign needs; other users' ids appear in paths, credentials and bodies.
import { join } from 'node:path';
import { routes, type RouteSpec } from '../../spec/index.ts';
import { EXAMPLE_DIR, readJson } from '../../spec/schema-files.ts';
import { cloneJson, templateText, type FuzzInput, type HttpRequestStep, type Json } from '../input.ts';
import type { Rng } from '../random.ts';
import { ODD_STRINGS, mutateText, mutateTree } from './mutate.ts';

const CLERK = '@{clerk.userId}.@{clerk.deviceId}:@{clerk.secret}';

let bodies: Map<string, Json[]> | undefined;

/** Valid request bodies per request schema, from spec/examples/http. */
function requestBodies(): Map<string, Json[]> {
  if (bodies) return bodies;
  bodies = new Map();
  for (const route of routes) {
    if (!route.request) continue;
    const file = join(EXAMPLE_DIR, route.request);
    const data = readJson(file) as { valid: Array<{ value: Json }> };
    bodies.set(route.request, data.valid.map((e) => e.value).filter((v) => JSON.stringify(v).length < 16_384));
  }
  return bodies;
}

const CONTENT_TYPES: Array<readonly [number, string | undefined]> = [
  [12, 'application/json; charset=utf-8'],
  [3, 'application/json'],
  [1, 'APPLICATION/JSON; CHARSET=UTF-8'],
  [1, 'application/json;charset="utf-8"'],
  [1, 'application/json; charset=utf-8; boundary=x'],
  [1, undefined],
  [1, ''],
  [1, 'text/plain'],
  [1, 'application/json; charset=latin1'],
  [1, 'application/jsonx'],
  [1, 'application/x-www-form-urlencoded'],
  [1, 'application/json; charset=utf-8; charset=latin1'],
  [1, 'application/json; charset'],
  [1, ';;;'],
  [1, 'multipart/form-data; boundary=----x'],
];

function pathParam(name: string, rng: Rng): string {
  if (name === 'deviceId') {
    return rng.weighted<string>([
      [4, '@{clerk.deviceId}'],
      [3, '@{victim.deviceId}'],
      [2, rng.pick(['2', '3', '17', '2147483647'])],
      [3, rng.pick(['0', '01', '-1', '+1', '1.0', '1e0', '2147483648', '99999999999999999999', 'abc', '%31', 'link-codes', ' 1', '0x1', ''])],
    ]);
  }
  if (name === 'username') {
    return rng.weighted<string>([
      [3, '@{victim.username}'],
      [2, `nobody_${rng.int(0, 999)}`],
      [3, rng.pick(['ab', 'x'.repeat(33), 'UPPER', 'has space', 'a%20b', 'é', '..', '%2e%2e', 'a/b', ''])],
    ]);
  }
  // userId
  return rng.weighted<string>([
    [4, '@{victim.userId}'],
    [2, '@{clerk.userId}'],
    [1, '@{friend.userId}'],
    [2, rng.pick(['nobody_at_all_0', 'A', 'x'.repeat(64)])],
    [2, rng.pick(['x'.repeat(65), 'a.b', 'a%2Fb', '%41', '..', '', '@', 'é'])],
  ]);
}

function target(route: RouteSpec, rng: Rng): string {
  let path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => pathParam(name, rng));
  if (route.name === 'getPreKeyBundle' && rng.chance(0.5)) {
    path += rng.pick(['?deviceId=@{victim.deviceId}', '?deviceId=@{victim2.deviceId}', '?deviceId=99', '?deviceId=0', '?deviceId=01', '?deviceId=x', '?deviceId=1&deviceId=1', '?deviceId=', '?other=1', '?deviceId=@{victim.deviceId}&x=%ZZ']);
  } else if (rng.chance(0.05)) {
    path += rng.pick(['?', '?x=1', '?a=%ZZ', '?deviceId=1', '#frag']);
  }
  return path;
}

/** Changes to the request target that TRN-8 says must not be normalised away. */
function mutateTarget(path: string, rng: Rng): { target: string; name: string } {
  const ops: Array<readonly [number, () => string]> = [
    [2, () => `${path}/`],
    [1, () => path.replace('/v1/', '/v1//')],
    [1, () => path.replace('/v1/', '/v1/./')],
    [1, () => path.replace('/v1/', '/v2/../v1/')],
    [1, () => path.replace('/v1', '/V1')],
    [1, () => path.replace(/\/([a-z])/, (_, c: string) => `/%${c.charCodeAt(0).toString(16)}`)],
    [1, () => path.slice(0, -1)],
    [1, () => `${path}/extra`],
    [1, () => rng.pick(['/', '/v1', '/v1/', '/healthz/', '/metrics/', '/v1/unknown', '/favicon.ico', '/%00', '/v1/devices/link-codes/x'])],
    [1, () => `http://example.test${path}`],
    [1, () => `${path}${rng.pick(ODD_STRINGS).replace(/[\s\u0000]/g, '')}`],
  ];
  const target = rng.weighted(ops)();
  return { target, name: `target ${JSON.stringify(target).slice(0, 60)}` };
}

function authFor(route: RouteSpec, rng: Rng): { auth?: HttpRequestStep['auth']; name?: string } {
  const wanted = route.auth === 'device' ? 0.9 : 0.1;
  if (!rng.chance(wanted)) return { name: 'no credentials' };
  if (rng.chance(0.75)) return { auth: { scheme: 'Basic', credentials: CLERK } };
  const variants: Array<readonly [number, () => { auth: HttpRequestStep['auth']; name: string }]> = [
    [2, () => ({ auth: { scheme: rng.pick(['basic', 'BASIC', 'Bearer', 'Digest', '', 'Basic  ']), credentials: CLERK }, name: 'scheme variant' })],
    [2, () => ({ auth: { scheme: 'Basic', credentials: '@{victim.userId}.@{victim.deviceId}:@{clerk.secret}' }, name: "victim's id, clerk's secret" })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: '@{clerk.userId}.@{victim2.deviceId}:@{clerk.secret}' }, name: 'another deviceId' })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: '@{clerk.userId}.0@{clerk.deviceId}:@{clerk.secret}' }, name: 'deviceId with a leading zero' })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: '@{clerk.userId}.@{clerk.deviceId}:@{clerk.secret}x' }, name: 'wrong secret' })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: '@{clerk.userId}.@{clerk.deviceId}@{clerk.secret}' }, name: 'no colon' })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: '@{clerk.userId}:@{clerk.secret}' }, name: 'no deviceId' })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: '@{clerk.userId}.@{clerk.deviceId}:@{clerk.secret}:extra' }, name: 'extra colon' })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: CLERK, plain: true }, name: 'credentials not base64' })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: rng.pick(ODD_STRINGS) }, name: 'odd credentials' })],
    [1, () => ({ auth: { scheme: 'Basic', credentials: `${'x'.repeat(rng.pick([65, 4000]))}.1:@{clerk.secret}` }, name: 'huge userId' })],
  ];
  return rng.weighted(variants)();
}

function requestBody(route: RouteSpec, rng: Rng): { body?: string; bodyBase64?: string; name: string } {
  const candidates = route.request ? (requestBodies().get(route.request) ?? []) : [];
  let value: Json = candidates.length > 0 ? cloneJson(rng.pick(candidates)) : { any: 'body' };
  if (route.name === 'register' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    value['username'] = rng.chance(0.7) ? `fzr_${rng.string(10, 'abcdefghijklmnopqrstuvwxyz0123456789')}` : '@{victim.username}';
  }
  const r = rng.next();
  if (r < 0.15) return { body: templateText(value), name: 'valid body' };
  if (r < 0.7) {
    let name = '';
    for (let i = rng.int(1, 2); i > 0; i--) {
      const m = mutateTree(value, rng);
      value = m.value;
      name += `${name ? ', ' : ''}${m.name}`;
    }
    return { body: templateText(value), name: `body ${name}` };
  }
  if (r < 0.85) {
    const m = mutateText(templateText(value), rng);
    return { body: m.value, name: `body text ${m.name}` };
  }
  if (r < 0.9) return { body: '', name: 'empty body' };
  if (r < 0.95) return { bodyBase64: Buffer.concat([Buffer.from('{"username":"'), Buffer.from([0xff, 0xc0, 0x80]), Buffer.from('"}')]).toString('base64'), name: 'body not UTF-8' };
  const size = rng.pick([65_537, 262_145, 300_000]);
  return { body: `{"pad":"${'x'.repeat(size)}"}`, name: `body of ${size + 10} bytes` };
}

/** `http`: one mutated request to a route of spec/routes.json (or near one). */
export function httpInput(rng: Rng): FuzzInput {
  const route = rng.weighted(routes.filter((r) => r.name !== 'webSocket').map((r) => [r.request ? 3 : r.name === 'health' ? 1 : 2, r] as const));
  const names: string[] = [route.name];
  let method = route.method as string;
  if (rng.chance(0.1)) {
    method = rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'get', 'FOO', 'TRACE']);
    names.push(`method ${method}`);
  }
  let path = target(route, rng);
  if (rng.chance(0.1)) {
    const m = mutateTarget(path, rng);
    path = m.target;
    names.push(m.name);
  }
  const headers: Array<[string, string]> = [];
  const step: HttpRequestStep = { method, target: path, headers };
  const auth = authFor(route, rng);
  if (auth.auth) step.auth = auth.auth;
  if (auth.name) names.push(auth.name);
  const withBody = route.request ? rng.chance(0.95) : rng.chance(0.1);
  if (withBody) {
    const b = requestBody(route, rng);
    if (b.body !== undefined) step.body = b.body;
    if (b.bodyBase64 !== undefined) step.bodyBase64 = b.bodyBase64;
    names.push(b.name);
    const contentType = rng.weighted(CONTENT_TYPES);
    if (contentType !== undefined) headers.push(['Content-Type', contentType]);
    if (contentType !== 'application/json; charset=utf-8') names.push(`Content-Type ${JSON.stringify(contentType ?? null)}`);
  }
  if (rng.chance(0.05)) {
    const extra = rng.pick<[string, string]>([
      ['X-Fuzz', 'x'.repeat(rng.pick([100, 8000, 20_000]))],
      ['Accept', '*/*'],
      ['Connection', 'close'],
      ['X-Forwarded-For', '10.0.0.1'],
      ['Cookie', 'a=b'],
      ['X-Odd', 'é\u00ff'],
      ['Expect', '100-continue'],
    ]);
    headers.push(extra);
    names.push(`header ${extra[0]}`);
  }
  return { class: 'http', title: names.join('; '), steps: [{ http: step }] };
}
