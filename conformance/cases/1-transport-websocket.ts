// Sections 1.3 to 1.6 of PROTOCOL.md: the WebSocket endpoint (subprotocol, upgrade refusal), data message rules
// (binary, non-JSON, oversized, RFC 6455 violations, what the server itself sends), frame validation (INVALID_FRAME,
// UNKNOWN_FRAME_TYPE, id echo), request/answer correlation, processing order and the pending-request limit.
import type { RawData } from 'ws';
import { errorSpec, validate, type ServerFrame } from '../../spec/index.ts';
import { WireError } from '../../reference-client/wire/connection.ts';
import { show, type ConformanceCase } from '../case.ts';
import type { CaseContext, Device } from '../context.ts';
import { as, must } from '../expect.ts';
import { envelopesFor, sendOk, send } from '../messaging.ts';
import { jsonTextProblems } from '../json-text.ts';
import type { Session } from '../session.ts';

/** A data message exactly as the server sent it. */
interface RawMessage {
  label: string;
  data: Buffer;
  isBinary: boolean;
}

function bytesOf(data: RawData): Buffer {
  return Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/** Opens a session of `device` that also keeps every data message the server sends, as bytes, from the first on. */
async function recordedSession(ctx: CaseContext, device: Device, raw: RawMessage[]): Promise<Session> {
  const session = await ctx.open({ label: device.label });
  session.conn.socket.on('message', (data: RawData, isBinary: boolean) => raw.push({ label: session.label, data: bytesOf(data), isBinary }));
  must.frameType(await session.hello(device), 'welcome', 'AUT-13', `hello of ${device.label}`);
  return session;
}

/** Pending-request limits above this make the pipelining case UNSUPPORTED rather than slow. */
const MAX_PENDING_PROBE = 1000;
/**
 * Requests the pipelining case sends beyond maxPendingRequests: as many again plus 32, so that a server that reads a
 * burst faster than it makes sends durable (the reference server does) refuses some of them.
 */
const pendingExcess = (limit: number) => limit + 32;
/** Refused sends of the pipelining case that are resent to show they had no effect. */
const MAX_RESENDS = 16;

/**
 * Expects a fatal error: the `error` frame with `code` (ERR-9; leaving it out is allowed only where `optionalFrame`),
 * then a close with `closeCode` and the code as reason.
 */
export async function expectFatal(session: Session, code: string, closeCode: number, requirementId: string, optionalFrame = false): Promise<void> {
  const info = await session.closed(requirementId);
  const error = session.received.find((r) => r.frame.type === 'error' && r.frame.code === code);
  if (!optionalFrame) must.hold(error !== undefined, 'ERR-9', `an error ${code} frame before the close`, session.received.map((r) => r.frame), session.label);
  must.equal(info.code, closeCode, requirementId, `close code after ${code}`);
  must.hold(info.reason === code || (optionalFrame && info.reason === ''), 'ERR-9', `close reason ${code}`, info.reason || '(empty)', session.label);
}

/** Opens a WebSocket offering `protocols` and expects the upgrade refused with HTTP `status` and error `code`. */
async function expectRefused(ctx: CaseContext, protocols: string[], status: number, code: string, requirementId: string): Promise<void> {
  let refusal: WireError | undefined;
  try {
    const session = await ctx.open({ protocols, label: 'refused' });
    must.fail(requirementId, `HTTP ${status} ${code} instead of an upgrade`, `101 with subprotocol '${session.conn.socket.protocol}'`, `offering [${protocols.join(', ')}]`);
  } catch (error) {
    if (!(error instanceof WireError)) throw error;
    refusal = error;
  }
  // The wire client reports a refused upgrade as "upgrade refused with HTTP <status>: <body>".
  const match = /upgrade refused with HTTP (\d+): ([\s\S]*)$/.exec(refusal.message);
  must.hold(match !== null, requirementId, `HTTP ${status} ${code}`, refusal.message, `offering [${protocols.join(', ')}]`);
  let body: unknown;
  try {
    body = JSON.parse(match![2]!);
  } catch {
    body = match![2];
  }
  must.equal(Number(match![1]), status, requirementId, 'upgrade refusal status');
  must.hold(validate('http/error.json', body).ok, 'ERR-1', 'a body valid against spec/schemas/http/error.json', body);
  must.equal((body as { error: { code: string } }).error.code, code, requirementId, 'upgrade refusal code');
}

export const cases: ConformanceCase[] = [
  {
    id: '1.3/selects-subprotocol',
    requirements: ['TRN-15'],
    level: 'must',
    title: 'the upgrade at GET /v1/ws selects tickwire.v1, also when other subprotocols are offered first',
    async run(ctx) {
      for (const protocols of [['tickwire.v1'], ['chat', 'tickwire.v1']]) {
        const session = await ctx.open({ protocols });
        must.equal(session.conn.socket.protocol, 'tickwire.v1', 'TRN-15', `offering [${protocols.join(', ')}]`);
        await session.close();
      }
    },
  },
  {
    id: '1.3/subprotocol-refused',
    requirements: ['TRN-17', 'ERR-1'],
    level: 'must',
    title: 'an upgrade that does not offer tickwire.v1 gets HTTP 400 UNSUPPORTED_SUBPROTOCOL',
    async run(ctx) {
      await expectRefused(ctx, ['tickwire.v2'], 400, 'UNSUPPORTED_SUBPROTOCOL', 'TRN-17');
      await expectRefused(ctx, [], 400, 'UNSUPPORTED_SUBPROTOCOL', 'TRN-17');
    },
  },
  {
    id: '1.3/not-an-upgrade',
    requirements: ['TRN-18'],
    level: 'must',
    title: 'a plain GET /v1/ws without upgrade headers gets HTTP 400 BAD_REQUEST',
    async run(ctx) {
      must.httpError(await ctx.raw('GET', '/v1/ws'), 400, 'BAD_REQUEST', 'TRN-18', 'GET /v1/ws without Upgrade');
    },
  },
  {
    id: '1.3/binary-message-closes-1003',
    requirements: ['TRN-23', 'ERR-9'],
    level: 'must',
    title: 'a binary data message gets BINARY_NOT_SUPPORTED and close 1003',
    async run(ctx) {
      const user = await ctx.user();
      const session = await ctx.connect(user.devices[0]!);
      session.conn.sendBinary(Buffer.from('{"type":"ping","id":"p1"}'));
      await expectFatal(session, 'BINARY_NOT_SUPPORTED', 1003, 'TRN-23');
    },
  },
  {
    id: '1.3/non-object-message-closes-4400',
    requirements: ['TRN-24', 'ERR-9'],
    level: 'must',
    title: 'a text message that is invalid JSON, an array or a scalar gets MALFORMED_FRAME and close 4400',
    async run(ctx) {
      const user = await ctx.user();
      for (const text of ['{"type": "ping", "id": ', '[{"type":"ping","id":"p1"}]', '42']) {
        const session = await ctx.connect(user.devices[0]!);
        session.sendRaw(text);
        await expectFatal(session, 'MALFORMED_FRAME', 4400, 'TRN-24');
      }
    },
  },
  {
    id: '1.3/oversized-message-closes-1009',
    requirements: ['TRN-21', 'TRN-22'],
    level: 'must',
    title: 'a data message over maxFrameBytes closes the connection with 1009 (the error frame is optional)',
    async run(ctx) {
      const user = await ctx.user();
      const session = await ctx.connect(user.devices[0]!);
      const { maxFrameBytes } = session.limits;
      const frame = JSON.stringify({ type: 'ping', id: 'big', pad: '' });
      session.sendRaw(frame.replace('"pad":""', `"pad":"${'x'.repeat(maxFrameBytes + 1 - frame.length)}"`));
      await expectFatal(session, 'FRAME_TOO_LARGE', 1009, 'TRN-21', true);
    },
  },
  {
    id: '1.4/no-type-invalid-frame',
    requirements: ['TRN-26', 'TRN-28', 'ERR-8'],
    level: 'must',
    title: 'an object without a string type gets the non-fatal INVALID_FRAME, echoing a valid id',
    async run(ctx) {
      const user = await ctx.user();
      const session = await ctx.connect(user.devices[0]!);
      session.sendRaw({ id: 'nt1', hello: 'world' });
      must.errorFrame(await session.next('error', 'TRN-26'), 'INVALID_FRAME', 'TRN-28', 'nt1');
      session.sendRaw({ type: 7, id: 'nt2' });
      must.errorFrame(await session.next('error', 'TRN-26'), 'INVALID_FRAME', 'TRN-28', 'nt2');
      must.frameType(await session.request({ type: 'ping', id: 'after' }, 'ERR-8'), 'pong', 'ERR-8', 'the session goes on');
    },
  },
  {
    id: '1.4/schema-invalid-frame',
    requirements: ['TRN-26', 'TRN-28', 'ERR-8'],
    level: 'must',
    title: 'a frame failing its schema gets INVALID_FRAME echoing its id only when that id is valid; the session goes on',
    async run(ctx) {
      const user = await ctx.user();
      const session = await ctx.connect(user.devices[0]!);
      session.sendRaw({ type: 'send', id: 'bad-send-1' });
      must.errorFrame(await session.next('error', 'TRN-26'), 'INVALID_FRAME', 'TRN-28', 'bad-send-1');
      session.sendRaw({ type: 'ping', id: 'spaces are invalid' });
      must.errorFrame(await session.next('error', 'TRN-26'), 'INVALID_FRAME', 'TRN-28', null);
      session.sendRaw({ type: 'ack', id: 'a1' });
      must.errorFrame(await session.next('error', 'TRN-26'), 'INVALID_FRAME', 'TRN-28', 'a1');
      must.frameType(await session.request({ type: 'ping', id: 'after' }, 'ERR-8'), 'pong', 'ERR-8', 'the session goes on');
    },
  },
  {
    id: '1.4/unknown-type-non-fatal',
    requirements: ['TRN-27', 'TRN-28', 'ERR-8'],
    level: 'must',
    title: 'an unknown frame type gets the non-fatal UNKNOWN_FRAME_TYPE, echoing a valid id',
    async run(ctx) {
      const user = await ctx.user();
      const session = await ctx.connect(user.devices[0]!);
      session.sendRaw({ type: 'teleport', id: 'u1', to: 'mars' });
      must.errorFrame(await session.next('error', 'TRN-27'), 'UNKNOWN_FRAME_TYPE', 'TRN-28', 'u1');
      session.sendRaw({ type: 'welcome', id: 42 });
      must.errorFrame(await session.next('error', 'TRN-27'), 'UNKNOWN_FRAME_TYPE', 'TRN-28', null);
      must.frameType(await session.request({ type: 'ping', id: 'after' }, 'ERR-8'), 'pong', 'ERR-8', 'the session goes on');
    },
  },
  {
    id: '1.4/invalid-send-has-no-effect',
    requirements: ['TRN-26', 'ERR-8', 'MSG-10'],
    level: 'must',
    title: 'a schema-invalid send enqueues nothing',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const bad = ctx.material.messageId();
      a.sendRaw({ type: 'send', id: 'bad', messageId: bad, to: bob.userId, envelopes: [{ deviceId: bob.devices[0]!.deviceId, type: 'plaintext', body: 'AAAA' }] });
      must.errorFrame(await a.next('error', 'TRN-26'), 'INVALID_FRAME', 'TRN-26', 'bad');
      const good = await sendOk(ctx, a, alice.devices[0]!, bob);
      const b = await ctx.connect(bob.devices[0]!);
      const [first] = await b.takeItems(1, 'DLV-9');
      must.hold(first!.kind === 'message' && first!.messageId === good.messageId, 'TRN-26', `only ${good.messageId} in the queue`, first);
      const empty = await b.next('queue_empty', 'DLV-25');
      must.hold(b.items.every((r) => r.frame.kind !== 'message' || r.frame.messageId !== bad), 'TRN-26', 'the invalid send enqueued nothing', b.items.map((r) => r.frame));
      must.equal(empty.lastSeq, first!.seq, 'DLV-26', 'lastSeq');
    },
  },
  {
    id: '1.5/repeated-request-ids',
    requirements: ['TRN-30', 'KAL-1'],
    level: 'must',
    title: 'requests repeating an id are each answered, echoing it',
    async run(ctx) {
      const user = await ctx.user();
      const session = await ctx.connect(user.devices[0]!);
      session.sendRaw({ type: 'ping', id: 'same' });
      session.sendRaw({ type: 'ping', id: 'same' });
      session.sendRaw({ type: 'ping', id: 'same' });
      for (let i = 0; i < 3; i++) must.equal((await session.next('pong', 'TRN-30', (f) => f.id === 'same')).id, 'same', 'KAL-1');
    },
  },
  {
    id: '1.5/ack-gets-no-success-answer',
    requirements: ['TRN-31'],
    level: 'must',
    title: 'a valid ack gets no answer; the next request is answered normally',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      await sendOk(ctx, a, alice.devices[0]!, bob);
      const b = await ctx.connect(bob.devices[0]!);
      const [item] = await b.takeItems(1, 'DLV-9');
      b.ack({ id: 'ack-1', upTo: item!.seq });
      must.frameType(await b.request({ type: 'ping', id: 'p-after' }), 'pong', 'KAL-1');
      const later = await b.quiet(300);
      const answers = [...b.received.map((r) => r.frame), ...later].filter((f) => (f as { id?: string }).id === 'ack-1');
      must.equal(answers, [], 'TRN-31', 'frames answering the ack');
    },
  },
  {
    id: '1.6/pipelined-sends-answered-in-order',
    requirements: ['TRN-35', 'TRN-34', 'DLV-31'],
    level: 'must',
    title: 'pipelined sends get their send_ok in receive order and are enqueued in that order',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const ids: string[] = [];
      const messageIds: string[] = [];
      for (let i = 0; i < 10; i++) {
        ids.push(`p${i}`);
        messageIds.push(ctx.material.messageId());
        a.sendRaw({ type: 'send', id: `p${i}`, messageId: messageIds[i], to: bob.userId, envelopes: [{ deviceId: bob.devices[0]!.deviceId, type: 'ratchet', body: ctx.material.body() }] });
      }
      const answers = [];
      for (let i = 0; i < 10; i++) answers.push(as(await a.next('send_ok', 'TRN-30'), 'send_ok', 'MSG-12'));
      must.equal(answers.map((f) => f.id), ids, 'TRN-35', 'order of send_ok ids');
      const b = await ctx.connect(bob.devices[0]!);
      const items = await b.takeItems(10, 'DLV-9');
      must.equal(items.map((i) => (i.kind === 'message' ? i.messageId : `receipt ${show(i)}`)), messageIds, 'DLV-31', 'order of delivered messages');
    },
  },
  {
    id: '1.3/server-messages-are-json-text',
    requirements: ['TRN-19', 'TRN-13'],
    level: 'must',
    title: 'every data message the server sends is a text message of one JSON object in UTF-8, without repeated names or non-integer numbers',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const raw: RawMessage[] = [];
      const a = await recordedSession(ctx, a1, raw);
      const sent = await sendOk(ctx, a, a1, bob);
      // welcome, queue_empty, deliver, prekeys_low (no one-time prekeys), receipt_ok, subscribed, pong, error…
      const b = await recordedSession(ctx, b1, raw);
      const [item] = await b.takeItems(1, 'DLV-9');
      b.ack({ upTo: item!.seq });
      must.frameType(await b.request({ type: 'receipt', id: 'rc', to: { userId: a1.userId, deviceId: a1.deviceId }, status: 'read', messageIds: [sent.messageId] }), 'receipt_ok', 'TRN-30');
      must.frameType(await b.request({ type: 'subscribe_presence', id: 'sp', userIds: [alice.userId] }), 'subscribed', 'TRN-30');
      must.frameType(await b.request({ type: 'ping', id: 'pg' }), 'pong', 'KAL-1');
      b.sendRaw({ type: 'teleport', id: 'tp' });
      await b.next('error', 'TRN-27', (e) => e.id === 'tp');
      // …and the receipts pushed to the sender.
      await a.item('TRN-19', (i) => i.kind === 'receipt' && i.status === 'read', 'a read receipt');
      await a.close();
      await b.close();
      must.hold(raw.length >= 8, 'TRN-19', 'the data messages of two sessions', `${raw.length} messages`);
      for (const message of raw) {
        const text = message.data.toString('utf8');
        must.hold(!message.isBinary, 'TRN-19', 'a text message', `a binary message of ${message.data.length} bytes`, message.label);
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          value = undefined;
        }
        must.hold(typeof value === 'object' && value !== null && !Array.isArray(value), 'TRN-19', 'one JSON object', text.slice(0, 300), message.label);
        const problems = jsonTextProblems(message.data);
        must.hold(problems.length === 0, 'TRN-13', 'a UTF-8 JSON text without repeated names or non-integer numbers', `${problems.join('; ')} in ${text.slice(0, 300)}`, message.label);
      }
    },
  },
  {
    id: '1.3/no-message-over-max-frame-bytes',
    requirements: ['TRN-20', 'DLV-9'],
    level: 'must',
    title: 'the server never sends a data message over maxFrameBytes, even when the items waiting do not fit one deliver frame',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const { maxFrameBytes, maxEnvelopeBytes } = a.limits;
      // Items with the largest envelope: together they are more than one data message may carry.
      const itemChars = 4 * Math.ceil(maxEnvelopeBytes / 3);
      const count = Math.floor(maxFrameBytes / itemChars) + 1;
      if (count > 8) ctx.unsupported(`maxFrameBytes ${maxFrameBytes} holds ${count - 1} envelopes of maxEnvelopeBytes (${maxEnvelopeBytes}); the case sends at most 8`);
      const messageIds = new Set<string>();
      for (let i = 0; i < count; i++) messageIds.add((await sendOk(ctx, a, alice.devices[0]!, bob, { bytes: maxEnvelopeBytes })).messageId);
      const raw: RawMessage[] = [];
      const b = await recordedSession(ctx, bob.devices[0]!, raw);
      const seen = new Set<string>();
      while (seen.size < count) {
        const item = await b.item('DLV-9', (i) => i.kind === 'message' && messageIds.has(i.messageId) && !seen.has(i.messageId), `${count - seen.size} more of the large messages`);
        if (item.kind === 'message') seen.add(item.messageId);
        b.ack({ upTo: item.seq });
      }
      const largest = Math.max(...raw.map((m) => m.data.length));
      ctx.note(`${count} items of ${itemChars} base64 characters; largest data message ${largest} bytes of at most ${maxFrameBytes}`);
      for (const message of raw) must.hold(message.data.length <= maxFrameBytes, 'TRN-20', `data messages of at most maxFrameBytes (${maxFrameBytes}) bytes`, `${message.data.length} bytes`, message.label);
    },
  },
  {
    id: '1.3/rfc6455-violations-fail-the-connection',
    requirements: ['TRN-25'],
    level: 'must',
    title: 'a text message that is not UTF-8 closes the connection with 1007, an unmasked client frame with 1002, without a Tickwire error',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      // {"type":"ping","id":"x"} with the bytes C3 28 (an invalid UTF-8 sequence) inside the id.
      const notUtf8 = Buffer.concat([Buffer.from('{"type":"ping","id":"x'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
      const probes: Array<[string, boolean, (s: Session) => void, number]> = [
        ['a text message that is not UTF-8, on a session', true, (s) => s.conn.sendUnchecked(notUtf8), 1007],
        ['a text message that is not UTF-8, before hello', false, (s) => s.conn.sendUnchecked(notUtf8), 1007],
        ['an unmasked client frame, on a session', true, (s) => s.conn.sendUnchecked(Buffer.from('{"type":"ping","id":"unmasked"}'), { masked: false }), 1002],
      ];
      for (const [what, authenticated, violate, closeCode] of probes) {
        const session = authenticated ? await ctx.connect(device) : await ctx.open({ label: 'raw' });
        const mark = session.received.length;
        violate(session);
        const info = await session.closed('TRN-25');
        must.equal(info.code, closeCode, 'TRN-25', `close code after ${what}`);
        const after = session.received.slice(mark).map((r) => r.frame);
        must.hold(after.every((f) => f.type !== 'error'), 'TRN-25', 'no error frame before the close', after, what);
        must.hold(errorSpec(info.reason) === undefined, 'TRN-25', 'a close reason that is no Tickwire error code', info.reason, what);
      }
    },
  },
  {
    id: '1.6/too-many-pending-requests',
    requirements: ['TRN-37', 'TRN-30', 'ERR-8'],
    level: 'must',
    title: 'of 2 × maxPendingRequests + 32 pipelined sends, none of the first maxPendingRequests gets TOO_MANY_PENDING, and one refused so has no effect',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a1 = alice.devices[0]!;
      const a = await ctx.connect(a1);
      const { maxPendingRequests: limit, maxQueueItems } = a.limits;
      if (limit > MAX_PENDING_PROBE) ctx.unsupported(`maxPendingRequests ${limit} is above the ${MAX_PENDING_PROBE} requests this case pipelines`);
      // Every send lands in one queue of the recipient, which must not fill up (QUEUE_FULL), resends included.
      const total = Math.min(limit + pendingExcess(limit), maxQueueItems - MAX_RESENDS - 1);
      if (total <= limit) ctx.unsupported(`maxQueueItems ${maxQueueItems} leaves no room for more than maxPendingRequests (${limit}) sends to one device`);
      // All in one turn of the event loop, so that the client has seen no answer before the last one leaves: the
      // request at index i arrives with at most i requests unanswered, so TRN-37 allows TOO_MANY_PENDING only from
      // index maxPendingRequests on. A server that answers fast may never refuse one; that is conforming too.
      const sends = Array.from({ length: total }, (_, i) => ({
        type: 'send' as const,
        id: `pp${i}`,
        messageId: ctx.material.messageId(),
        to: bob.userId,
        envelopes: envelopesFor(ctx, bob, a1, undefined, 16),
      }));
      const mark = a.received.length;
      for (const frame of sends) a.sendRaw(frame);
      const byId = new Map<string, ServerFrame[]>();
      let cursor = mark;
      const collect = () => {
        for (; cursor < a.received.length; cursor++) {
          const frame = a.received[cursor]!.frame;
          const id = (frame as { id?: string }).id;
          if (id !== undefined) byId.set(id, [...(byId.get(id) ?? []), frame]);
        }
      };
      const answerOf = (id: string) => byId.get(id) ?? [];
      await a.until(() => (collect(), sends.every((f) => byId.has(f.id)) ? true : undefined), 'TRN-30', `an answer to each of ${total} pipelined sends`);
      await a.quiet(200);
      collect();
      const refused: string[] = [];
      for (const [index, frame] of sends.entries()) {
        const answers = answerOf(frame.id);
        must.equal(answers.length, 1, 'TRN-30', `answers to ${frame.id}`);
        const answer = answers[0]!;
        if (answer.type === 'send_ok') continue;
        must.hold(answer.type === 'error' && ['TOO_MANY_PENDING', 'RATE_LIMITED', 'TEMPORARILY_UNAVAILABLE'].includes(answer.code), 'TRN-37', 'send_ok or error TOO_MANY_PENDING', answer, frame.id);
        if (answer.type !== 'error' || answer.code !== 'TOO_MANY_PENDING') continue;
        must.hold(index >= limit, 'TRN-37', `no TOO_MANY_PENDING while fewer than maxPendingRequests (${limit}) requests are unanswered`, `TOO_MANY_PENDING for request ${index}, which arrived with at most ${index} unanswered`);
        refused.push(frame.id);
      }
      const unmatched = a.received.slice(mark).filter((r) => r.frame.type === 'error' && (r.frame as { id?: string }).id === undefined).map((r) => r.frame);
      must.equal(unmatched, [], 'TRN-37', 'errors without the id of the request they refuse');
      ctx.note(`${refused.length} of ${total} pipelined sends were refused with TOO_MANY_PENDING`);
      must.frameType(await a.request({ type: 'ping', id: 'after-burst' }, 'ERR-8'), 'pong', 'ERR-8', 'the session goes on');
      // A refused send was not processed: resending its messageId is a new send (MSG-14 would answer duplicate: true).
      for (const id of refused.slice(0, MAX_RESENDS)) {
        const frame = sends.find((f) => f.id === id)!;
        const again = await send(ctx, a, a1, bob, { messageId: frame.messageId });
        const ok = as(again.answer, 'send_ok', 'MSG-12', `resending the messageId of ${id}`);
        must.equal(ok.duplicate, false, 'TRN-37', `duplicate of a resend of ${id}, refused with TOO_MANY_PENDING`);
      }
      const accepted = sends.find((f) => answerOf(f.id)[0]?.type === 'send_ok');
      if (accepted) {
        const again = as((await send(ctx, a, a1, bob, { messageId: accepted.messageId })).answer, 'send_ok', 'MSG-14');
        must.equal(again.duplicate, true, 'MSG-14', `duplicate of a resend of ${accepted.id}, accepted before`);
      }
    },
  },
];
