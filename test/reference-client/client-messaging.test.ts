// The messaging library against a real reference server over real sockets, with real state directories: messages
// both ways with the full tick chain, offline delivery, STALE_DEVICES recovery when the recipient links a device,
// prekey replenishment after prekeys_low, and a tampered envelope from a malicious raw-wire sender.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TickwireClient } from '../../reference-client/client.ts';
import {
  InMemoryProtocolStore,
  processPreKeyBundle,
  SessionCipher,
  seededRandom,
  utf8,
} from '../../reference-client/e2e/index.ts';
import { bundleFromWire } from '../../reference-client/session-manager.ts';
import { Connection } from '../../reference-client/wire/connection.ts';
import { HttpApi } from '../../reference-client/wire/http.ts';
import type { PreKeyBundleResponse, PreKeyCountResponse, ReceiptItem } from '../../spec/index.ts';
import { clientOptions, credentialsIn, newClient, Recorder, startRestartableServer, tempStateDir, uniqueName } from './client-harness.ts';

const SEED = process.env['TICKWIRE_TEST_SEED'] ?? 'client-messaging';
t.comment(`seed ${SEED}`);

t.test('two users exchange messages both ways; ticks go sent → delivered → read', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob');
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  t.equal(await alice.client.lookup(bob.client.username), bob.client.address.userId, 'lookup finds bob');
  t.equal(await alice.client.lookup('nobody_here_zz'), undefined, 'lookup of an unknown name');

  const { messageId } = await alice.client.send(bob.client.address.userId, 'hello bob');
  t.match(messageId, /^[A-Za-z0-9_-]{8,64}$/);
  await bob.rec.until(() => bob.rec.texts().includes('hello bob'), 'bob receives');
  const [received] = bob.rec.of('message').map(([m]) => m);
  t.same(received!.from, alice.client.address, 'from is alice’s device');
  t.equal(received!.messageId, messageId);
  await alice.rec.until(() => alice.client.tickOf(messageId) === 'delivered', 'delivered tick');

  await bob.client.markRead(received!.from, [messageId]);
  await alice.rec.until(() => alice.client.tickOf(messageId) === 'read', 'read tick');
  const statuses = alice.rec.of('receipt').filter(([r]) => r.messageId === messageId).map(([r]) => r.status);
  t.same(statuses, ['sent', 'delivered', 'read'], 'receipts in tick order');

  // And back, now on the established ratchet.
  const reply = await bob.client.send(alice.client.address.userId, utf8('hi alice ✓'));
  await alice.rec.until(() => alice.rec.texts().includes('hi alice ✓'), 'alice receives the reply');
  await bob.rec.until(() => bob.client.tickOf(reply.messageId) === 'delivered', 'reply delivered');
  for (let i = 0; i < 5; i++) await alice.client.send(bob.client.address.userId, `burst ${i}`);
  await bob.rec.until(() => bob.rec.texts().filter((x) => x.startsWith('burst')).length === 5, 'burst');
  t.same(bob.rec.texts().filter((x) => x.startsWith('burst')), [0, 1, 2, 3, 4].map((i) => `burst ${i}`), 'in order');
  t.same([...alice.rec.of('warning'), ...bob.rec.of('warning')], [], 'no warnings');
  await alice.rec.until(() => alice.client.outboxSize === 0, 'every send_ok');
  t.equal(alice.client.outboxSize, 0, 'outbox empty');
});

t.test('an offline recipient gets its messages on connect, then caughtUp', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob');
  await alice.client.connect();
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await alice.client.send(bob.client.address.userId, `offline ${i}`)).messageId);
  await alice.rec.until(() => ids.every((id) => alice.client.tickOf(id) === 'sent'), 'sent ticks');
  await bob.client.connect();
  await bob.rec.until(() => bob.rec.of('caughtUp').length === 1, 'caughtUp');
  t.same(bob.rec.texts(), ['offline 0', 'offline 1', 'offline 2'], 'backlog delivered in order before caughtUp');
  await alice.rec.until(() => ids.every((id) => alice.client.tickOf(id) === 'delivered'), 'delivered ticks');
});

