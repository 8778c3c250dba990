// Sections 2.7 to 2.9 of PROTOCOL.md: HTTP Basic authentication, impersonation, and the WebSocket handshake
// (hello/welcome, AUTH_FAILED, UNAUTHENTICATED, ALREADY_AUTHENTICATED, receiveMax, hello timeout).
import { limits as limitSpecs } from '../../spec/index.ts';
import { basicAuth } from '../../reference-client/wire/http.ts';
import type { ConformanceCase } from '../case.ts';
import { as, must } from '../expect.ts';
import { expectFatal } from './1-transport-websocket.ts';

const WWW_AUTHENTICATE = 'Basic realm="tickwire"';

export const cases: ConformanceCase[] = [
  {
    id: '2.8/unauthorized-answers-identical',
    requirements: ['AUT-7', 'AUT-6'],
    level: 'must',
    title: 'missing, malformed, unknown and wrong credentials all get the same 401 UNAUTHORIZED with WWW-Authenticate',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const encode = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
      const variants: Array<[string, string | undefined]> = [
        ['no Authorization header', undefined],
        ['not Basic', `Bearer ${device.secret}`],
        ['not base64 credentials', 'Basic !!!'],
        ['no dot in the user part', encode(`${device.userId}:${device.secret}`)],
        ['deviceId with a leading zero', encode(`${device.userId}.0${device.deviceId}:${device.secret}`)],
        ['unknown user', encode(`nouser${device.userId.slice(0, 20)}.${device.deviceId}:${device.secret}`)],
        ['unknown device', encode(`${device.userId}.2147483647:${device.secret}`)],
        ['wrong secret', encode(`${device.userId}.${device.deviceId}:${ctx.material.secret()}`)],
      ];
      let reference: string | undefined;
      for (const [what, authorization] of variants) {
        const result = await ctx.http('listDevices', authorization === undefined ? {} : { authorization });
        must.httpError(result, 401, 'UNAUTHORIZED', 'AUT-7', what);
        must.equal(result.headers.get('www-authenticate'), WWW_AUTHENTICATE, 'AUT-7', `WWW-Authenticate (${what})`);
        const body = JSON.stringify(result.body);
        reference ??= body;
        must.equal(body, reference, 'AUT-7', `the 401 body for '${what}' equals the one for '${variants[0]![0]}'`);
      }
      const lower = basicAuth(device).replace(/^Basic/, 'bAsIc');
      must.status(await ctx.http('listDevices', { authorization: lower }), 200, 'AUT-6', 'scheme name in mixed case');
    },
  },
  {
    id: '2.8/no-impersonation',
    requirements: ['AUT-8', 'AUT-7', 'AUT-12'],
    level: 'must',
    title: "one device's secret does not authenticate another device's userId and deviceId, over HTTP or hello",
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user({ devices: 2 });
      const a = alice.devices[0]!;
      const [b1, b2] = bob.devices as [typeof bob.devices[0], typeof bob.devices[0]];
      const forged = [
        { userId: b1.userId, deviceId: b1.deviceId, secret: a.secret },
        { userId: b2.userId, deviceId: b2.deviceId, secret: b1.secret },
        { userId: a.userId, deviceId: b2.deviceId, secret: b2.secret },
      ];
      for (const credentials of forged) {
        const what = `${credentials.userId}.${credentials.deviceId} with another device's secret`;
        must.httpError(await ctx.http('listDevices', { credentials }), 401, 'UNAUTHORIZED', 'AUT-8', what);
        const session = await ctx.open({ label: 'forger' });
        must.errorFrame(await session.hello(credentials, { id: 'forged' }), 'AUTH_FAILED', 'AUT-8', 'forged', what);
        await expectFatal(session, 'AUTH_FAILED', 4401, 'AUT-12');
      }
    },
  },
  {
    id: '2.9/welcome',
    requirements: ['AUT-13', 'AUT-15', 'LIM-1', 'LIM-2', 'DLV-25'],
    level: 'must',
    title: 'hello gets welcome echoing its id with sessionId, the authenticated address, serverTime and every advertised limit',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const sessionIds = new Set<string>();
      for (const id of ['h-one', 'h-two']) {
        const session = await ctx.open({ label: device.label });
        const before = Date.now();
        const welcome = as(await session.hello(device, { id }), 'welcome', 'AUT-13');
        must.equal({ id: welcome.id, userId: welcome.userId, deviceId: welcome.deviceId }, { id, userId: device.userId, deviceId: device.deviceId }, 'AUT-13');
        must.hold(Math.abs(welcome.serverTime - before) < 60_000, 'AUT-13', `serverTime near ${before}`, welcome.serverTime);
        for (const spec of limitSpecs.filter((l) => l.advertised)) {
          const value = (welcome.limits as unknown as Record<string, unknown>)[spec.name];
          must.hold(Number.isInteger(value), 'LIM-1', `limits.${spec.name} as an integer`, value);
          const n = value as number;
          must.hold(n >= spec.minimum && (spec.maximum === undefined || n <= spec.maximum), 'LIM-2', `limits.${spec.name} in ${spec.minimum}..${spec.maximum ?? '∞'}`, n);
        }
        must.hold(!sessionIds.has(welcome.sessionId), 'AUT-15', 'a sessionId not used before', welcome.sessionId);
        sessionIds.add(welcome.sessionId);
        await session.next('queue_empty', 'DLV-25');
        await session.close();
      }
    },
  },
  {
    id: '2.9/receive-max-bounds-window',
    requirements: ['AUT-14'],
    level: 'must',
    title: 'limits.window is the smaller of the configured window and receiveMax',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const plain = await ctx.connect(device);
      const configured = plain.limits.window;
      await plain.close();
      for (const receiveMax of [1, 3, configured + 5]) {
        const session = await ctx.connect(device, { receiveMax });
        must.equal(session.limits.window, Math.min(configured, receiveMax), 'AUT-14', `window with receiveMax ${receiveMax}`);
        await session.close();
      }
    },
  },
  {
    id: '2.9/auth-failed',
    requirements: ['AUT-12', 'ERR-9'],
    level: 'must',
    title: 'a hello with a wrong secret, unknown user or unknown device gets AUTH_FAILED echoing its id, then 4401',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const variants: Array<[string, { userId: string; deviceId: number; secret: string }]> = [
        ['wrong secret', { userId: device.userId, deviceId: device.deviceId, secret: ctx.material.secret() }],
        ['unknown user', { userId: `x${device.userId}`.slice(0, 64), deviceId: device.deviceId, secret: device.secret }],
        ['unknown device', { userId: device.userId, deviceId: 2147483647, secret: device.secret }],
      ];
      for (const [what, credentials] of variants) {
        const session = await ctx.open({ label: 'wrong' });
        must.errorFrame(await session.hello(credentials, { id: 'h-bad' }), 'AUTH_FAILED', 'AUT-12', 'h-bad', what);
        await expectFatal(session, 'AUTH_FAILED', 4401, 'AUT-12');
      }
    },
  },
  {
    id: '2.9/first-message-not-hello',
    requirements: ['AUT-11', 'ERR-9'],
    level: 'must',
    title: 'a first message that is not a valid hello gets UNAUTHENTICATED and close 4401',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const firsts: unknown[] = [
        { type: 'ping', id: 'p1' },
        { type: 'teleport', id: 't1' },
        { id: 'n1' },
        { type: 'hello', id: 'h1', userId: device.userId, deviceId: device.deviceId },
      ];
      for (const first of firsts) {
        const session = await ctx.open({ label: 'early' });
        session.sendRaw(first);
        await expectFatal(session, 'UNAUTHENTICATED', 4401, 'AUT-11');
      }
    },
  },
  {
    id: '2.9/already-authenticated',
    requirements: ['AUT-17', 'ERR-8'],
    level: 'must',
    title: 'a second hello on a session gets the non-fatal ALREADY_AUTHENTICATED and the session goes on',
    async run(ctx) {
      const user = await ctx.user();
      const session = await ctx.connect(user.devices[0]!);
      must.errorFrame(await session.hello(user.devices[0]!, { id: 'h-again' }), 'ALREADY_AUTHENTICATED', 'AUT-17', 'h-again');
      must.frameType(await session.request({ type: 'ping', id: 'still-here' }, 'ERR-8'), 'pong', 'ERR-8', 'the session goes on');
    },
  },
  {
    id: '2.9/hello-timeout',
    requirements: ['AUT-10', 'ERR-9'],
    level: 'must',
    title: 'a connection that sends no hello within helloTimeoutMs gets HELLO_TIMEOUT and close 4408',
    async run(ctx) {
      const user = await ctx.user();
      const probe = await ctx.connect(user.devices[0]!);
      const { helloTimeoutMs } = probe.limits;
      await probe.close();
      if (helloTimeoutMs + 2000 > ctx.remaining()) ctx.unsupported(`helloTimeoutMs ${helloTimeoutMs} does not fit the case time left (${Math.round(ctx.remaining())} ms); raise --timeout`);
      const session = await ctx.open({ label: 'silent' });
      const opened = performance.now();
      await expectFatal(session, 'HELLO_TIMEOUT', 4408, 'AUT-10');
      const waited = performance.now() - opened;
      must.hold(waited >= helloTimeoutMs - 100, 'AUT-10', `no close before helloTimeoutMs (${helloTimeoutMs} ms)`, `closed after ${Math.round(waited)} ms`);
    },
  },
];
