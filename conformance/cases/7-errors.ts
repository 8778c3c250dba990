// Section 7 of PROTOCOL.md: error codes from the registry with their fatality, nothing after a fatal error,
// well-formed RATE_LIMITED errors on the WebSocket, and extensibility (unknown members are ignored at every level of
// HTTP bodies and WebSocket frames).
import type { DeviceListResponse, RegisterResponse, ServerFrame } from '../../spec/index.ts';
import type { ConformanceCase } from '../case.ts';
import { freshUsername } from '../fixtures.ts';
import { as, must } from '../expect.ts';
import { envelopeOf, envelopesFor, send, sendOk } from '../messaging.ts';
import type { Session } from '../session.ts';
import { expectFatal } from './1-transport-websocket.ts';

/** Requests per burst of the WebSocket rate-limit case (at most maxPendingRequests, so none may be TOO_MANY_PENDING). */
const BURST = 64;

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
  {
    id: '7.2/nothing-after-a-fatal-error',
    requirements: ['ERR-10', 'ERR-9'],
    level: 'must',
    title: 'frames pipelined behind a fatal one get no answer and have no effect: the error is the last frame of the session',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a1 = alice.devices[0]!;
      const fatal: Array<[string, (s: Session) => void, string, number]> = [
        ['a text message that is not a JSON object', (s) => s.sendRaw('{"type": "ping", "id": '), 'MALFORMED_FRAME', 4400],
        ['a binary message', (s) => s.conn.sendBinary(Buffer.from('{"type":"ping","id":"bin"}')), 'BINARY_NOT_SUPPORTED', 1003],
      ];
      for (const [what, violate, code, closeCode] of fatal) {
        const s = await ctx.connect(a1);
        await sendOk(ctx, s, a1, bob);
        const messageId = ctx.material.messageId();
        const mark = s.received.length;
        violate(s);
        s.sendRaw({ type: 'ping', id: 'after-fatal' });
        s.sendRaw({ type: 'send', id: 'send-after-fatal', messageId, to: bob.userId, envelopes: envelopesFor(ctx, bob, a1) });
        await expectFatal(s, code, closeCode, 'ERR-9');
        // Frames the server sent before it read the fatal frame may arrive after it; none may follow the error, and
        // nothing answers the frames pipelined behind the fatal one.
        const after = s.received.slice(mark).map((r) => r.frame);
        const errorAt = after.findIndex((f) => f.type === 'error' && f.code === code);
        must.equal(after.slice(errorAt + 1), [], 'ERR-10', `frames after the ${code} error`);
        const answers = after.filter((f) => ['after-fatal', 'send-after-fatal'].includes((f as { id?: string }).id ?? ''));
        must.equal(answers, [], 'ERR-10', `answers to the frames pipelined behind ${what}`);
        // The send behind the fatal frame had no effect: resending its messageId is a new send (else duplicate: true).
        const again = await ctx.connect(a1);
        const resent = as((await send(ctx, again, a1, bob, { messageId })).answer, 'send_ok', 'MSG-12', 'resending the send pipelined behind the fatal frame');
        must.equal(resent.duplicate, false, 'ERR-10', `duplicate of a resend of the send pipelined behind ${what}`);
        await again.close();
      }
    },
  },
  {
    id: '7.2/websocket-rate-limits-well-formed',
    requirements: ['ERR-4', 'ERR-8', 'LIM-10', 'ERR-11'],
    level: 'must',
    title: 'bursts of pings and sends get pong and send_ok or, where the server rate-limits them, a non-fatal RATE_LIMITED with retryAfterMs',
    async run(ctx) {
      // A server MAY rate-limit these requests (ERR-11); either way is conforming, and a refusal is checked in full.
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a1 = alice.devices[0]!;
      const a = await ctx.connect(a1);
      const burst = Math.min(a.limits.maxPendingRequests, BURST);
      const limited: Array<{ id: string; messageId?: string; retryAfterMs: number }> = [];
      const waves: Array<Array<{ id: string; frame: Record<string, unknown>; success: ServerFrame['type'] }>> = [0, 1].map((wave) =>
        Array.from({ length: burst }, (_, i) => ({ id: `pg${wave}-${i}`, frame: { type: 'ping', id: `pg${wave}-${i}` }, success: 'pong' as const })),
      );
      waves.push(
        Array.from({ length: Math.min(burst, 32) }, (_, i) => {
          const messageId = ctx.material.messageId();
          return { id: `sd${i}`, frame: { type: 'send', id: `sd${i}`, messageId, to: bob.userId, envelopes: envelopesFor(ctx, bob, a1) }, success: 'send_ok' as const };
        }),
      );
      for (const wave of waves) {
        // One wave at a time, each answered in full before the next: never more than maxPendingRequests unanswered.
        const mark = a.received.length;
        for (const request of wave) a.sendRaw(request.frame);
        const answerOf = (id: string) => a.received.slice(mark).find((r) => (r.frame as { id?: string }).id === id)?.frame;
        await a.until(() => (wave.every((r) => answerOf(r.id)) ? true : undefined), 'TRN-30', `an answer to each of ${wave.length} requests`);
        for (const request of wave) {
          const answer = answerOf(request.id)!;
          if (answer.type === request.success) continue;
          must.hold(answer.type === 'error' && answer.code === 'RATE_LIMITED', request.success === 'pong' ? 'KAL-1' : 'MSG-12', `${request.success}, or RATE_LIMITED (ERR-11)`, answer, request.id);
          const retryAfterMs = (answer as { retryAfterMs?: unknown }).retryAfterMs;
          must.hold(typeof retryAfterMs === 'number' && Number.isInteger(retryAfterMs), 'ERR-4', 'retryAfterMs in a WebSocket RATE_LIMITED error', answer, request.id);
          must.hold((retryAfterMs as number) >= 1, 'LIM-10', 'retryAfterMs of at least 1', answer, request.id);
          limited.push({ id: request.id, retryAfterMs: retryAfterMs as number, ...(typeof request.frame['messageId'] === 'string' ? { messageId: request.frame['messageId'] } : {}) });
        }
      }
      ctx.note(`${limited.length} of ${waves.flat().length} requests were refused with RATE_LIMITED`);
      must.frameType(await a.request({ type: 'ping', id: 'after-bursts' }, 'ERR-8'), 'pong', 'ERR-8', 'the session goes on');
      // A refused send had no effect (ERR-8): once its retryAfterMs has passed, resending it is a new send.
      const refusedSend = limited.find((l) => l.messageId !== undefined);
      if (refusedSend && refusedSend.retryAfterMs + 1000 < ctx.remaining()) {
        await ctx.sleep(refusedSend.retryAfterMs + 50);
        const resent = await send(ctx, a, a1, bob, { messageId: refusedSend.messageId! });
        if (resent.answer.type === 'send_ok') must.equal(resent.answer.duplicate, false, 'ERR-8', `duplicate of a resend of ${refusedSend.id}, refused with RATE_LIMITED`);
      }
    },
  },
];
