// Sections 4.12 and 4.14 of PROTOCOL.md: a second connection for the same device replaces the first, and what a
// server promised before a restart still holds after it (cases needing a restart run alone, after all others).
import type { ConformanceCase } from '../case.ts';
import type { Device } from '../context.ts';
import { as, must } from '../expect.ts';
import { sendOk } from '../messaging.ts';

/** How long a case listens for presence frames that must not come. */
const PRESENCE_QUIET_MS = 500;

export const cases: ConformanceCase[] = [
  {
    id: '4.12/session-replaced',
    requirements: ['DLV-34', 'DLV-35', 'DLV-36', 'ERR-9'],
    level: 'must',
    title: 'a second hello for a device ends the first session with SESSION_REPLACED and 4409; in-flight items move over',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a1: Device = alice.devices[0]!;
      const b1: Device = bob.devices[0]!;
      const a = await ctx.connect(a1);
      const sent = await sendOk(ctx, a, a1, bob);
      const old = await ctx.connect(b1);
      const [item] = await old.takeItems(1, 'DLV-9');
      const fresh = await ctx.connect(b1);
      // DLV-34: the old session is closed before welcome is sent on the new one, so its error has already been sent.
      const info = await old.closed('DLV-34');
      must.hold(old.received.some((r) => r.frame.type === 'error' && r.frame.code === 'SESSION_REPLACED'), 'DLV-34', 'error SESSION_REPLACED on the old session', old.received.map((r) => r.frame));
      must.equal({ code: info.code, reason: info.reason }, { code: 4409, reason: 'SESSION_REPLACED' }, 'DLV-34', 'close of the old session');
      const [moved] = await fresh.takeItems(1, 'DLV-36');
      must.equal({ seq: moved!.seq, redelivered: moved!.redelivered }, { seq: item!.seq, redelivered: true }, 'DLV-36', 'the in-flight item on the new session');
      must.hold(moved!.kind === 'message' && moved!.messageId === sent.messageId, 'DLV-36', `message ${sent.messageId}`, moved);
      must.frameType(await fresh.request({ type: 'ping', id: 'new-alive' }, 'KAL-1'), 'pong', 'KAL-1');
      const answer = as(await sendOk(ctx, a, a1, bob).then((s) => s.answer), 'send_ok', 'MSG-12');
      await fresh.item('DLV-35', (i) => i.kind === 'message' && i.messageId === answer.messageId, 'the next message on the new session');
      must.hold(!old.items.some((r) => r.frame.kind === 'message' && r.frame.messageId === answer.messageId), 'DLV-35', 'nothing delivered on the replaced session', old.items.map((r) => r.frame));
    },
  },
  {
    id: '4.12/replacement-keeps-presence',
    requirements: ['DLV-37', 'PRS-6'],
    level: 'must',
    title: 'replacing a session sends no presence frame to subscribers: the user stays online throughout',
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const b1 = bob.devices[0]!;
      const watcher = await ctx.connect(alice.devices[0]!);
      must.equal(await watcher.request({ type: 'subscribe_presence', id: 'sp', userIds: [bob.userId] }, 'PRS-4'), { type: 'subscribed', id: 'sp' }, 'PRS-4', 'answer to subscribe_presence');
      must.equal((await watcher.next('presence', 'PRS-4')).status, 'offline', 'PRS-4', `${bob.label} before any session`);
      const old = await ctx.connect(b1);
      must.equal((await watcher.next('presence', 'PRS-6')).status, 'online', 'PRS-6', `${bob.label} after its first session`);
      const mark = watcher.received.length;
      const fresh = await ctx.connect(b1);
      await old.closed('DLV-34');
      await watcher.quiet(PRESENCE_QUIET_MS);
      must.equal(watcher.received.slice(mark).map((r) => r.frame).filter((f) => f.type === 'presence'), [], 'DLV-37', 'presence frames around the replacement');
      // The subscription still works: the close of the new session is a real transition.
      await fresh.close();
      must.equal((await watcher.next('presence', 'PRS-6')).status, 'offline', 'PRS-6', `${bob.label} after its last session closed`);
    },
  },
  {
    id: '4.14/accepted-items-survive-restart',
    requirements: ['DLV-39', 'MSG-12', 'RCP-11', 'DLV-3'],
    level: 'must',
    title: 'messages and read receipts answered send_ok/receipt_ok before a restart are delivered after it',
    needs: ['restart'],
    async run(ctx) {
      const alice = await ctx.user();
      const bob = await ctx.user();
      const a1 = alice.devices[0]!;
      const b1 = bob.devices[0]!;
      const a = await ctx.connect(a1);
      const first = await sendOk(ctx, a, a1, bob);
      const second = await sendOk(ctx, a, a1, bob);
      const b = await ctx.connect(b1);
      const seen = await b.takeItems(2, 'DLV-9');
      must.frameType(await b.request({ type: 'receipt', id: 'rr', to: { userId: a1.userId, deviceId: a1.deviceId }, status: 'read', messageIds: [first.messageId] }, 'RCP-11'), 'receipt_ok', 'RCP-11');
      await ctx.restartServer();
      const after = await ctx.connect(b1);
      const items = await after.takeItems(2, 'DLV-39');
      must.equal(items.map((i) => (i.kind === 'message' ? i.messageId : i.kind)), [first.messageId, second.messageId], 'DLV-39', 'messages after the restart');
      must.equal(items.map((i) => i.seq), seen.map((i) => i.seq), 'DLV-3', 'seqs keep naming the same items after the restart');
      const sender = await ctx.connect(a1);
      await sender.item('DLV-39', (i) => i.kind === 'receipt' && i.status === 'read' && i.messageIds.includes(first.messageId), 'the read receipt after the restart');
    },
  },
  {
    id: '4.14/deleted-device-stays-revoked-after-restart',
    requirements: ['IDN-27', 'DLV-39', 'IDN-13'],
    level: 'must',
    title: 'a device deleted before a restart stays revoked after it; a device registered before it still works',
    needs: ['restart'],
    async run(ctx) {
      const user = await ctx.user({ devices: 2 });
      const [d1, d2] = user.devices as [Device, Device];
      must.status(await ctx.http('deleteDevice', { params: { deviceId: d2.deviceId }, credentials: d1 }), 204, 'IDN-24');
      await ctx.restartServer();
      must.httpError(await ctx.http('listDevices', { credentials: d2 }), 401, 'UNAUTHORIZED', 'IDN-27', 'deleted credentials after a restart');
      const session = await ctx.open({ label: d2.label });
      must.errorFrame(await session.hello(d2, { id: 'h' }), 'AUTH_FAILED', 'IDN-27', 'h');
      must.status(await ctx.http('listDevices', { credentials: d1 }), 200, 'IDN-13', 'the remaining device after a restart');
    },
  },
];
