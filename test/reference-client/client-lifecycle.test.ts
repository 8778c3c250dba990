// The messaging library's session lifecycle against a real reference server over real sockets: rotation of the
// signed prekey on (re)connect [PKY-4] with the replaced key kept for envelopes in flight [E2E-66]; no automatic
// reconnect after 4409 SESSION_REPLACED [DLV-38] or 4403 DEVICE_REMOVED [KAL-11]; presence and typing events
// [PRS-4] [PRS-6] [PRS-8] [PRS-11]; and the reconnection backoff while the server is down [KAL-8] [KAL-9].
import t from 'tap';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TickwireClient } from '../../reference-client/client.ts';
import { InMemoryProtocolStore, processPreKeyBundle, SessionCipher, seededRandom, utf8 } from '../../reference-client/e2e/index.ts';
import { bundleFromWire } from '../../reference-client/session-manager.ts';
import { Connection, type Credentials } from '../../reference-client/wire/connection.ts';
import { HttpApi } from '../../reference-client/wire/http.ts';
import type { PreKeyBundleResponse, PreKeyCountResponse } from '../../spec/index.ts';
import { clientOptions, credentialsIn, newClient, Recorder, sleep, startRestartableServer, tempStateDir, uniqueName } from './client-harness.ts';

const SEED = process.env['TICKWIRE_TEST_SEED'] ?? 'client-lifecycle';
t.comment(`seed ${SEED}`);

/** How long a client that must not reconnect is watched. */
const WATCH_MS = 2_000;

