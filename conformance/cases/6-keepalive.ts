// Sections 6.1 to 6.3 of PROTOCOL.md: application-level ping and pong (the server answers a client ping with a pong
// echoing its id, and never answers a client pong), WebSocket control pings, the idle timeout (a session silent for
// idleTimeoutMs is closed; any received frame, data or control, restarts the count; server pings may come and are
// answered or not) and the announcement of a deliberate restart. Server pings (KAL-3) are otherwise answered by the
// wire client and ignored.
import { WireError } from '../../reference-client/wire/connection.ts';
import { CaseFailure, type ConformanceCase } from '../case.ts';
import type { CaseContext } from '../context.ts';
import { must } from '../expect.ts';
import { drain, sendPipelined } from '../messaging.ts';
import type { Session } from '../session.ts';
import { expectFatal } from './1-transport-websocket.ts';

/** How long a case listens for a frame that must not come. */
const QUIET_MS = 400;
/** How late after idleTimeoutMs of silence the idle close may come (network, timer granularity, a busy machine). */
const IDLE_CLOSE_SLACK_MS = 5000;
/** How early it may come: the server's timer starts when it receives a frame, a little after the suite sent it. */
const IDLE_CLOSE_EARLY_MS = 250;
/** How long after the silent session's close the case checks that the sessions that spoke are still open. */
const IDLE_CHECK_AFTER_MS = 2000;
/** How long the slow reader stops reading: long enough for redeliveries (ackTimeoutMs 1000 on the built-in server). */
const PAUSE_MS = 2000;
/** Typing frames sent to the slow reader while it does not read (well below any typingPerMinute worth testing). */
const TYPING_WHILE_PAUSED = 5;
/** requestId of common.json, which server ping ids match (KAL-3). */
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/** A control Ping on `session`; resolves with the Pong's payload, fails citing KAL-4 when none comes. */
async function controlPing(ctx: CaseContext, session: Session, payload: Buffer): Promise<Buffer> {
  try {
    return await session.conn.controlPing(payload, ctx.remaining());
  } catch (error) {
    if (error instanceof WireError) throw new CaseFailure('KAL-4', `a Pong to a control Ping of ${payload.length} bytes`, error.message, session.label);
    throw error;
  }
}

/** Resolves at case time `at` (or at once when that has passed). */
async function until(ctx: CaseContext, at: number): Promise<void> {
  await ctx.sleep(Math.max(0, at - ctx.transcript.now()));
}

