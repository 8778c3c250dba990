// Sections 1.3 to 1.6 of PROTOCOL.md: the WebSocket endpoint (subprotocol, upgrade refusal), data message rules
// (binary, non-JSON, oversized), frame validation (INVALID_FRAME, UNKNOWN_FRAME_TYPE, id echo), request/answer
// correlation and processing order.
import { validate } from '../../spec/index.ts';
import { WireError } from '../../reference-client/wire/connection.ts';
import { show, type ConformanceCase } from '../case.ts';
import type { CaseContext } from '../context.ts';
import { as, must } from '../expect.ts';
import { sendOk } from '../messaging.ts';
import type { Session } from '../session.ts';

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
];
