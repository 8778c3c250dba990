// Section 1.1, 1.2, 1.7 and 1.9 of PROTOCOL.md: the HTTP API's routes, HTTP version, media types, body limits,
// parameter syntax, check order, error bodies, the JSON text of every answer, and plaintext only on loopback. Every
// HTTP answer is also checked against its schema by the context (TRN-3, ERR-1).
import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { routes, type LinkCodeResponse, type PreKeyCountResponse, type RegisterResponse } from '../../spec/index.ts';
import type { HttpResult } from '../../reference-client/wire/http.ts';
import { show, type ConformanceCase } from '../case.ts';
import type { CaseContext, Device } from '../context.ts';
import { must } from '../expect.ts';
import { freshUsername } from '../fixtures.ts';
import { jsonTextProblems } from '../json-text.ts';

/** The limits the server applies to `device`, read from a `welcome` (LIM-5: HTTP requests get the same values). */
async function limitsOf(ctx: CaseContext, device: Device) {
  const session = await ctx.connect(device);
  const limits = session.limits;
  await session.close();
  return limits;
}

/** Values of the right syntax for the path parameters of section 1.7 (TRN-10), naming nothing that exists. */
const SAMPLE_PARAMS: Record<string, string> = { userId: 'NoSuchUser0123', deviceId: '7', username: 'no_such_user' };

/** The HTTP version of the server's answer to `GET path` (fetch does not expose it). */
function httpVersionOf(base: string, path: string, timeoutMs: number): Promise<string> {
  const url = new URL(path, base);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.httpVersion);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to GET ${path} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** TRN-3 and TRN-13 on one answer: a body only with JSON in UTF-8 (the context checked its type and schema). */
function checkJsonText(result: HttpResult, what: string): void {
  const bytes = result.bytes ?? new Uint8Array(0);
  if (result.status === 204) {
    must.equal(bytes.length, 0, 'TRN-3', `the body of a 204 answer (${what})`);
    return;
  }
  must.hold(bytes.length > 0, 'TRN-3', 'a JSON object body', '(no body)', what);
  const problems = jsonTextProblems(bytes);
  must.hold(problems.length === 0, 'TRN-13', 'a UTF-8 JSON text without repeated names or non-integer numbers', `${problems.join('; ')} in ${Buffer.from(bytes).toString('utf8').slice(0, 300)}`, what);
}

/** Whether `address` (an IP literal) is a loopback address: 127.0.0.0/8, ::1, or IPv4-mapped 127.0.0.0/8. */
function isLoopback(address: string): boolean {
  const v4 = address.replace(/^::ffff:/i, '');
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return /^(0{0,4}:){7}0{0,3}1$|^::1$/i.test(address);
}