/** Polls `read` until `done` holds for its value; returns that value. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(value)}`);
    await sleep(50);
  }
}

t.test('[PKY-4] the signed prekey is rotated on connect and on reconnect; old and new bundles both work', async (t) => {
  const server = await startRestartableServer(t);
  const http = new HttpApi(server.url);
  const bob = await newClient(t, server, 'bob', { signedPreKeyRotationSec: 1 });
  const registeredAt = Date.now();
  const bobCreds = credentialsIn(bob.stateDir);
  const signedId = async (): Promise<number> => {
    const answer = await http.call<PreKeyCountResponse>('getPreKeyCount', { credentials: bobCreds });
    t.equal(answer.status, 200);
    return answer.body.signedPreKeyId;
  };
  const id0 = await signedId();

  // Carol, a raw-wire peer with real keys, fetches bob's bundle now and encrypts to it: an envelope in flight that
  // names the signed prekey about to be replaced [E2E-66].
  const random = seededRandom(`${SEED}/carol`);
  const carol = InMemoryProtocolStore.create(random);
  const carolKeys = carol.makeBundle(random, 1);
  const carolSecret = Buffer.from(random(32)).toString('base64url');
  const reg = await http.call<{ userId: string; deviceId: number }>('register', {
    body: {
      username: uniqueName('carol'),
      device: {
        name: 'carol',
        secret: carolSecret,
        registrationId: carol.localRegistrationId(),
        identityKey: Buffer.from(carolKeys.identityKey).toString('base64'),
        signedPreKey: { keyId: 1, publicKey: Buffer.from(carolKeys.signedPreKey).toString('base64'), signature: Buffer.from(carolKeys.signedPreKeySignature).toString('base64') },
      },
    },
  });
  t.equal(reg.status, 201);
  const carolCreds: Credentials = { userId: reg.body.userId, deviceId: reg.body.deviceId, secret: carolSecret };
  const bundleOf = async (): Promise<PreKeyBundleResponse['devices'][number]> => {
    const answer = await http.call<PreKeyBundleResponse>('getPreKeyBundle', { credentials: carolCreds, params: { userId: bobCreds.userId } });
    t.equal(answer.status, 200);
    return answer.body.devices[0]!;
  };
  const oldBundle = await bundleOf();
  t.equal(oldBundle.signedPreKey.keyId, id0, 'the bundle names the registration’s signed prekey');
  const address = `${bobCreds.userId}.${oldBundle.deviceId}`;
  processPreKeyBundle(carol, address, bundleFromWire(oldBundle), { random });
  const inFlight = new SessionCipher(carol, address, { random }).encrypt(utf8('sealed before the rotation'));

  // The registration's signed prekey is older than signedPreKeyRotationSec at the first connect.
  await sleep(Math.max(0, registeredAt + 1_100 - Date.now()));
  await bob.client.connect();
  const id1 = await eventually(signedId, (id) => id !== id0, 'a rotated signed prekey after connect');
  t.not(id1, id0, 'rotated on connect');
  t.equal((await bundleOf()).signedPreKey.keyId, id1, 'new bundles name the new signed prekey');

  const wire = await Connection.connect(server.url, carolCreds);
  t.teardown(() => wire.close());
  wire.on('deliver', (frame) => wire.sendRaw({ type: 'ack', seqs: frame.items.map((i) => i.seq) as [number, ...number[]] }));
  const sent = await wire.request({
    type: 'send',
    messageId: 'in-flight-1',
    to: bobCreds.userId,
    envelopes: [{ deviceId: oldBundle.deviceId, type: inFlight.type, body: Buffer.from(inFlight.body).toString('base64') }],
  });
  t.equal(sent.type, 'send_ok');
  await bob.rec.until(() => bob.rec.texts().includes('sealed before the rotation'), 'the envelope naming the old signed prekey');

  // Dave, a library client, starts his session from a bundle with the new signed prekey; both ways work.
  const dave = await newClient(t, server, 'dave');
  await dave.client.connect();
  await dave.client.send(bobCreds.userId, 'hello after rotation');
  await bob.rec.until(() => bob.rec.texts().includes('hello after rotation'), 'dave → bob');
  await bob.client.send(dave.client.address.userId, 'reply after rotation');
  await dave.rec.until(() => dave.rec.texts().includes('reply after rotation'), 'bob → dave');

  // Again on a reconnect, once the new key is older than the period; the established session is unaffected.
  await sleep(1_100);
  bob.client.dropConnection();
  const id2 = await eventually(signedId, (id) => id !== id1, 'a rotated signed prekey after reconnect');
  t.not(id2, id0, 'a third signed prekey');
  await dave.client.send(bobCreds.userId, 'after the second rotation');
  await bob.rec.until(() => bob.rec.texts().includes('after the second rotation'), 'dave → bob after the second rotation');
  const eve = await newClient(t, server, 'eve');
  await eve.client.connect();
  await eve.client.send(bobCreds.userId, 'eve on the newest bundle');
  await bob.rec.until(() => bob.rec.texts().includes('eve on the newest bundle'), 'eve → bob');

  // [E2E-66] the replaced private halves stay on disk for retentionSec, the newest first.
  const stored = JSON.parse(readFileSync(join(bob.stateDir, 'prekeys.json'), 'utf8')) as { signed: Array<{ keyId: number; replacedAt?: number; uploaded: boolean }> };
  t.same(stored.signed.map((s) => s.keyId), [id2, id1, id0], 'all three signed prekeys kept');
  t.equal(stored.signed[0]!.replacedAt, undefined, 'the current one is not replaced');
  t.ok(stored.signed.slice(1).every((s) => typeof s.replacedAt === 'number'), 'the older ones carry replacedAt');
  t.ok(stored.signed.every((s) => s.uploaded), 'every one was uploaded');
  t.same([...bob.rec.of('warning'), ...dave.rec.of('warning'), ...eve.rec.of('warning')], [], 'no warnings');
});

t.test('[DLV-38] after 4409 SESSION_REPLACED the replaced client does not reconnect', async (t) => {
  const server = await startRestartableServer(t);
  const bob = await newClient(t, server, 'bob');
  await bob.client.connect();
  // A second instance of the same device: a copy of the state directory, so the same credentials.
  const copy = tempStateDir(t);
  cpSync(bob.stateDir, copy, { recursive: true });
  const twin = await TickwireClient.open(clientOptions(server, copy));
  t.teardown(() => twin.close());
  const twinRec = new Recorder(twin);
  t.same(twin.address, bob.client.address, 'same device');
  await twin.connect();

  await bob.rec.until(() => bob.rec.of('disconnected').length > 0, 'the first client is replaced');
  t.match(bob.rec.of('disconnected')[0]![0], { code: 4409, willReconnect: false }, 'closed with 4409, and the client says it will not reconnect');
  await sleep(WATCH_MS);
  t.equal(bob.rec.of('connected').length, 1, 'no second session for the replaced client');
  t.equal(bob.rec.of('disconnected').length, 1);
  t.equal(bob.client.connected, false);
  t.equal(twin.connected, true, 'the replacing client keeps its session');
  t.same(twinRec.of('disconnected'), [], 'and is not replaced back');

  // An explicit connect() (the user chose "use this device here") does start again, and replaces the twin.
  await bob.client.connect();
  t.equal(bob.client.connected, true, 'an explicit connect after 4409 opens a new session');
  await twinRec.until(() => twinRec.of('disconnected').length > 0, 'the twin is replaced in turn');
  t.match(twinRec.of('disconnected')[0]![0], { code: 4409, willReconnect: false });
});

t.test('[KAL-11] after 4403 DEVICE_REMOVED the removed client does not reconnect; [KAL-12] reopening fails AUTH_FAILED', async (t) => {
  const server = await startRestartableServer(t);
  const bob = await newClient(t, server, 'bob');
  await bob.client.connect();
  const { code } = await bob.client.createLinkCode();
  const laptopDir = tempStateDir(t);
  const laptop = await TickwireClient.link(clientOptions(server, laptopDir), code, 'bob laptop');
  t.teardown(() => laptop.close());
  const removed = await new HttpApi(server.url).call('deleteDevice', {
    credentials: credentialsIn(laptopDir),
    params: { deviceId: bob.client.address.deviceId },
  });
  t.equal(removed.status, 204, 'the laptop removes the phone');

  await bob.rec.until(() => bob.rec.of('disconnected').length > 0, 'the removed device is closed');
  t.match(bob.rec.of('disconnected')[0]![0], { code: 4403, willReconnect: false }, 'closed with 4403, and the client says it will not reconnect');
  await sleep(WATCH_MS);
  t.equal(bob.rec.of('connected').length, 1, 'no second session');
  t.equal(bob.client.connected, false);

  const again = await TickwireClient.open(bob.options);
  t.teardown(() => again.close());
  await t.rejects(again.connect(), { code: 'AUTH_FAILED' }, 'the revoked credentials stop the loop at once');
});

t.test('[PRS-4] [PRS-6] [PRS-8] [PRS-11] presence and typing arrive as events', async (t) => {
  const server = await startRestartableServer(t);
  const alice = await newClient(t, server, 'alice');
  const bob = await newClient(t, server, 'bob');
  const bobId = bob.client.address.userId;
  await alice.client.connect();
  await alice.client.subscribePresence([bobId]);
  await alice.rec.until(() => alice.rec.of('presence').length === 1, 'the presence frame after subscribing');
  t.same(alice.rec.of('presence')[0]![0], { userId: bobId, status: 'offline' }, 'bob never connected: offline, no lastSeenAt');

  await bob.client.connect();
  await alice.rec.until(() => alice.rec.of('presence').length === 2, 'bob online');
  t.same(alice.rec.of('presence')[1]![0], { userId: bobId, status: 'online' }, 'online, without lastSeenAt');

  bob.client.typing(alice.client.address.userId, 'started');
  await alice.rec.until(() => alice.rec.of('typing').length === 1, 'typing started');
  bob.client.typing(alice.client.address.userId, 'stopped');
  await alice.rec.until(() => alice.rec.of('typing').length === 2, 'typing stopped');
  t.same(alice.rec.of('typing').map(([e]) => e), [
    { from: bob.client.address, state: 'started' },
    { from: bob.client.address, state: 'stopped' },
  ], 'from bob’s device, in order');

  // The subscription is renewed on every new session (PRS-10 ends it with the old one).
  alice.client.dropConnection();
  await alice.rec.until(() => alice.rec.of('connected').length === 2 && alice.rec.of('presence').length === 3, 'presence after resubscribing');
  t.same(alice.rec.of('presence')[2]![0], { userId: bobId, status: 'online' }, 'current state after the reconnect');

  const beforeClose = Date.now();
  await bob.client.close();
  await alice.rec.until(() => alice.rec.of('presence').length === 4, 'bob offline');
  const offline = alice.rec.of('presence')[3]![0];
  t.equal(offline.userId, bobId);
  t.equal(offline.status, 'offline');
  t.type(offline.lastSeenAt, 'number', '[PRS-8] lastSeenAt once bob has been seen');
  t.ok(offline.lastSeenAt! >= beforeClose - 1_000 && offline.lastSeenAt! <= Date.now() + 1_000, 'lastSeenAt is the moment bob left');
  t.same(alice.rec.of('warning'), []);
});

t.test('[KAL-8] [KAL-9] while the server is down attempts back off with jitter; the client returns by itself', async (t) => {
  const server = await startRestartableServer(t);
  const minMs = 100;
  const maxMs = 400;
  // serverRestartDelayMs 0: no KAL-10 extra delay, so every gap is the backoff alone.
  const alice = await newClient(t, server, 'alice', { minReconnectDelayMs: minMs, maxReconnectDelayMs: maxMs, serverRestartDelayMs: 0 });
  await alice.client.connect();
  let closedAt = 0;
  const attempts: number[] = [];
  alice.client.on('disconnected', () => void (closedAt = performance.now()));
  alice.client.on('warning', (w) => void (w.code === 'CONNECT_FAILED' && attempts.push(performance.now())));

  await server.stop();
  await alice.rec.until(() => alice.rec.of('disconnected').length === 1, 'the shutdown close');
  t.match(alice.rec.of('disconnected')[0]![0], { code: 1012, willReconnect: true }, '[KAL-13] 1012, and the client will reconnect');
  await sleep(3_000);
  const seen = [...attempts];

  // A failed attempt takes a few ms on loopback; the slack also covers timer and event-loop lateness.
  const slackMs = 150;
  const gaps = seen.map((at, i) => at - (i === 0 ? closedAt : seen[i - 1]!));
  t.comment(`attempts after the close at ${gaps.map((g) => Math.round(g)).join(', ')} ms intervals`);
  // Even with every delay at its bound (100, 200, 400, 400, ...) 3 s hold 8 attempts.
  t.ok(seen.length >= 6, `at least 6 attempts in 3 s (saw ${seen.length})`);
  gaps.forEach((gap, n) => {
    const bound = Math.min(maxMs, minMs * 2 ** n);
    t.ok(gap >= 0 && gap <= bound + slackMs, `gap before attempt ${n} is ${Math.round(gap)} ms, within [0, ${bound}] + slack`);
  });
  // From attempt 2 on every delay is uniform in [0, 400]: at least 4 of them spanning under 20 ms has a chance below 1e-3.
  const later = gaps.slice(2);
  t.ok(Math.max(...later) - Math.min(...later) > 20, 'the delays are drawn at random (full jitter), not fixed');
  t.equal(alice.rec.of('connected').length, 1, 'no session while the server is down');
  t.equal(alice.rec.of('disconnected').length, 1, 'failed attempts are not sessions: one disconnected event');

  await server.start(); // same port, same data directory
  await alice.rec.until(() => alice.rec.of('connected').length === 2, 'reconnected on its own', 5_000);
  t.equal(alice.client.connected, true);
  await alice.client.subscribePresence([alice.client.address.userId]); // a request on the new session is answered
  await alice.rec.until(() => alice.rec.of('presence').length === 1, 'the answer on the new session');
  t.equal(alice.rec.of('presence')[0]![0].status, 'online');
});
