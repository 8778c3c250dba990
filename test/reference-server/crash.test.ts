// The reference server as a child process killed with SIGKILL in the middle of a send burst, restarted on the same
// data directory: every message acknowledged to its sender (send_ok) is delivered, in order, nothing is delivered that
// was never sent, and the receipt chain survives. Repeated with the kill at several points, and with the recipient
// online and acknowledging while the server dies.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection, type Credentials } from '../../reference-client/wire/connection.ts';
import { HttpApi } from '../../reference-client/wire/http.ts';
import type { DeliverFrame, MessageItem } from '../../spec/index.ts';

const BIN = fileURLToPath(new URL('../../bin/tickwire.js', import.meta.url));
const KEY = 'BQ' + 'A'.repeat(42);
const SIG = 'A'.repeat(86) + '==';

interface Server {
  proc: ChildProcess;
  url: string;
  logs: string[];
}

async function startServer(dataDir: string): Promise<Server> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'debug', '--registrations-per-minute', '1000'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => logs.push(chunk));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out} ${logs.join('')}`)), 30_000);
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const match = /serving on (http:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}: ${logs.join('')}`)));
  });
  return { proc, url, logs };
}

async function kill(server: Server): Promise<void> {
  if (server.proc.exitCode !== null) return;
  const exited = new Promise((resolve) => server.proc.once('exit', resolve));
  server.proc.kill('SIGKILL');
  await exited;
}

function secret(): string {
  return randomBytes(32).toString('base64url');
}

async function register(api: HttpApi, username: string): Promise<Credentials> {
  const credentials = { secret: secret() };
  const result = await api.call<{ userId: string; deviceId: number }>('register', {
    body: {
      username,
      device: { name: username, secret: credentials.secret, registrationId: 1, identityKey: KEY, signedPreKey: { keyId: 1, publicKey: KEY, signature: SIG } },
    },
  });
  if (result.status !== 201) throw new Error(`register ${username}: ${result.status} ${JSON.stringify(result.body)}`);
  return { userId: result.body.userId, deviceId: result.body.deviceId, secret: credentials.secret };
}

const envelopeFor = (messageId: string) => Buffer.from(`envelope:${messageId}:`.padEnd(96, '.')).toString('base64');

/** Sends numbered messages with up to 32 in flight until stopped; records the ids the server acknowledged. */
function burst(connection: Connection, to: Credentials, prefix: string) {
  const acknowledged: string[] = [];
  const attempted = new Set<string>();
  let stopped = false;
  let n = 0;
  const done = (async () => {
    const lanes = Array.from({ length: 32 }, async () => {
      while (!stopped && connection.isOpen) {
        const messageId = `${prefix}${String(n++).padStart(7, '0')}`;
        attempted.add(messageId);
        try {
          const answer = await connection.request({ type: 'send', messageId, to: to.userId, envelopes: [{ deviceId: to.deviceId, type: 'ratchet', body: envelopeFor(messageId) }] });
          if (answer.type === 'send_ok') acknowledged.push(messageId);
        } catch {
          return; // the server died under us
        }
      }
    });
    await Promise.all(lanes);
  })();
  return { acknowledged, attempted, stop: () => (stopped = true), done };
}

/** Connects `who` and collects every message item until queue_empty and `expected` ids have arrived. */
async function drain(url: string, who: Credentials, expected: Set<string>, timeoutMs = 60_000): Promise<MessageItem[]> {
  const connection = await Connection.connect(url, who, { receiveMax: 1000 });
  const items: MessageItem[] = [];
  const seen = new Set<string>();
  let sawEmpty = false;
  const finished = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`drain timed out with ${seen.size} of ${expected.size}`)), timeoutMs);
    const check = () => {
      if (sawEmpty && [...expected].every((id) => seen.has(id))) {
        clearTimeout(timer);
        resolve();
      }
    };
    connection.on('deliver', (frame: DeliverFrame) => {
      for (const item of frame.items) if (item.kind === 'message') {
        items.push(item);
        seen.add(item.messageId);
      }
      connection.sendRaw({ type: 'ack', upTo: frame.items[frame.items.length - 1]!.seq });
      check();
    });
    connection.on('queue_empty', () => {
      sawEmpty = true;
      check();
    });
  });
  await finished;
  await connection.close();
  return items;
}

