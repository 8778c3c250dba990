// Sections 2.7 to 2.9 of PROTOCOL.md: HTTP Basic authentication, impersonation, and the WebSocket handshake
// (hello/welcome, AUTH_FAILED, UNAUTHENTICATED, ALREADY_AUTHENTICATED, receiveMax, hello timeout).
import { limits as limitSpecs } from '../../spec/index.ts';
import { basicAuth } from '../../reference-client/wire/http.ts';
import type { ConformanceCase } from '../case.ts';
import type { Device } from '../context.ts';
import { as, must } from '../expect.ts';
import { sendOk } from '../messaging.ts';
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
  {
    id: '2.8/frames-act-for-the-authenticated-device',
    requirements: ['AUT-9', 'AUT-8', 'ERR-15'],
    level: 'must',
    title: 'send, ack and receipt frames naming another device in a from member act for, and come from, the authenticated device',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const carol = await ctx.user();
      const [a1, b1, c1] = [alice.devices[0]!, bob.devices[0]!, carol.devices[0]!];
      const address = (d: Device) => ({ userId: d.userId, deviceId: d.deviceId });
      // `from` is no member of send, ack or receipt: [ERR-15] the server ignores it, and [AUT-9] every `from` it sends
      // comes from the credentials of the session that caused the frame.
      const claim = { from: address(c1) };
      const a = await ctx.connect(a1);
      const b = await ctx.connect(b1);
      const sent = await sendOk(ctx, a, a1, bob, { extra: claim });
      const item = await b.item('AUT-9', (i) => i.kind === 'message' && i.messageId === sent.messageId, `message ${sent.messageId}`);
      must.equal(item.from, address(a1), 'AUT-9', `from of a message that ${a1.label} sent naming ${c1.label}`);
      b.sendRaw({ type: 'ack', seqs: [item.seq], ...claim });
      const receipt = { type: 'receipt' as const, id: 'rr', to: address(a1), status: 'read' as const, messageIds: [sent.messageId] as [string], ...claim };
      must.frameType(await b.request(receipt, 'RCP-11'), 'receipt_ok', 'RCP-11', `a read receipt naming ${c1.label}`);
      for (const status of ['delivered', 'read'] as const) {
        const got = await a.item('AUT-9', (i) => i.kind === 'receipt' && i.status === status && i.messageIds.includes(sent.messageId), `a ${status} receipt for ${sent.messageId}`);
        must.equal(got.from, address(b1), 'AUT-9', `from of the ${status} receipt that ${b1.label} caused naming ${c1.label}`);
      }
      // [AUT-8] Nothing was sent to, or acknowledged or sent on behalf of, the device the frames named.
      const c = await ctx.connect(c1);
      must.equal((await c.next('queue_empty', 'DLV-25')).lastSeq, 0, 'AUT-8', `the queue of ${c1.label}, named by the frames`);
    },
  },
  {
    id: '2.9/nothing-before-welcome',
    requirements: ['AUT-16', 'ERR-10', 'TRN-30'],
    level: 'must',
    title: 'requests pipelined behind hello, a waiting queue and no prekeys send nothing ahead of welcome; a failed hello gets its error alone',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const a = await ctx.connect(a1);
      // Bob's queue holds an item (deliver, queue_empty) and he has no one-time prekeys (prekeys_low, PKY-22):
      // pushes a server might be tempted to send as soon as it knows the device.
      await sendOk(ctx, a, a1, bob);
      const early: unknown[] = [
        { type: 'ping', id: 'early-ping' },
        { type: 'teleport', id: 'early-unknown' },
        { type: 'send', id: 'early-invalid' },
      ];
      const hello = (secret: string, id: string) => ({ type: 'hello', id, userId: b1.userId, deviceId: b1.deviceId, secret });
      const b = await ctx.open({ label: b1.label });
      b.sendRaw(hello(b1.secret, 'h-pipelined'));
      for (const frame of early) b.sendRaw(frame);
      must.equal((await b.next('welcome', 'AUT-13')).id, 'h-pipelined', 'AUT-13', 'welcome to the pipelined hello');
      // Frames that arrived before welcome are answered after it, each once (TRN-30).
      await b.next('pong', 'TRN-30', (f) => f.id === 'early-ping');
      await b.next('error', 'TRN-30', (f) => f.id === 'early-unknown');
      await b.next('error', 'TRN-30', (f) => f.id === 'early-invalid');
      await b.next('queue_empty', 'DLV-25');
      const welcomeAt = b.received.findIndex((r) => r.frame.type === 'welcome');
      must.equal(b.received.slice(0, welcomeAt).map((r) => r.frame), [], 'AUT-16', 'frames before welcome');
      // A hello that fails, and a first frame that is no hello: the fatal error is the only frame, and nothing
      // pipelined behind it is processed (ERR-10), the hello after the ping included.
      const failing: Array<[string, unknown, string]> = [
        ['a hello with a wrong secret', hello(ctx.material.secret(), 'h-wrong'), 'AUTH_FAILED'],
        ['a ping as first frame', { type: 'ping', id: 'first-ping' }, 'UNAUTHENTICATED'],
      ];
      for (const [what, first, code] of failing) {
        const session = await ctx.open({ label: 'early' });
        session.sendRaw(first);
        for (const frame of [...early, hello(b1.secret, 'h-late')]) session.sendRaw(frame);
        await expectFatal(session, code, 4401, code === 'AUTH_FAILED' ? 'AUT-12' : 'AUT-11');
        const frames = session.received.map((r) => r.frame);
        must.hold(frames.length === 1 && frames[0]!.type === 'error' && frames[0]!.code === code, 'AUT-16', `the ${code} error alone`, frames, what);
      }
    },
  },
];
