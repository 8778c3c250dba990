// Section 7 of PROTOCOL.md: error codes from the registry with their fatality, and extensibility (unknown members
// are ignored at every level of HTTP bodies and WebSocket frames).
import type { DeviceListResponse, RegisterResponse } from '../../spec/index.ts';
import type { ConformanceCase } from '../case.ts';
import { freshUsername } from '../fixtures.ts';
import { as, must } from '../expect.ts';
import { envelopeOf, sendOk } from '../messaging.ts';

export const cases: ConformanceCase[] = [
  {
    id: '7.5/unknown-members-ignored-in-http-bodies',
    requirements: ['ERR-15', 'IDN-6', 'IDN-12'],
    level: 'must',
    title: 'a registration with unknown members at every level of nesting is accepted',
    async run(ctx) {
      const device = ctx.material.deviceRegistration('extensible');
      const username = freshUsername();
      const body = {
        username,
        futureTopLevel: { nested: [1, 2, 3] },
        device: { ...device, futureDeviceField: 'x', signedPreKey: { ...device.signedPreKey, futureKeyField: true } },
      };
      const result = await ctx.http<RegisterResponse>('register', { body });
      must.status(result, 201, 'ERR-15', 'registration with unknown members');
      const list = await ctx.http<DeviceListResponse>('listDevices', { credentials: { userId: result.body.userId, deviceId: result.body.deviceId, secret: device.secret } });
      must.equal(list.body.devices[0]?.name, 'extensible', 'IDN-12', 'the stored device name');
    },
  },
  {
    id: '7.5/unknown-members-ignored-in-frames',
    requirements: ['ERR-15', 'MSG-13'],
    level: 'must',
    title: 'hello, send, ack and ping with unknown members at every level of nesting are processed normally',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const s = await ctx.open({ label: alice.devices[0]!.label });
      const d = alice.devices[0]!;
      s.sendRaw({ type: 'hello', id: 'h-ext', userId: d.userId, deviceId: d.deviceId, secret: d.secret, future: { a: 1 }, client: { name: 'conformance', futureClient: 1 } });
      const welcome = await s.next('welcome', 'ERR-15');
      must.equal(welcome.id, 'h-ext', 'ERR-15', 'welcome to a hello with unknown members');
      const sent = await sendOk(ctx, s, d, bob, { extra: { futureSendField: { deep: [true] } } });
      const envelope = envelopeOf(sent, bob.devices[0]!);
      s.sendRaw({ type: 'send', id: 'nested', messageId: ctx.material.messageId(), to: bob.userId, envelopes: [{ deviceId: bob.devices[0]!.deviceId, type: 'ratchet', body: envelope.body, futureEnvelopeField: 1 }] });
      must.frameType(await s.next('send_ok', 'ERR-15', (f) => f.id === 'nested'), 'send_ok', 'ERR-15', 'send with an unknown envelope member');
      s.sendRaw({ type: 'ping', id: 'p-ext', future: 'yes' });
      must.frameType(await s.next('pong', 'ERR-15', (f) => f.id === 'p-ext'), 'pong', 'ERR-15', 'ping with an unknown member');
      const b = await ctx.connect(bob.devices[0]!);
      const [item] = await b.takeItems(1, 'DLV-9');
      must.equal(item!.kind === 'message' ? item!.envelope : undefined, envelope, 'MSG-13', 'the envelope of a send with unknown members');
      b.sendRaw({ type: 'ack', id: 'ack-ext', upTo: item!.seq, future: { x: 1 } });
      must.frameType(await b.request({ type: 'ping', id: 'after-ack' }), 'pong', 'KAL-1');
      await b.quiet(150);
      must.equal(b.received.filter((r) => r.frame.type === 'error').map((r) => r.frame), [], 'ERR-15', 'errors after an ack with an unknown member');
    },
  },
  {
    id: '7.3/error-codes-from-registry',
    requirements: ['ERR-3', 'ERR-2', 'ERR-8'],
    level: 'must',
    title: 'non-fatal errors leave the session open; every error code used is in the registry',
    async run(ctx) {
      const alice = await ctx.user();
      const s = await ctx.connect(alice.devices[0]!);
      s.sendRaw({ type: 'teleport', id: 'e1' });
      s.sendRaw({ type: 'send', id: 'e2' });
      s.sendRaw({ type: 'ack', id: 'e3', upTo: 99 });
      s.sendRaw({ type: 'send', id: 'e4', messageId: ctx.material.messageId(), to: 'nobody-at-all', envelopes: [{ deviceId: 1, type: 'ratchet', body: 'AA==' }] });
      const codes = [];
      for (const id of ['e1', 'e2', 'e3', 'e4']) codes.push(as(await s.next('error', 'ERR-2', (e) => e.id === id), 'error', 'ERR-2').code);
      must.equal(codes, ['UNKNOWN_FRAME_TYPE', 'INVALID_FRAME', 'INVALID_ACK', 'UNKNOWN_USER'], 'ERR-3', 'error codes');
      must.frameType(await s.request({ type: 'ping', id: 'alive' }, 'ERR-8'), 'pong', 'ERR-8', 'after four non-fatal errors');
      must.hold(s.isOpen, 'ERR-8', 'the session still open', s.closeInfo);
    },
  },
];