t.test('STALE_DEVICES: the recipient links a second device and both devices get the message', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob');
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  await alice.client.send(bob.client.address.userId, 'before');
  await bob.rec.until(() => bob.rec.texts().includes('before'), 'first message');

  const { code } = await bob.client.createLinkCode();
  const dir2 = tempStateDir(t);
  const bob2 = await TickwireClient.link(clientOptions(server, dir2), code, 'bob laptop', bob.client.username);
  t.teardown(() => bob2.close());
  const rec2 = new Recorder(bob2);
  t.equal(bob2.address.userId, bob.client.address.userId, 'same user');
  t.not(bob2.address.deviceId, bob.client.address.deviceId, 'new device');
  t.equal(bob2.username, bob.client.username, 'username remembered after lookup');
  await bob2.connect();

  const { messageId } = await alice.client.send(bob.client.address.userId, 'after linking');
  await bob.rec.until(() => bob.rec.texts().includes('after linking'), 'device 1 receives');
  await rec2.until(() => rec2.texts().includes('after linking'), 'device 2 receives');
  await alice.rec.until(() => alice.client.tickOf(messageId) === 'delivered', 'delivered');
  t.equal(alice.rec.texts().length, 0);
  t.same(alice.rec.of('warning'), [], 'the stale round is handled silently');
  // Both Bob devices answer; alice decrypts both.
  await bob2.send(alice.client.address.userId, 'from the laptop');
  await alice.rec.until(() => alice.rec.texts().includes('from the laptop'), 'alice receives from device 2');
  t.same(alice.rec.of('message').at(-1)![0].from, bob2.address);
});

t.test('one-time prekeys are replenished after prekeys_low', async (t) => {
  const server = await startRestartableServer(t, { prekeyLowWater: 5 });
  const bob = await newClient(t, server, 'bob', { preKeyBatch: 8 });
  const eve = await newClient(t, server, 'eve');
  await bob.client.connect();
  const http = new HttpApi(server.url);
  const bobCreds = credentialsIn(bob.stateDir);
  const count = async () => (await http.call<PreKeyCountResponse>('getPreKeyCount', { credentials: bobCreds })).body.oneTimePreKeys;
  t.equal(await count(), 8, 'registered with the batch');
  // Drain four bundles as another user: 4 remain, below lowWater 5, so the server pushes prekeys_low.
  for (let i = 0; i < 4; i++) {
    const answer = await http.call<PreKeyBundleResponse>('getPreKeyBundle', { credentials: credentialsIn(eve.stateDir), params: { userId: bobCreds.userId } });
    t.equal(answer.status, 200);
  }
  const deadline = Date.now() + 10_000;
  let now = await count();
  while (now < 8 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    now = await count();
  }
  t.equal(now, 8, 'topped up to the batch again');
  const stored = JSON.parse(readFileSync(join(bob.stateDir, 'prekeys.json'), 'utf8')) as { oneTime: unknown[] };
  t.equal(stored.oneTime.length, 12, 'the new private keys are on disk (8 + 4 new; consumed ones stay until used)');
  t.same(bob.rec.of('warning'), []);
});