export const cases: ConformanceCase[] = [
  {
    id: '6.1/ping-answered-with-pong',
    requirements: ['KAL-1'],
    level: 'must',
    title: 'a client ping is answered with a pong echoing its id, also when several are pipelined',
    async run(ctx) {
      const user = await ctx.user();
      const s = await ctx.connect(user.devices[0]!);
      must.equal(await s.request({ type: 'ping', id: 'p-1' }, 'KAL-1'), { type: 'pong', id: 'p-1' }, 'KAL-1', 'answer to ping p-1');
      const ids = ['p-a', 'p-b', 'p-c'];
      const answers = await Promise.all(ids.map((id) => s.request({ type: 'ping', id }, 'KAL-1')));
      must.equal(answers, ids.map((id) => ({ type: 'pong', id })), 'KAL-1', 'answers to three pipelined pings');
    },
  },
  {
    id: '6.1/client-pong-not-answered',
    requirements: ['KAL-15'],
    level: 'must',
    title: 'a client pong matching no server ping is accepted and gets no answer',
    async run(ctx) {
      const user = await ctx.user();
      const s = await ctx.connect(user.devices[0]!);
      await s.quiet(QUIET_MS / 2);
      const mark = s.received.length;
      s.sendRaw({ type: 'pong', id: 'never-pinged' });
      await s.quiet(QUIET_MS);
      const answers = s.received.slice(mark).map((r) => r.frame).filter((f) => f.type !== 'ping');
      must.equal(answers, [], 'KAL-15', 'frames after a client pong');
      must.hold(s.isOpen, 'KAL-15', 'the session still open', s.closeInfo);
      must.equal(await s.request({ type: 'ping', id: 'after-pong' }, 'KAL-15'), { type: 'pong', id: 'after-pong' }, 'KAL-15', 'a ping after the pong');
    },
  },
  {
    id: '6.1/control-ping-answered',
    requirements: ['KAL-4'],
    level: 'must',
    title: 'a WebSocket control Ping is answered with a Pong carrying the same payload, before hello and on a session',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      const s = await ctx.open({ label: device.label });
      for (const payload of [Buffer.alloc(0), ctx.material.rng.bytes(125)]) {
        must.equal((await controlPing(ctx, s, payload)).toString('hex'), payload.toString('hex'), 'KAL-4', `Pong payload before hello (${payload.length} bytes)`);
      }
      must.frameType(await s.hello(device), 'welcome', 'AUT-13', `hello of ${device.label} after control pings`);
      const payload = Buffer.from('tickwire control ping');
      must.equal((await controlPing(ctx, s, payload)).toString('hex'), payload.toString('hex'), 'KAL-4', 'Pong payload on a session');
      must.equal(await s.request({ type: 'ping', id: 'after-control' }, 'KAL-1'), { type: 'pong', id: 'after-control' }, 'KAL-1', 'a ping after the control pings');
    },
  },
  {
    id: '6.2/idle-session-closed',
    requirements: ['KAL-5', 'KAL-15', 'KAL-3'],
    level: 'must',
    title: 'a session that receives nothing for idleTimeoutMs is closed with IDLE_TIMEOUT and 4408; a data frame, a control frame or a pong keeps it open',
    budgetMs: (limits) => limits.idleTimeoutMs + IDLE_CLOSE_SLACK_MS + IDLE_CHECK_AFTER_MS + 8000,
    async run(ctx) {
      const user = await ctx.user({ devices: 4 });
      const [da, db, dc, dd] = user.devices as [typeof user.devices[0], typeof user.devices[0], typeof user.devices[0], typeof user.devices[0]];
      const t0 = ctx.transcript.now();
      // Silent: sends nothing after hello, answers neither server pings nor control pings (a peer that vanished).
      const silent = await ctx.connect(da, { answerPings: false, answerControlPings: false });
      let silentClosedAt = Infinity;
      void silent.conn.closed.then(() => (silentClosedAt = ctx.transcript.now()));
      // Speaks once half-way: a ping (a data frame); answers no server ping.
      const data = await ctx.connect(db, { answerPings: false });
      // Speaks once half-way: a control Ping, and no data frame at all.
      const control = await ctx.connect(dc, { answerPings: false });
      // Only answers the server's pings, if the server sends any (KAL-3): each pong counts as a received frame (KAL-15).
      const answering = await ctx.connect(dd);
      let answeringClosedAt = Infinity;
      void answering.conn.closed.then(() => (answeringClosedAt = ctx.transcript.now()));
      const idle = silent.limits.idleTimeoutMs;

      await until(ctx, t0 + idle / 2);
      must.equal(await data.request({ type: 'ping', id: 'half-way' }, 'KAL-1'), { type: 'pong', id: 'half-way' }, 'KAL-1', 'the half-way ping');
      await controlPing(ctx, control, Buffer.from('half-way'));

      await silent.closed('KAL-5', t0 + idle + IDLE_CLOSE_SLACK_MS - ctx.transcript.now());
      await expectFatal(silent, 'IDLE_TIMEOUT', 4408, 'KAL-5');
      must.hold(silentClosedAt >= t0 + idle - IDLE_CLOSE_EARLY_MS, 'KAL-5', `no idle close before idleTimeoutMs (${idle} ms) of silence`, `closed ${Math.round(silentClosedAt - t0)} ms after hello`, silent.label);

      await until(ctx, Math.max(silentClosedAt, t0 + idle) + IDLE_CHECK_AFTER_MS);
      must.hold(data.isOpen, 'KAL-5', `the session open: its last data frame was received ${Math.round(ctx.transcript.now() - t0 - idle / 2)} ms ago, less than idleTimeoutMs`, data.closeInfo, data.label);
      must.hold(control.isOpen, 'KAL-5', `the session open: its last control frame was received ${Math.round(ctx.transcript.now() - t0 - idle / 2)} ms ago, less than idleTimeoutMs`, control.closeInfo, control.label);
      const pings = [silent, data, control, answering].flatMap((s) => s.received.map((r) => r.frame).filter((f) => f.type === 'ping'));
      for (const ping of pings) must.hold(REQUEST_ID.test(ping.id), 'KAL-3', 'a server ping id matching common.json#requestId', ping);
      if (!answering.isOpen) {
        // Without server pings it is as silent as the first one; with them, it may not be closed before idleTimeoutMs
        // after its last pong.
        const lastPong = Math.max(t0, ...answering.received.filter((r) => r.frame.type === 'ping').map((r) => r.at));
        await expectFatal(answering, 'IDLE_TIMEOUT', 4408, 'KAL-5');
        must.hold(answeringClosedAt >= lastPong + idle - IDLE_CLOSE_EARLY_MS, 'KAL-15', `no idle close within idleTimeoutMs of its last pong (at ${Math.round(lastPong - t0)} ms)`, `closed ${Math.round(answeringClosedAt - t0)} ms after hello`, answering.label);
      }
    },
  },
  {
    id: '6.3/deliberate-restart-announced',
    requirements: ['KAL-13'],
    level: 'should',
    needs: ['graceful-restart'],
    title: 'before a deliberate restart, every session gets error SERVER_RESTART and a close with 1012',
    async run(ctx) {
      const alice = await ctx.user({ devices: 2 });
      const bob = await ctx.user();
      const sessions = [await ctx.connect(alice.devices[0]!), await ctx.connect(alice.devices[1]!), await ctx.connect(bob.devices[0]!)];
      for (const s of sessions) await s.next('queue_empty', 'DLV-25');
      await ctx.restartServer('graceful');
      for (const s of sessions) await expectFatal(s, 'SERVER_RESTART', 1012, 'KAL-13');
      must.frameType(await (await ctx.connect(bob.devices[0]!)).request({ type: 'ping', id: 'after-restart' }, 'KAL-1'), 'pong', 'KAL-1', 'a session after the restart');
    },
  },
  {
    id: '6.4/slow-reader-loses-nothing',
    requirements: ['KAL-14', 'PRS-16', 'DLV-9'],
    level: 'must',
    title: 'a client that stops reading while megabytes queue up for it loses no item: it is served when it reads again, or closed with SLOW_CONSUMER (4429) and served later; presence and typing may be dropped',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const carol = await ctx.user();
      const [a1, b1] = [alice.devices[0]!, bob.devices[0]!];
      const slow = await ctx.connect(b1);
      await slow.next('queue_empty', 'DLV-25');
      must.equal(await slow.request({ type: 'subscribe_presence', id: 'sp', userIds: [carol.userId] }, 'PRS-4'), { type: 'subscribed', id: 'sp' }, 'PRS-4', 'answer to subscribe_presence');
      await slow.next('presence', 'PRS-4');
      const a = await ctx.connect(a1);
      const { window, maxEnvelopeBytes, typingPerMinute } = a.limits;
      // More than a window of the largest envelopes (up to 40): megabytes the server cannot write while nothing is read.
      const count = Math.min(window, 32) + 8;
      slow.conn.socket.pause();
      const ids = await sendPipelined(ctx, a, a1, bob, count, { bytes: maxEnvelopeBytes, inFlight: 4 });
      for (let i = 0; i < Math.min(TYPING_WHILE_PAUSED, typingPerMinute); i++) a.sendRaw({ type: 'typing', to: bob.userId, state: i % 2 === 0 ? 'started' : 'stopped' });
      await (await ctx.connect(carol.devices[0]!)).close();
      await ctx.sleep(PAUSE_MS);
      slow.conn.socket.resume();
      // Either the session is served or it ends with SLOW_CONSUMER, and then a later session gets what is left. Items
      // are never dropped; presence and typing may be (PRS-16).
      const delivered = new Set<string>();
      const collect = (items: Array<{ kind: string; messageId?: string }>) => items.forEach((i) => i.kind === 'message' && delivered.add(i.messageId!));
      let acked = 0;
      const outcome = await slow.until(
        () => {
          if (slow.closeInfo) return 'closed';
          // More items than the window: acknowledge what came so that the rest can follow.
          const highest = Math.max(0, ...slow.items.map((r) => r.frame.seq));
          if (highest > acked) {
            slow.ack({ upTo: highest });
            acked = highest;
          }
          return ids.every((id) => slow.items.some((r) => r.frame.kind === 'message' && r.frame.messageId === id)) ? 'served' : undefined;
        },
        'DLV-9',
        `all ${count} messages, or a SLOW_CONSUMER close`,
      );
      collect(slow.items.map((r) => r.frame));
      if (outcome === 'closed') {
        await expectFatal(slow, 'SLOW_CONSUMER', 4429, 'KAL-14');
        // One item at a time (a window of 1 keeps what the server writes at once small), the device gets them all.
        collect(await drain(await ctx.connect(b1, { receiveMax: 1 }), 'DLV-9'));
      }
      must.equal(ids.filter((id) => !delivered.has(id)), [], 'DLV-9', `messages not delivered of ${count} sent while ${b1.label} did not read`);
      // A session served in full may still be closed for what waits to be written, but only with SLOW_CONSUMER.
      if (outcome === 'served' && slow.closeInfo) await expectFatal(slow, 'SLOW_CONSUMER', 4429, 'KAL-14');
      const typing = slow.received.filter((r) => r.frame.type === 'typing').length;
      const presence = slow.received.filter((r) => r.frame.type === 'presence').length;
      ctx.note(`while not reading: ${typing} typing and ${presence - 1} presence frames arrived (PRS-16 allows dropping them)`);
    },
  },
  {
    id: '6.4/prompt-reader-never-slow-consumer',
    requirements: ['KAL-16', 'DLV-9', 'DLV-31'],
    level: 'must',
    title: 'a backlog of megabytes of the largest envelopes drains to a client that reads and acknowledges promptly, without SLOW_CONSUMER',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const { maxEnvelopeBytes, maxFrameBytes, maxQueueItems } = a.limits;
      // Twice the smallest threshold KAL-14 allows (4 x maxFrameBytes) in base64 envelopes of the largest size: more
      // than a server may buffer at once, so it has to pace what it writes.
      const perItem = Math.ceil(maxEnvelopeBytes / 3) * 4;
      const count = Math.min(maxQueueItems, 200, Math.max(16, Math.ceil((8 * maxFrameBytes) / perItem)));
      const ids = await sendPipelined(ctx, a, alice.devices[0]!, bob, count, { bytes: maxEnvelopeBytes, inFlight: 4 });
      ctx.note(`${count} messages of ${maxEnvelopeBytes} bytes queued for ${bob.devices[0]!.label} while offline`);
      const b = await ctx.connect(bob.devices[0]!);
      let items: Awaited<ReturnType<typeof drain>> = [];
      try {
        items = await drain(b, 'KAL-16');
      } catch (error) {
        if (b.closeInfo) must.fail('KAL-16', 'the session to stay open while its client reads every frame', b.closeInfo);
        throw error;
      }
      must.equal(items.filter((i) => i.kind === 'message').map((i) => (i.kind === 'message' ? i.messageId : '')), ids, 'DLV-31', 'the backlog, in order');
      await b.quiet(QUIET_MS);
      must.hold(b.isOpen, 'KAL-16', 'the session still open after the drain', b.closeInfo);
    },
  },
];
