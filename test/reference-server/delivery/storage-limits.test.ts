// Queue capacity and storage failure, end to end over real sockets: QUEUE_FULL once a device queue holds
// maxQueueItems [MSG-9], and TEMPORARILY_UNAVAILABLE (never a false send_ok) when the disk is full [MSG-18], with
// recovery without operator action once space returns.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '../../../reference-client/wire/connection.ts';
import { HttpApi } from '../../../reference-client/wire/http.ts';
import { body, messageId, registerUser, startTestServer, deviceRegistration, username } from '../helpers.ts';

t.test('QUEUE_FULL names the full device once its queue holds maxQueueItems', async (t) => {
  const server = await startTestServer(t, { limits: { maxQueueItems: 1000 } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const sender = await Connection.connect(server.url, alice);
  t.teardown(() => sender.close());
  const send = (id = messageId()) => sender.request({ type: 'send', messageId: id, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: body(16) }] });
  const answers = [];
  for (let batch = 0; batch < 5; batch++) answers.push(...(await Promise.all(Array.from({ length: 200 }, () => send()))));
  t.ok(answers.every((a) => a.type === 'send_ok'), 'a thousand sends fill the queue');
  const refused = await send();
  t.match(refused, { type: 'error', code: 'QUEUE_FULL', details: { deviceIds: [1] } });
  // A read receipt into the full queue is refused the same way [RCP-10] ...
  const receipt = await sender.request({ type: 'receipt', to: { userId: bob.userId, deviceId: 1 }, status: 'read', messageIds: ['m-00000001'] });
  t.match(receipt, { type: 'error', code: 'QUEUE_FULL', details: { deviceIds: [1] } });
  // ... and once bob acknowledges, there is room again.
  const recipient = await Connection.connect(server.url, bob, { receiveMax: 64 });
  t.teardown(() => recipient.close());
  const first = await recipient.waitFor('deliver');
  recipient.sendRaw({ type: 'ack', upTo: first.items[first.items.length - 1]!.seq });
  let accepted = false;
  for (let attempt = 0; attempt < 250 && !accepted; attempt++) {
    accepted = (await send()).type === 'send_ok';
    if (!accepted) await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(accepted, 'a send succeeds after the recipient acknowledged');
});

// A real full disk: the data directory on a small tmpfs. Needs root (CI and the dev machines run as root).
function mountTmpfs(sizeKiB: number): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmdirSync(dir);
    return undefined;
  }
}

const mount = mountTmpfs(4096);
const skip = mount ? false : 'cannot mount a tmpfs here (needs root): the full-disk case is not checked';
t.test('a full disk gives TEMPORARILY_UNAVAILABLE, never a false send_ok, and the server recovers by itself', { skip }, async (t) => {
  if (!mount) return;
  t.teardown(() => {
    try {
      execFileSync('umount', [mount]);
      rmdirSync(mount);
    } catch {
      // best effort
    }
  });
  const dataDir = join(mount, 'data');
  const server = await startTestServer(t, { config: { dataDir } });
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const sender = await Connection.connect(server.url, alice);
  t.teardown(() => sender.close());
  const big = Buffer.alloc(48 * 1024, 7).toString('base64');
  const send = (id: string) => sender.request({ type: 'send', messageId: id, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: big }] });
  t.equal((await send('before-full-1')).type, 'send_ok');

  // Fill the file system, leaving less room than one envelope.
  const filler = join(mount, 'filler');
  let size = 4096 * 1024;
  for (;;) {
    try {
      writeFileSync(filler, Buffer.alloc(size));
      break;
    } catch {
      size -= 4096;
    }
  }
  const refused = await send('during-full-1');
  t.match(refused, { type: 'error', code: 'TEMPORARILY_UNAVAILABLE' }, 'the send is refused, not acknowledged');
  const api = new HttpApi(server.url);
  // A hundred prekeys make the record larger than the slack left in the log's last page.
  const register = await api.call('register', { body: { username: username(), device: deviceRegistration(100) } });
  t.equal(register.status, 503, 'HTTP writes answer 503');
  t.match(register.body, { error: { code: 'TEMPORARILY_UNAVAILABLE' } });
  t.same(register.issues, []);

  rmSync(filler);
  const retried = await send('during-full-1');
  t.match(retried, { type: 'send_ok', duplicate: false }, 'the same messageId succeeds once space is back: the refused send left no trace');
  t.equal((await send('after-full-2')).type, 'send_ok');

  // Exactly the acknowledged messages reach bob, each once.
  const recipient = await Connection.connect(server.url, bob, { receiveMax: 64 });
  t.teardown(() => recipient.close());
  const ids: string[] = [];
  await new Promise<void>((resolve) => {
    recipient.on('deliver', (frame) => {
      for (const item of frame.items) if (item.kind === 'message') ids.push(item.messageId);
      recipient.sendRaw({ type: 'ack', upTo: frame.items[frame.items.length - 1]!.seq });
    });
    recipient.on('queue_empty', () => resolve());
  });
  await new Promise((r) => setTimeout(r, 200));
  t.same(ids, ['before-full-1', 'during-full-1', 'after-full-2']);
});