t.test('a tampered envelope from a raw-wire sender is warned about and acknowledged, not delivered', async (t) => {
  const server = await startRestartableServer(t);
  const bob = await newClient(t, server, 'bob');
  await bob.client.connect();
  // Mallory: real keys (so the envelope is well formed), raw HTTP and a raw wire Connection.
  const random = seededRandom(`${SEED}/mallory`);
  const mallory = InMemoryProtocolStore.create(random);
  const signed = mallory.makeBundle(random, 1);
  const http = new HttpApi(server.url);
  const secret = Buffer.from(random(32)).toString('base64url');
  const reg = await http.call<{ userId: string; deviceId: number }>('register', {
    body: {
      username: uniqueName('mallory'),
      device: {
        name: 'mallory',
        secret,
        registrationId: mallory.localRegistrationId(),
        identityKey: Buffer.from(signed.identityKey).toString('base64'),
        signedPreKey: { keyId: 1, publicKey: Buffer.from(signed.signedPreKey).toString('base64'), signature: Buffer.from(signed.signedPreKeySignature).toString('base64') },
      },
    },
  });
  t.equal(reg.status, 201);
  const creds = { userId: reg.body.userId, deviceId: reg.body.deviceId, secret };
  const bundles = await http.call<PreKeyBundleResponse>('getPreKeyBundle', { credentials: creds, params: { userId: bob.client.address.userId } });
  const bobDevice = bundles.body.devices[0]!;
  const address = `${bob.client.address.userId}.${bobDevice.deviceId}`;
  processPreKeyBundle(mallory, address, bundleFromWire(bobDevice), { random });
  const cipher = new SessionCipher(mallory, address, { random });
  const evil = cipher.encrypt(utf8('evil'));
  evil.body[evil.body.length - 1]! ^= 0x01; // flip a bit of the MAC
  const good = cipher.encrypt(utf8('honest after all'));

  const wire = await Connection.connect(server.url, creds);
  t.teardown(() => wire.close());
  const deliveredReceipt = new Promise<ReceiptItem>((resolve) => {
    wire.on('deliver', (frame) => {
      for (const item of frame.items) {
        if (item.kind === 'receipt' && item.messageIds.includes('tampered-1')) resolve(item);
        wire.sendRaw({ type: 'ack', seqs: [item.seq] });
      }
    });
  });
  const sendOne = (messageId: string, env: { type: 'prekey' | 'ratchet'; body: Uint8Array }) =>
    wire.request({ type: 'send', messageId, to: bob.client.address.userId, envelopes: [{ deviceId: bobDevice.deviceId, type: env.type, body: Buffer.from(env.body).toString('base64') }] });
  t.equal((await sendOne('tampered-1', evil)).type, 'send_ok');
  const receipt = await deliveredReceipt;
  t.equal(receipt.status, 'delivered', 'bob acknowledged the undecryptable item (the server sent a delivered receipt)');
  await bob.rec.until(() => bob.rec.of('warning').length > 0, 'a warning');
  t.match(bob.rec.of('warning')[0]![0].code, /^E2E_/, 'warning carries the E2E error code');
  t.equal(bob.rec.of('message').length, 0, 'nothing delivered to the application');

  t.equal((await sendOne('honest-2', good)).type, 'send_ok');
  await bob.rec.until(() => bob.rec.texts().includes('honest after all'), 'the untampered next message decrypts');
  t.same(bob.rec.texts(), ['honest after all']);
});

t.test('a bundle whose signed prekey signature does not verify is rejected, and nothing is sent', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  await alice.client.connect();
  const random = seededRandom(`${SEED}/forger`);
  const forger = InMemoryProtocolStore.create(random);
  const bundle = forger.makeBundle(random, 7);
  const badSignature = Uint8Array.from(bundle.signedPreKeySignature);
  badSignature[0]! ^= 0x80;
  const reg = await new HttpApi(server.url).call<{ userId: string }>('register', {
    body: {
      username: uniqueName('forger'),
      device: {
        name: 'forger',
        secret: Buffer.from(random(32)).toString('base64url'),
        registrationId: forger.localRegistrationId(),
        identityKey: Buffer.from(bundle.identityKey).toString('base64'),
        signedPreKey: { keyId: 7, publicKey: Buffer.from(bundle.signedPreKey).toString('base64'), signature: Buffer.from(badSignature).toString('base64') },
      },
    },
  });
  if (reg.status === 400) {
    t.pass('the server verifies signed prekey signatures itself (IDN-10); nothing to fetch');
    return;
  }
  t.equal(reg.status, 201, 'the server stores the signature unchecked (IDN-10 makes checking optional)');
  await t.rejects(alice.client.send(reg.body.userId, 'to a forged bundle'), { code: 'BAD_BUNDLE' }, '[E2E-67] [E2E-69]');
  t.equal(alice.client.outboxSize, 0, 'nothing queued');
});