t.test('kill -9 during a send burst loses no acknowledged message', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-crash-'));
  let server = await startServer(dataDir);
  t.teardown(() => kill(server));
  const api = new HttpApi(server.url);
  const alice = await register(api, 'alice');
  const bob = await register(api, 'bob');
  const allAcknowledged: string[] = [];
  const allAttempted = new Set<string>();

  for (const [round, killAfter] of [150, 600, 1200].entries()) {
    const sender = await Connection.connect(server.url, alice);
    const run = burst(sender, bob, `r${round}-`);
    while (run.acknowledged.length < killAfter) await new Promise((r) => setTimeout(r, 2));
    await kill(server); // mid-burst: sends are in flight, some durable and unanswered, some not yet written
    run.stop();
    await run.done;
    allAcknowledged.push(...run.acknowledged);
    for (const id of run.attempted) allAttempted.add(id);
    sender.terminate();
    server = await startServer(dataDir);

    const items = await drain(server.url, bob, new Set(allAcknowledged));
    const ids = items.map((i) => i.messageId);
    const acknowledgedSet = new Set(allAcknowledged);
    t.ok(allAcknowledged.every((id) => ids.includes(id)), `round ${round}: all ${allAcknowledged.length} acknowledged messages delivered after the restart`);
    t.ok(ids.every((id) => allAttempted.has(id)), `round ${round}: nothing delivered that was never sent`);
    t.ok(items.every((i) => i.envelope.body === envelopeFor(i.messageId) && i.from.userId === alice.userId), `round ${round}: every envelope intact and from alice`);
    const firstSeen = [...new Set(ids)];
    t.same(firstSeen, [...firstSeen].sort(), `round ${round}: first deliveries in send order`);
    const unacknowledgedDelivered = firstSeen.filter((id) => !acknowledgedSet.has(id)).length;
    t.comment(`round ${round}: killed after ${run.acknowledged.length} acknowledged; ${unacknowledgedDelivered} unanswered sends had become durable`);
    allAcknowledged.length = 0; // bob acknowledged them all; the next round starts from an empty queue
  }
});

t.test('kill -9 while the recipient acknowledges: delivered receipts reach the sender after restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-crash-'));
  let server = await startServer(dataDir);
  t.teardown(() => kill(server));
  const api = new HttpApi(server.url);
  const alice = await register(api, 'alice');
  const bob = await register(api, 'bob');
  const sender = await Connection.connect(server.url, alice);
  const ids: string[] = [];
  for (let i = 0; i < 300; i++) {
    const messageId = `rc-${String(i).padStart(6, '0')}`;
    const answer = await sender.request({ type: 'send', messageId, to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: envelopeFor(messageId) }] });
    t.equal(answer.type, 'send_ok');
    ids.push(messageId);
  }
  await sender.close();
  // bob acknowledges everything; the server dies right after the last ack is sent.
  const recipient = await Connection.connect(server.url, bob, { receiveMax: 1000 });
  let delivered = 0;
  await new Promise<void>((resolve) => {
    recipient.on('deliver', (frame) => {
      delivered += frame.items.length;
      recipient.sendRaw({ type: 'ack', upTo: frame.items[frame.items.length - 1]!.seq });
      if (delivered >= 300) resolve();
    });
  });
  await new Promise((r) => setTimeout(r, 1500)); // DLV-16: removals durable within a second
  await kill(server);
  recipient.terminate();
  server = await startServer(dataDir);

  // Every message got at least one delivered receipt, durable with its removal (RCP-5).
  const receipts = new Set<string>();
  const aliceAgain = await Connection.connect(server.url, alice, { receiveMax: 1000 });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${receipts.size} receipts`)), 20_000);
    aliceAgain.on('deliver', (frame) => {
      for (const item of frame.items) if (item.kind === 'receipt' && item.status === 'delivered') for (const id of item.messageIds) receipts.add(id);
      aliceAgain.sendRaw({ type: 'ack', upTo: frame.items[frame.items.length - 1]!.seq });
      if (receipts.size === ids.length) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  t.equal(receipts.size, 300, 'a delivered receipt for every message survived the kill');
  // And bob's queue holds none of them any more: the acks were durable too.
  const left = await drain(server.url, bob, new Set());
  t.equal(left.length, 0, 'no acknowledged message comes back');
  await aliceAgain.close();
});

t.test('the data directory and the logs never hold a plaintext the client encrypted', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-crash-'));
  const server = await startServer(dataDir);
  t.teardown(() => kill(server));
  const api = new HttpApi(server.url);
  const alice = await register(api, 'alice');
  const bob = await register(api, 'bob');
  const plaintext = 'the eagle lands at midnight 7f3a';
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const sender = await Connection.connect(server.url, alice);
  const answer = await sender.request({ type: 'send', messageId: 'secret-0001', to: bob.userId, envelopes: [{ deviceId: 1, type: 'ratchet', body: ciphertext.toString('base64') }] });
  t.equal(answer.type, 'send_ok');
  await sender.close();
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk(dataDir);
  const forms = [plaintext, Buffer.from(plaintext).toString('base64'), Buffer.from(plaintext).toString('hex')];
  const leaks = files.filter((file) => {
    const content = readFileSync(file).toString('latin1');
    return forms.some((form) => content.includes(form));
  });
  t.same(leaks, [], 'no file in the data directory contains the plaintext');
  t.notOk(server.logs.join('').includes(ciphertext.toString('base64')), 'the logs do not even contain the ciphertext');
  t.notOk(server.logs.join('').includes(alice.secret), 'nor a device secret');
});
