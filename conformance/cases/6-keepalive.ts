// Section 6.1 of PROTOCOL.md: application-level ping and pong. The server answers a client ping with a pong echoing
// its id, and never answers a client pong, even one whose id matches no ping it sent. Server pings (KAL-3) are
// answered by the wire client and ignored here.
import type { ConformanceCase } from '../case.ts';
import { must } from '../expect.ts';

/** How long a case listens for a frame that must not come. */
const QUIET_MS = 400;

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
];
