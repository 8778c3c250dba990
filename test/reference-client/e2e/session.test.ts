// Deterministic session behaviour: the bounds of 8.4.4 and 8.6, error codes of 8.8.1, persistence, and the walls
// of the E2E layer (no I/O imports; both X25519 backends give identical bytes).
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as e2e from '../../../reference-client/e2e/index.ts';
import { errorCode, makePair, snapshot } from './harness.ts';

const E2E_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../reference-client/e2e');

/** A SignalMessage from Alice's current chain `jump` counters ahead of its index (built on a copy of her state). */
function aheadOf(pair: ReturnType<typeof makePair>, jump: number): e2e.E2eEnvelope {
  const state = pair.stores.alice.loadSession('bob')!.current!;
  let chainKey = state.sendingChain.chainKey;
  for (let i = 0; i < jump; i++) chainKey = e2e.nextChainKey(chainKey);
  const ahead: e2e.SessionState = { ...state, sendingChain: { ...state.sendingChain, chainKey, index: state.sendingChain.index + jump } };
  return { type: 'ratchet', body: e2e.ratchetEncrypt(ahead, new Uint8Array([7])).message };
}

function established(seed: string) {
  const pair = makePair(seed);
  pair.ciphers.bob.decrypt(pair.ciphers.alice.encrypt(new Uint8Array([1])));
  pair.ciphers.alice.decrypt(pair.ciphers.bob.encrypt(new Uint8Array([2])));
  pair.ciphers.bob.decrypt(pair.ciphers.alice.encrypt(new Uint8Array([3])));
  return pair;
}

t.test('[E2E-33] a jump beyond MAX_FORWARD_JUMPS is rejected without a state change; at the bound it decrypts', async (t) => {
  const pair = established('jump');
  const before = snapshot(pair, 'bob');
  t.equal(errorCode(() => pair.ciphers.bob.decrypt(aheadOf(pair, e2e.MAX_FORWARD_JUMPS + 1))), 'E2E_TOO_FAR_AHEAD');
  t.equal(snapshot(pair, 'bob'), before, 'state unchanged');
  t.same(pair.ciphers.bob.decrypt(aheadOf(pair, e2e.MAX_FORWARD_JUMPS)), new Uint8Array([7]), 'exactly MAX_FORWARD_JUMPS ahead is fine');
  const chain = pair.stores.bob.loadSession('alice')!.current!.receivingChains.at(-1)!;
  t.equal(chain.messageKeys.length, e2e.MAX_MESSAGE_KEYS, '[E2E-34] stored keys capped');
});

t.test('[E2E-34] test_message_key_limits: the oldest skipped keys are discarded, later ones kept', async (t) => {
  const pair = established('limits');
  const sent = Array.from({ length: e2e.MAX_MESSAGE_KEYS + 100 }, (_, i) => pair.ciphers.alice.encrypt(new Uint8Array([i & 0xff])));
  t.same(pair.ciphers.bob.decrypt(sent.at(-1)!), new Uint8Array([(sent.length - 1) & 0xff]));
  t.same(pair.ciphers.bob.decrypt(sent[1000]!), new Uint8Array([1000 & 0xff]), 'a kept key');
  const before = snapshot(pair, 'bob');
  t.equal(errorCode(() => pair.ciphers.bob.decrypt(sent[5]!)), 'E2E_DUPLICATE_MESSAGE', 'a discarded key reads as a duplicate');
  t.equal(snapshot(pair, 'bob'), before);
  t.equal(errorCode(() => pair.ciphers.bob.decrypt(sent[1000]!)), 'E2E_DUPLICATE_MESSAGE', '[E2E-35] a used key is gone');
});

t.test('[E2E-54] prekey messages until the first reply, then SignalMessages; [E2E-29] previousCounter', async (t) => {
  const pair = makePair('pending');
  const a1 = pair.ciphers.alice.encrypt(new Uint8Array([1]));
  const a2 = pair.ciphers.alice.encrypt(new Uint8Array([2]));
  t.equal(a1.type, 'prekey');
  t.equal(a2.type, 'prekey');
  const m1 = e2e.decodePreKeySignalMessage(a1.body);
  const m2 = e2e.decodePreKeySignalMessage(a2.body);
  t.same([m1.preKeyId, m1.signedPreKeyId, e2e.toHex(m1.baseKey)], [m2.preKeyId, m2.signedPreKeyId, e2e.toHex(m2.baseKey)]);
  t.same(pair.ciphers.bob.decrypt(a2), new Uint8Array([2]));
  t.notOk(pair.stores.bob.preKeys.has(100), '[E2E-58] one-time prekey deleted after success');
  t.same(pair.ciphers.bob.decrypt(a1), new Uint8Array([1]), '[E2E-56] second prekey message continues the session');
  t.equal(pair.stores.bob.loadSession('alice')!.archived.length, 0, 'no second X3DH');
  const b1 = pair.ciphers.bob.encrypt(new Uint8Array([3]));
  t.equal(b1.type, 'ratchet');
  pair.ciphers.alice.decrypt(b1);
  const a3 = pair.ciphers.alice.encrypt(new Uint8Array([4]));
  t.equal(a3.type, 'ratchet');
  t.equal(e2e.decodeSignalMessage(a3.body).previousCounter, 1, 'two messages on the old chain: previousCounter 1');
});