export const cases: ConformanceCase[] = [
  {
    id: '1.1/unknown-path-not-found',
    requirements: ['TRN-8', 'ERR-1'],
    level: 'must',
    title: 'a path that matches no route gets 404 NOT_FOUND, case-sensitively and without slash normalisation',
    async run(ctx) {
      for (const path of ['/v1/no-such-route', '/V1/accounts', '/v1/accounts/', '/v2/accounts', '/v1/devices/7/extra']) {
        must.httpError(await ctx.raw('GET', path), 404, 'NOT_FOUND', 'TRN-8', `GET ${path}`);
      }
      must.httpError(await ctx.raw('POST', '/v1/Accounts', { body: {} }), 404, 'NOT_FOUND', 'TRN-8', 'POST /v1/Accounts');
    },
  },
  {
    id: '1.1/wrong-method-not-allowed',
    requirements: ['TRN-9', 'TRN-11'],
    level: 'must',
    title: 'a method the path does not define gets 405 METHOD_NOT_ALLOWED with an Allow header, before authentication',
    async run(ctx) {
      const probes: Array<[string, string, string]> = [
        ['DELETE', '/v1/accounts', 'POST'],
        ['GET', '/v1/keys/signed', 'PUT'],
        ['DELETE', '/v1/devices/link-codes', 'POST'],
        ['GET', '/v1/devices/7', 'DELETE'],
        ['PUT', '/v1/devices', 'GET'],
      ];
      for (const [method, path, allowed] of probes) {
        const result = await ctx.raw(method, path);
        must.httpError(result, 405, 'METHOD_NOT_ALLOWED', 'TRN-9', `${method} ${path}`);
        const allow = (result.headers.get('allow') ?? '').split(',').map((m) => m.trim().toUpperCase());
        must.hold(allow.includes(allowed), 'TRN-9', `an Allow header listing ${allowed}`, result.headers.get('allow') ?? '(no Allow header)', `${method} ${path}`);
      }
    },
  },
  {
    id: '1.1/unsupported-media-type',
    requirements: ['TRN-5', 'TRN-11'],
    level: 'must',
    title: 'a body that is not application/json in UTF-8 gets 415 UNSUPPORTED_MEDIA_TYPE; type and charset compare case-insensitively',
    async run(ctx) {
      const body = { username: 'nobody_here', device: ctx.material.deviceRegistration() };
      for (const type of ['text/plain', 'application/xml', 'application/json; charset=iso-8859-1', 'application/json; charset=utf-16']) {
        must.httpError(await ctx.raw('POST', '/v1/accounts', { body, headers: { 'content-type': type } }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'TRN-5', `Content-Type: ${type}`);
      }
      // Accepted spellings must get past the media-type check: an invalid body then answers 400, not 415.
      for (const type of ['APPLICATION/JSON; CHARSET=UTF-8', 'application/json', 'application/json; foo=bar']) {
        must.httpError(await ctx.raw('POST', '/v1/accounts', { body: { username: 1 }, headers: { 'content-type': type } }), 400, 'BAD_REQUEST', 'TRN-5', `Content-Type: ${type}`);
      }
    },
  },
  {
    id: '1.1/malformed-body-bad-request',
    requirements: ['TRN-6'],
    level: 'must',
    title: 'a body that is not JSON, not an object, or fails the request schema gets 400 BAD_REQUEST',
    async run(ctx) {
      const bodies: Array<[string, string]> = [
        ['not JSON', '{"username": "abc",'],
        ['an array', '[1, 2, 3]'],
        ['a string', '"hello"'],
        ['missing device', JSON.stringify({ username: 'valid_name' })],
        ['bad username', JSON.stringify({ username: 'Not Valid!', device: ctx.material.deviceRegistration() })],
        ['empty', ''],
      ];
      for (const [what, body] of bodies) {
        const result = await ctx.raw('POST', '/v1/accounts', { body, headers: { 'content-type': 'application/json; charset=utf-8' } });
        must.httpError(result, 400, 'BAD_REQUEST', 'TRN-6', what);
      }
    },
  },
  {
    id: '1.1/payload-too-large',
    requirements: ['TRN-7', 'TRN-11'],
    level: 'must',
    title: 'a body longer than maxHttpBodyBytes gets 413 PAYLOAD_TOO_LARGE, checked before the media type',
    async run(ctx) {
      const user = await ctx.user();
      const { maxHttpBodyBytes } = await limitsOf(ctx, user.devices[0]!);
      const padding = 'x'.repeat(maxHttpBodyBytes + 1);
      const big = JSON.stringify({ username: 'too_big', device: ctx.material.deviceRegistration(), padding });
      must.httpError(await ctx.raw('POST', '/v1/accounts', { body: big }), 413, 'PAYLOAD_TOO_LARGE', 'TRN-7', `${big.length}-byte body`);
      must.httpError(await ctx.raw('POST', '/v1/accounts', { body: big, headers: { 'content-type': 'text/plain' } }), 413, 'PAYLOAD_TOO_LARGE', 'TRN-11', 'oversized text/plain body');
    },
  },
  {
    id: '1.1/bad-path-parameter',
    requirements: ['TRN-10'],
    level: 'must',
    title: 'a path parameter breaking its syntax gets 400 BAD_REQUEST',
    async run(ctx) {
      const user = await ctx.user();
      const credentials = user.devices[0]!;
      for (const id of ['0', '01', '-1', '2147483648', 'abc']) {
        must.httpError(await ctx.raw('DELETE', `/v1/devices/${id}`, { credentials }), 400, 'BAD_REQUEST', 'TRN-10', `DELETE /v1/devices/${id}`);
      }
      must.httpError(await ctx.raw('GET', '/v1/usernames/UPPER_case', { credentials }), 400, 'BAD_REQUEST', 'TRN-10', 'GET /v1/usernames/UPPER_case');
      must.httpError(await ctx.raw('GET', `/v1/users/${user.userId}/keys?deviceId=01`, { credentials }), 400, 'BAD_REQUEST', 'TRN-10', 'deviceId=01');
      must.httpError(await ctx.raw('GET', `/v1/users/${user.userId}/keys?deviceId=1&deviceId=2`, { credentials }), 400, 'BAD_REQUEST', 'TRN-10', 'deviceId repeated');
      // Query parameters an endpoint does not define are ignored.
      must.status(await ctx.raw('GET', '/v1/devices?unknown=1&unknown=2', { credentials }), 200, 'TRN-10', 'undefined query parameters');
    },
  },
  {
    id: '1.1/authentication-before-body-checks',
    requirements: ['TRN-11', 'AUT-7'],
    level: 'must',
    title: 'on a device endpoint, missing credentials get 401 before body size, media type and body checks',
    async run(ctx) {
      must.httpError(await ctx.raw('PUT', '/v1/keys/signed', { body: 'not json', headers: { 'content-type': 'text/plain' } }), 401, 'UNAUTHORIZED', 'TRN-11', 'bad body without credentials');
      must.httpError(await ctx.raw('DELETE', '/v1/devices/0'), 401, 'UNAUTHORIZED', 'TRN-11', 'bad parameter without credentials');
    },
  },
  {
    id: '1.1/body-ignored-without-schema',
    requirements: ['TRN-12', 'IDN-14'],
    level: 'must',
    title: 'an endpoint without a request schema ignores the body and its Content-Type',
    async run(ctx) {
      const user = await ctx.user();
      const result = await ctx.raw('POST', '/v1/devices/link-codes', { credentials: user.devices[0]!, body: '<not json/>', headers: { 'content-type': 'text/xml' } });
      must.status(result, 201, 'TRN-12', 'POST /v1/devices/link-codes with an XML body');
    },
  },
  {
    id: '1.1/health-probe',
    requirements: ['TRN-2'],
    level: 'should',
    title: 'GET /healthz answers 200 {"status":"ok"}',
    async run(ctx) {
      const result = await ctx.http('health');
      must.status(result, 200, 'TRN-2');
      must.equal(result.body, { status: 'ok' }, 'TRN-2');
    },
  },
  {
    id: '1.2/malformed-key-bad-request',
    requirements: ['TRN-14', 'TRN-6'],
    level: 'must',
    title: 'a public key that is not 33 bytes starting with 0x05, or a signature that is not 64 bytes, gets 400',
    async run(ctx) {
      const m = ctx.material;
      const variants: Array<[string, (d: ReturnType<typeof m.deviceRegistration>) => void]> = [
        ['32-byte identity key', (d) => void (d.identityKey = Buffer.concat([Buffer.from([5]), m.rng.bytes(31)]).toString('base64'))],
        ['identity key starting 0x06', (d) => void (d.identityKey = Buffer.concat([Buffer.from([6]), m.rng.bytes(32)]).toString('base64'))],
        ['34-byte signed prekey', (d) => void (d.signedPreKey.publicKey = Buffer.concat([Buffer.from([5]), m.rng.bytes(33)]).toString('base64'))],
        ['63-byte signature', (d) => void (d.signedPreKey.signature = m.rng.bytes(63).toString('base64'))],
      ];
      for (const [what, spoil] of variants) {
        const device = m.deviceRegistration();
        spoil(device);
        must.httpError(await ctx.http('register', { body: { username: `bad_key_${m.rng.int(1, 1e9)}`, device } }), 400, 'BAD_REQUEST', 'TRN-14', what);
      }
    },
  },
  {
    id: '1.1/routes-served-over-http-1-1',
    requirements: ['TRN-1', 'TRN-11'],
    level: 'must',
    title: 'every endpoint of section 1.7 is served under /v1/ over HTTP/1.1: none answers 404 or 405',
    async run(ctx) {
      for (const route of routes) {
        if (route.path === '/healthz') continue; // outside /v1/ (TRN-2)
        must.hold(route.path.startsWith('/v1/'), 'TRN-1', 'a route under /v1/', route.path);
        const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => SAMPLE_PARAMS[name] ?? 'x');
        const what = `${route.method} ${path} without credentials${route.request ? ' and with an empty object as body' : ''}`;
        const result = await ctx.raw(route.method, path, route.request ? { body: {} } : {});
        must.hold(result.status !== 404 && result.status !== 405, 'TRN-1', `the route ${route.method} ${route.path}`, `HTTP ${result.status} ${show(result.body)}`, what);
        // TRN-11: authentication (401) comes before every body check; an empty object fails every request schema
        // (400), and so does a GET /v1/ws that is no upgrade (TRN-18).
        if (route.auth === 'device') must.httpError(result, 401, 'UNAUTHORIZED', 'TRN-11', what);
        else must.httpError(result, 400, 'BAD_REQUEST', 'TRN-11', what);
      }
      const version = await httpVersionOf(ctx.url, '/v1/devices', ctx.remaining()).catch((error: Error) => must.fail('TRN-1', 'an HTTP/1.1 answer to GET /v1/devices', error.message));
      must.equal(version, '1.1', 'TRN-1', 'HTTP version of the answer to an HTTP/1.1 request');
    },
  },
  {
    id: '1.1/every-answer-is-one-json-object',
    requirements: ['TRN-3', 'TRN-13', 'ERR-1'],
    level: 'must',
    title: 'every HTTP answer with a body is one JSON object in UTF-8, typed application/json; charset=utf-8; 204 answers have none',
    async run(ctx) {
      // The context checks each answer's Content-Type and schema (TRN-3, ERR-1); this case adds the JSON text
      // itself (TRN-13) and the empty body of 204 answers, over every route and the usual errors.
      const answers: Array<[string, HttpResult]> = [];
      const keep = <T>(what: string, result: HttpResult<T>): HttpResult<T> => {
        answers.push([what, result as HttpResult]);
        return result;
      };
      const username = freshUsername('json');
      // A device name outside ASCII, so that the device list carries multi-byte UTF-8.
      const registration = ctx.material.deviceRegistration('Zoë’s 📱 phone', 2);
      const registered = keep('register', await ctx.http<RegisterResponse>('register', { body: { username, device: registration } }));
      must.status(registered, 201, 'IDN-6');
      const first = { userId: registered.body.userId, deviceId: registered.body.deviceId, secret: registration.secret };
      const code = keep('createLinkCode', await ctx.http<LinkCodeResponse>('createLinkCode', { credentials: first }));
      must.status(code, 201, 'IDN-14');
      const linked = keep('linkDevice', await ctx.http<{ deviceId: number }>('linkDevice', { body: { linkCode: code.body.code, device: ctx.material.deviceRegistration('второй') } }));
      must.status(linked, 201, 'IDN-16');
      keep('listDevices', await ctx.http('listDevices', { credentials: first }));
      keep('lookupUser', await ctx.http('lookupUser', { params: { username }, credentials: first }));
      keep('uploadOneTimePreKeys', await ctx.http('uploadOneTimePreKeys', { body: { preKeys: [{ keyId: 10, publicKey: ctx.material.publicKey() }] }, credentials: first }));
      const counted = keep('getPreKeyCount', await ctx.http<PreKeyCountResponse>('getPreKeyCount', { credentials: first }));
      keep('putSignedPreKey', await ctx.http('putSignedPreKey', { body: { signedPreKey: ctx.material.signedPreKey(registration.identityKey, counted.body.signedPreKeyId + 1) }, credentials: first }));
      keep('getPreKeyBundle', await ctx.http('getPreKeyBundle', { params: { userId: registered.body.userId }, credentials: first }));
      keep('deleteDevice', await ctx.http('deleteDevice', { params: { deviceId: linked.body.deviceId }, credentials: first }));
      keep('health', await ctx.http('health'));
      keep('409 USERNAME_TAKEN', await ctx.http('register', { body: { username, device: ctx.material.deviceRegistration() } }));
      keep('403 INVALID_LINK_CODE', await ctx.http('linkDevice', { body: { linkCode: code.body.code, device: ctx.material.deviceRegistration() } }));
      keep('401 UNAUTHORIZED', await ctx.http('listDevices'));
      keep('404 NOT_FOUND', await ctx.raw('GET', '/v1/nothing-here'));
      keep('405 METHOD_NOT_ALLOWED', await ctx.raw('GET', '/v1/accounts'));
      keep('415 UNSUPPORTED_MEDIA_TYPE', await ctx.raw('POST', '/v1/accounts', { body: '{}', headers: { 'content-type': 'text/plain' } }));
      keep('400 BAD_REQUEST', await ctx.raw('POST', '/v1/accounts', { body: '{"username":' }));
      for (const [what, result] of answers) checkJsonText(result, what);
    },
  },
  {
    id: '1.9/plaintext-only-on-loopback',
    requirements: ['TRN-38'],
    level: 'must',
    title: 'the API and the WebSocket are served in plaintext only on a loopback address; over https the WebSocket is wss',
    async run(ctx) {
      const url = new URL(ctx.url);
      const user = await ctx.user();
      const session = await ctx.connect(user.devices[0]!);
      const wsProtocol = new URL(session.conn.socket.url).protocol;
      if (url.protocol === 'https:') {
        must.equal(wsProtocol, 'wss:', 'TRN-38', 'the scheme of the WebSocket of an https deployment');
        return;
      }
      // A plaintext URL that is not loopback is one this suite reached from outside the loopback interface: the
      // deployment serves plaintext to other hosts.
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
      ctx.note(`${url.host} resolves to ${addresses.join(', ')}; the WebSocket runs over ${wsProtocol}`);
      const exposed = addresses.filter((a) => !isLoopback(a));
      must.hold(addresses.length > 0 && exposed.length === 0, 'TRN-38', 'https, or plaintext http on a loopback address only', `${ctx.url} (non-loopback: ${exposed.join(', ')})`);
    },
  },
];
