// Section 4.3 of PROTOCOL.md when storage fails (MSG-18): a send the server cannot make durable is answered
// TEMPORARILY_UNAVAILABLE, never send_ok, and nothing of it is delivered (DLV-4); once storage works again the client's
// resend with the same messageId is accepted and delivered once, whether or not the first attempt had been stored.
// These cases break the server's storage from outside (`--fault-cmd`/`--heal-cmd`, or prlimit on the built-in server).
// A hello during the fault is either decided without storage (welcome) or told to try again later (AUT-20), never
// answered as a fault of the server.
import type { ConformanceCase } from '../case.ts';
import { as, must } from '../expect.ts';
import { send } from '../messaging.ts';

/** How long the recipient listens for a delivery that must not come while storage is down. */
const QUIET_MS = 500;

export const cases: ConformanceCase[] = [
  {
    id: '2.9/hello-during-storage-fault',
    requirements: ['AUT-20', 'AUT-16', 'AUT-13'],
    level: 'must',
    needs: ['storage-fault'],
    title: 'a hello while storage fails gets welcome or TEMPORARILY_UNAVAILABLE with close 1013, and welcome once healed',
    async run(ctx) {
      const user = await ctx.user();
      const device = user.devices[0]!;
      await ctx.injectStorageFault();
      try {
        const session = await ctx.open({ label: 'during-fault' });
        const answer = await session.hello(device, { id: 'h-fault' });
        if (answer.type !== 'welcome') {
          // A server that needs its storage to decide the hello says so, and ends the connection [AUT-16].
          const error = as(answer, 'error', 'AUT-20', 'the answer to a hello while storage fails, if not welcome');
          must.errorFrame(error, 'TEMPORARILY_UNAVAILABLE', 'AUT-20', 'h-fault', 'a hello while storage fails');
          must.hold(typeof error.retryAfterMs === 'number' && error.retryAfterMs >= 1, 'AUT-20', 'retryAfterMs of at least 1', error);
          const closed = await session.closed('AUT-20');
          must.equal(closed.code, 1013, 'AUT-20', 'the close code after TEMPORARILY_UNAVAILABLE to a hello');
        } else await session.close();
      } finally {
        await ctx.healStorageFault();
      }
      const again = await ctx.open({ label: 'healed' });
      as(await again.hello(device, { id: 'h-healed' }), 'welcome', 'AUT-13', 'a hello once storage works again');
      await again.close();
    },
  },
  {
    id: '4.3/storage-fault-never-acked',
    requirements: ['MSG-18', 'DLV-4', 'MSG-16'],
    level: 'must',
    needs: ['storage-fault'],
    title: 'while storage fails a send gets TEMPORARILY_UNAVAILABLE and is not delivered; once healed its resend is delivered once',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a = await ctx.connect(alice.devices[0]!);
      const b = await ctx.connect(bob.devices[0]!);
      await b.next('queue_empty', 'DLV-25');

      await ctx.injectStorageFault();
      const failed = await send(ctx, a, alice.devices[0]!, bob);
      must.errorFrame(failed.answer, 'TEMPORARILY_UNAVAILABLE', 'MSG-18', failed.id, 'a send while storage fails');
      const during = (await b.quiet(QUIET_MS)).filter((f) => f.type === 'deliver');
      must.equal(during, [], 'DLV-4', 'deliveries to the recipient while storage fails');
      await ctx.healStorageFault();

      // The first attempt "may or may not have been accepted" (MSG-18), so the resend may be a duplicate; either way the
      // recipient ends up with the message exactly once.
      const resent = await send(ctx, a, alice.devices[0]!, bob, { messageId: failed.messageId });
      const ok = as(resent.answer, 'send_ok', 'MSG-18', `the resend of ${failed.messageId} once storage works`);
      must.equal({ id: ok.id, messageId: ok.messageId }, { id: resent.id, messageId: failed.messageId }, 'MSG-12', 'send_ok of the resend');
      const [item] = await b.takeItems(1, 'DLV-9');
      must.hold(item!.kind === 'message' && item!.messageId === failed.messageId, 'DLV-9', `message ${failed.messageId}`, item);
      b.ack({ upTo: item!.seq });
      const later = (await b.quiet(QUIET_MS)).flatMap((f) => (f.type === 'deliver' ? f.items : []));
      must.equal(later.filter((i) => i.kind === 'message' && i.messageId === failed.messageId), [], 'MSG-16', 'further copies of the message');
    },
  },
];
