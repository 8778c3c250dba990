// Section 1.1, 1.2 and 1.7 of PROTOCOL.md: the HTTP API's routing, media types, body limits, parameter syntax,
// check order and error bodies. Every HTTP answer is also checked against its schema by the context (TRN-3, ERR-1).
import type { ConformanceCase } from '../case.ts';
import type { CaseContext, Device } from '../context.ts';
import { must } from '../expect.ts';

/** The limits the server applies to `device`, read from a `welcome` (LIM-5: HTTP requests get the same values). */
async function limitsOf(ctx: CaseContext, device: Device) {
  const session = await ctx.connect(device);
  const limits = session.limits;
  await session.close();
  return limits;
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
];