t.test('[E2E-55] a stale unacknowledged session refuses to encrypt', async (t) => {
  const pair = makePair('stale');
  pair.clock.now += e2e.MAX_UNACKNOWLEDGED_SESSION_AGE_MS + 1;
  t.equal(errorCode(() => pair.ciphers.alice.encrypt(new Uint8Array([1]))), 'E2E_STALE_SESSION');
  t.notOk(e2e.hasUsableSendingChain(pair.stores.alice.loadSession('bob'), pair.clock.now));
});

t.test('[E2E-57] unknown prekeys, [E2E-62] failures leave prekeys, sessions and identities as they were', async (t) => {
  const pair = makePair('unknown');
  const a1 = pair.ciphers.alice.encrypt(new Uint8Array([1]));
  pair.stores.bob.preKeys.delete(100);
  const before = snapshot(pair, 'bob');
  t.equal(errorCode(() => pair.ciphers.bob.decrypt(a1)), 'E2E_UNKNOWN_PREKEY');
  t.equal(snapshot(pair, 'bob'), before);
  const pair2 = makePair('badmac');
  const a = pair2.ciphers.alice.encrypt(new Uint8Array([1]));
  const body = Uint8Array.from(a.body);
  const inner = e2e.decodePreKeySignalMessage(a.body).message;
  const end = e2e.toHex(a.body).indexOf(e2e.toHex(inner)) / 2 + inner.length;
  body[end - 1]! ^= 0x80; // last MAC byte of the embedded SignalMessage
  const before2 = snapshot(pair2, 'bob');
  t.equal(errorCode(() => pair2.ciphers.bob.decrypt({ type: 'prekey', body })), 'E2E_BAD_MAC');
  t.equal(snapshot(pair2, 'bob'), before2, 'one-time prekey kept, no session, no identity recorded');
});

t.test('[E2E-71] an identity change is refused; [8.8.1] no session', async (t) => {
  const pair = established('identity');
  const random = e2e.seededRandom('mallory');
  const mallory = e2e.InMemoryProtocolStore.create(random);
  const bundle = mallory.makeBundle(random, 1, 1);
  t.equal(errorCode(() => e2e.processPreKeyBundle(pair.stores.alice, 'bob', bundle, { random })), 'E2E_UNTRUSTED_IDENTITY');
  const stranger = new e2e.SessionCipher(pair.stores.bob, 'carol', { random });
  t.equal(errorCode(() => stranger.decrypt(pair.ciphers.alice.encrypt(new Uint8Array([1])))), 'E2E_NO_SESSION');
  t.equal(errorCode(() => stranger.encrypt(new Uint8Array([1]))), 'E2E_NO_SESSION');
  const badSig = { ...pair.stores.bob.makeBundle(random, 2) };
  badSig.signedPreKeySignature = Uint8Array.from(badSig.signedPreKeySignature);
  badSig.signedPreKeySignature[0]! ^= 1;
  t.equal(errorCode(() => e2e.processPreKeyBundle(pair.stores.alice, 'bob2', badSig, { random })), 'E2E_BAD_SIGNATURE', '[E2E-67]');
});

t.test('[E2E-60] simultaneous initiation: archived states still decrypt and converge', async (t) => {
  const random = e2e.seededRandom('simultaneous');
  const alice = e2e.InMemoryProtocolStore.create(random);
  const bob = e2e.InMemoryProtocolStore.create(random);
  e2e.processPreKeyBundle(alice, 'bob', bob.makeBundle(random, 1, 1), { random });
  e2e.processPreKeyBundle(bob, 'alice', alice.makeBundle(random, 1, 1), { random });
  const ac = new e2e.SessionCipher(alice, 'bob', { random });
  const bc = new e2e.SessionCipher(bob, 'alice', { random });
  const fromAlice = ac.encrypt(new Uint8Array([1]));
  const fromBob = bc.encrypt(new Uint8Array([2]));
  t.same(bc.decrypt(fromAlice), new Uint8Array([1]));
  t.same(ac.decrypt(fromBob), new Uint8Array([2]));
  t.equal(alice.loadSession('bob')!.archived.length, 1);
  t.equal(alice.loadSession('bob')!.archived[0]!.pendingPreKey, undefined, '[E2E-52] archived without pending data');
  for (let i = 0; i < 3; i++) {
    t.same(bc.decrypt(ac.encrypt(new Uint8Array([i]))), new Uint8Array([i]));
    t.same(ac.decrypt(bc.encrypt(new Uint8Array([i + 10]))), new Uint8Array([i + 10]));
  }
  t.equal(e2e.toHex(alice.loadSession('bob')!.current!.aliceBaseKey), e2e.toHex(bob.loadSession('alice')!.current!.aliceBaseKey), 'converged');
});

t.test('session records survive a JSON round trip and keep working', async (t) => {
  const pair = established('persist');
  for (const who of ['alice', 'bob'] as const) {
    const peer = who === 'alice' ? 'bob' : 'alice';
    const json = JSON.parse(JSON.stringify(e2e.serializeSessionRecord(pair.stores[who].loadSession(peer)!))) as unknown;
    const restored = e2e.deserializeSessionRecord(json);
    t.same(e2e.serializeSessionRecord(restored), json);
    pair.stores[who].storeSession(peer, restored);
  }
  t.same(pair.ciphers.bob.decrypt(pair.ciphers.alice.encrypt(new Uint8Array([9]))), new Uint8Array([9]));
  t.throws(() => e2e.deserializeSessionRecord({ format: 'x', archived: [] }), RangeError);
  t.throws(() => e2e.deserializeSessionRecord({ format: e2e.SESSION_RECORD_FORMAT, archived: 'no' }), TypeError);
});

t.test('public entries assert their inputs with TypeError and RangeError', async (t) => {
  t.throws(() => e2e.agree('x' as unknown as Uint8Array, new Uint8Array(33)), TypeError);
  t.throws(() => e2e.agree(new Uint8Array(31), new Uint8Array(33)), RangeError);
  t.throws(() => e2e.xeddsaSignWithRandom(new Uint8Array(32), new Uint8Array(1), new Uint8Array(63)), RangeError);
  t.throws(() => e2e.rootStep(new Uint8Array(32), new Uint8Array(31)), RangeError);
  t.throws(() => e2e.aesCbcEncrypt(new Uint8Array(16), new Uint8Array(16), new Uint8Array(1)), RangeError);
});

const noNode = e2e.nodeBackend === undefined ? 'node:crypto X25519 is not available here' : false;
t.test('both X25519 backends and both XEdDSA verify paths give identical results', { skip: noNode }, async (t) => {
  if (e2e.nodeBackend === undefined) return;
  const random = e2e.seededRandom('backends');
  for (let i = 0; i < 50; i++) {
    const k = random(32);
    const u = e2e.nobleBackend.scalarMultBase(e2e.clampPrivateKey(random(32)));
    t.equal(e2e.toHex(e2e.nodeBackend.scalarMultBase(k)), e2e.toHex(e2e.nobleBackend.scalarMultBase(k)), `base ${i}`);
    t.equal(e2e.toHex(e2e.nodeBackend.scalarMult(k, u)!), e2e.toHex(e2e.nobleBackend.scalarMult(k, u)!), `agreement ${i}`);
    const pair = e2e.generateKeyPair(random);
    const msg = random(33);
    const sig = e2e.xeddsaSign(pair.privateKey, msg, random);
    const bad = Uint8Array.from(sig);
    bad[i % 64]! ^= 1 << (i % 8);
    for (const s of [sig, bad]) {
      e2e.setCryptoBackend('noble');
      const noble = e2e.xeddsaVerify(pair.publicKey, msg, s);
      e2e.setCryptoBackend('node');
      t.equal(e2e.xeddsaVerify(pair.publicKey, msg, s), noble, `verify ${i}`);
    }
  }
});

t.test('the E2E layer does no I/O: no fs, net, http, ws or child_process imports', async (t) => {
  const forbidden = /^(node:)?(fs|fs\/promises|net|http|https|http2|tls|dgram|child_process|worker_threads)$|^ws$/;
  for (const name of readdirSync(E2E_DIR).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(E2E_DIR, name), 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\(\s*|getBuiltinModule\?*\.?\(\s*)['"]([^'"]+)['"]/g)) {
      t.notOk(forbidden.test(m[1]!), `${name} imports ${m[1]}`);
    }
    t.notOk(/console\.(log|info|debug|warn|error)/.test(text), `${name} does not log [E2E-11]`);
  }
});
