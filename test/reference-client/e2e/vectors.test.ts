// Every vector of spec/vectors/e2e against the reference client's E2E layer, and the checked-in files against a fresh
// generation. Invalid cases are checked by error code, never by message text.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as e2e from '../../../reference-client/e2e/index.ts';
import { E2E_VECTOR_DIR, generateE2eVectors } from '../../../spec/vectors/tools/generate-e2e.ts';

const h = (s: string) => e2e.fromHex(s);
const hx = e2e.toHex;
type Case = Record<string, unknown> & { tcId: number; comment: string; result: 'valid' | 'invalid' | 'acceptable'; error?: string };
interface VectorFile { numberOfTests: number; tests?: Case[]; testGroups?: Array<Record<string, unknown> & { tests: Case[] }> }
const load = (name: string): VectorFile => JSON.parse(readFileSync(join(E2E_VECTOR_DIR, name), 'utf8')) as VectorFile;
const str = (c: Record<string, unknown>, key: string): string => c[key] as string;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof e2e.E2eError) return error.code;
    throw error;
  }
}

t.test('checked-in vectors equal a fresh generation', async (t) => {
  const fresh = generateE2eVectors();
  t.same(readdirSync(E2E_VECTOR_DIR).sort(), Object.keys(fresh).sort());
  for (const [name, content] of Object.entries(fresh)) {
    t.equal(readFileSync(join(E2E_VECTOR_DIR, name), 'utf8'), JSON.stringify(content, null, 2) + '\n', name);
  }
});

t.test('every file counts its tests and numbers them uniquely', async (t) => {
  for (const name of readdirSync(E2E_VECTOR_DIR)) {
    const file = load(name);
    const cases = file.tests ?? file.testGroups!.flatMap((g) => g.tests);
    t.equal(cases.length, file.numberOfTests, name);
    t.equal(new Set(cases.map((c) => c.tcId)).size, cases.length, `${name} tcIds unique`);
  }
});

for (const backend of ['noble', 'node'] as const) {
  t.test(`x25519.json (${backend})`, async (t) => {
    e2e.setCryptoBackend(backend);
    t.teardown(() => e2e.setCryptoBackend('node'));
    for (const c of load('x25519.json').tests!) {
      if (c.result === 'valid') {
        const pair = e2e.keyPairFromPrivateKey(h(str(c, 'private')));
        t.equal(hx(pair.publicKey), c.derivedPublicKey, `tcId ${c.tcId} public key`);
        t.equal(hx(e2e.agree(pair.privateKey, h(str(c, 'publicKey')))), c.shared, `tcId ${c.tcId} shared`);
      } else {
        const out = e2e.x25519(h(str(c, 'private')), h(str(c, 'rawU')));
        t.ok(out === undefined || e2e.isAllZero(out), `tcId ${c.tcId}: ${c.comment}`);
        t.equal(codeOf(() => e2e.agree(h(str(c, 'private')), h('05' + str(c, 'rawU')))), 'E2E_INVALID_KEY', `tcId ${c.tcId} key check first`);
      }
    }
  });
}

t.test('public-key.json', async (t) => {
  for (const c of load('public-key.json').tests!) {
    const check = () => (c.baseKey ? e2e.checkBaseKey(h(str(c, 'key'))) : e2e.checkPublicKey(h(str(c, 'key'))));
    t.equal(codeOf(check), c.result === 'valid' ? undefined : c.error, `tcId ${c.tcId}: ${c.comment}`);
    if (c.baseKey && c.result === 'invalid') t.equal(codeOf(() => e2e.checkPublicKey(h(str(c, 'key')))), undefined, `tcId ${c.tcId} passes E2E-4..6`);
  }
});

for (const backend of ['noble', 'node'] as const) {
  t.test(`xeddsa.json (${backend})`, async (t) => {
    e2e.setCryptoBackend(backend);
    t.teardown(() => e2e.setCryptoBackend('node'));
    for (const group of load('xeddsa.json').testGroups!) {
      const pub = h(group.publicKey as string);
      for (const c of group.tests) {
        const msg = h(str(c, 'msg'));
        const sig = h(str(c, 'sig'));
        if (group.type === 'XEdDSASign') {
          t.equal(hx(e2e.xeddsaSignWithRandom(h(group.privateKey as string), msg, h(str(c, 'z')))), c.sig, `tcId ${c.tcId} signature`);
          t.equal(hx(e2e.keyPairFromPrivateKey(h(group.privateKey as string)).publicKey), group.publicKey, 'key pair');
        }
        const ok = e2e.xeddsaVerify(pub, msg, sig);
        if (c.result === 'acceptable') {
          t.equal(ok, true, `tcId ${c.tcId} accepted by default, as libsignal`);
          t.equal(e2e.xeddsaVerify(pub, msg, sig, { rejectNonReducedS: true }), false, `tcId ${c.tcId} rejected when strict`);
        } else {
          t.equal(ok, c.result === 'valid', `tcId ${c.tcId}: ${c.comment}`);
        }
      }
    }
  });
}

t.test('x3dh.json', async (t) => {
  for (const c of load('x3dh.json').tests!) {
    const out =
      c.side === 'initiator'
        ? e2e.x3dhInitiator({
            identityKeyPair: { privateKey: e2e.clampPrivateKey(h(str(c, 'identityPrivate'))), publicKey: h(str(c, 'identityKey')) },
            // libsignal's Alice test pairs a base private key with a public key it does not derive: use them as given.
            baseKeyPair: { privateKey: e2e.clampPrivateKey(h(str(c, 'basePrivate'))), publicKey: new Uint8Array(33) },
            theirIdentityKey: h(str(c, 'theirIdentityKey')),
            theirSignedPreKey: h(str(c, 'theirSignedPreKey')),
            theirOneTimePreKey: c.theirOneTimePreKey === undefined ? undefined : h(str(c, 'theirOneTimePreKey')),
          })
        : e2e.x3dhResponder({
            identityKeyPair: { privateKey: e2e.clampPrivateKey(h(str(c, 'identityPrivate'))), publicKey: h(str(c, 'identityKey')) },
            signedPreKeyPair: { privateKey: e2e.clampPrivateKey(h(str(c, 'signedPreKeyPrivate'))), publicKey: h(str(c, 'signedPreKey')) },
            oneTimePreKeyPair: c.oneTimePreKeyPrivate === undefined ? undefined : e2e.keyPairFromPrivateKey(h(str(c, 'oneTimePreKeyPrivate'))),
            theirIdentityKey: h(str(c, 'theirIdentityKey')),
            theirBaseKey: h(str(c, 'theirBaseKey')),
          });
    t.equal(hx(out.rootKey), c.rootKey, `tcId ${c.tcId} root key`);
    t.equal(hx(out.chainKey), c.chainKey, `tcId ${c.tcId} chain key: ${c.comment}`);
  }
});

t.test('ratchet-kdf.json', async (t) => {
  for (const c of load('ratchet-kdf.json').tests!) {
    if (c.type === 'ChainStep') {
      const seed = e2e.messageKeySeed(h(str(c, 'chainKey')));
      const keys = e2e.deriveMessageKeys(seed);
      t.same([hx(seed), hx(keys.cipherKey), hx(keys.macKey), hx(keys.iv)], [c.seed, c.cipherKey, c.macKey, c.iv], `tcId ${c.tcId} message keys`);
      t.equal(hx(e2e.nextChainKey(h(str(c, 'chainKey')))), c.nextChainKey, `tcId ${c.tcId} next chain key`);
    } else {
      const out = e2e.rootStep(h(str(c, 'rootKey')), h(str(c, 'dhOutput')));
      t.same([hx(out.rootKey), hx(out.chainKey)], [c.newRootKey, c.newChainKey], `tcId ${c.tcId} root step`);
    }
  }
});

t.test('aes-cbc.json', async (t) => {
  for (const c of load('aes-cbc.json').tests!) {
    const [key, iv, ct] = [h(str(c, 'key')), h(str(c, 'iv')), h(str(c, 'ciphertext'))];
    if (c.result === 'valid') {
      t.equal(hx(e2e.aesCbcDecrypt(key, iv, ct)), c.plaintext, `tcId ${c.tcId} decrypt`);
      t.equal(hx(e2e.aesCbcEncrypt(key, iv, h(str(c, 'plaintext')))), c.ciphertext, `tcId ${c.tcId} encrypt`);
    } else {
      t.equal(codeOf(() => e2e.aesCbcDecrypt(key, iv, ct)), c.error, `tcId ${c.tcId}: ${c.comment}`);
    }
  }
});

t.test('signal-message.json', async (t) => {
  for (const c of load('signal-message.json').tests!) {
    const body = h(str(c, 'body'));
    if (c.result !== 'valid') {
      t.equal(codeOf(() => e2e.decodeSignalMessage(body)), c.error, `tcId ${c.tcId}: ${c.comment}`);
      continue;
    }
    const m = e2e.decodeSignalMessage(body);
    const f = c.fields as Record<string, unknown>;
    t.same([hx(m.ratchetKey), m.counter, m.previousCounter, hx(m.ciphertext)], [f.ratchetKey, f.counter, f.previousCounter, f.ciphertext], `tcId ${c.tcId}: ${c.comment}`);
    if (c.macKey !== undefined) {
      const [mk, s, r] = [h(str(c, 'macKey')), h(str(c, 'senderIdentity')), h(str(c, 'receiverIdentity'))];
      t.ok(e2e.verifySignalMessageMac(m, mk, s, r), `tcId ${c.tcId} MAC`);
      t.notOk(e2e.verifySignalMessageMac(m, mk, r, s), `tcId ${c.tcId} MAC binds the identity order`);
      const encoded = e2e.encodeSignalMessage({ ratchetKey: m.ratchetKey, counter: m.counter, previousCounter: m.previousCounter, ciphertext: m.ciphertext }, mk, s, r);
      t.equal(hx(encoded), c.body, `tcId ${c.tcId} encodes to the same bytes`);
    }
  }
});

t.test('prekey-signal-message.json', async (t) => {
  for (const c of load('prekey-signal-message.json').tests!) {
    const body = h(str(c, 'body'));
    if (c.result !== 'valid') {
      t.equal(codeOf(() => e2e.decodePreKeySignalMessage(body)), c.error, `tcId ${c.tcId}: ${c.comment}`);
      continue;
    }
    const m = e2e.decodePreKeySignalMessage(body);
    const f = c.fields as Record<string, unknown>;
    t.same(
      [m.preKeyId ?? null, hx(m.baseKey), hx(m.identityKey), hx(m.message), m.registrationId, m.signedPreKeyId],
      [f.preKeyId, f.baseKey, f.identityKey, f.message, f.registrationId, f.signedPreKeyId],
      `tcId ${c.tcId}: ${c.comment}`,
    );
    if (m.registrationId !== 0) t.equal(hx(e2e.encodePreKeySignalMessage(m)), c.body, `tcId ${c.tcId} encodes to the same bytes`);
  }
});

t.test('session-flows.json', async (t) => {
  for (const flow of load('session-flows.json').tests!) {
    t.test(`tcId ${flow.tcId} ${String(flow.flow)}: ${flow.comment}`, async (t) => {
      const a = flow.alice as Record<string, unknown>;
      const b = flow.bob as Record<string, unknown>;
      const bundleJson = flow.bundle as Record<string, unknown>;
      const aliceStore = new e2e.InMemoryProtocolStore(e2e.keyPairFromPrivateKey(h(str(a, 'identityPrivate'))), a.registrationId as number);
      const bobStore = new e2e.InMemoryProtocolStore(e2e.keyPairFromPrivateKey(h(str(b, 'identityPrivate'))), b.registrationId as number);
      t.equal(hx(aliceStore.identityKeyPair().publicKey), a.identityKey);
      const spk = e2e.keyPairFromPrivateKey(h(str(b, 'signedPreKeyPrivate')));
      bobStore.signedPreKeys.set(1, { keyPair: spk, signature: h(str(bundleJson, 'signedPreKeySignature')) });
      if (b.oneTimePreKeyPrivate !== undefined) bobStore.preKeys.set(0, e2e.keyPairFromPrivateKey(h(str(b, 'oneTimePreKeyPrivate'))));
      const aliceRandom = e2e.scriptedRandom((a.random as string[]).map(h));
      const bobRandom = e2e.scriptedRandom((b.random as string[]).map(h));
      const bundle: e2e.PreKeyBundle = {
        registrationId: bundleJson.registrationId as number,
        identityKey: h(str(bundleJson, 'identityKey')),
        signedPreKeyId: bundleJson.signedPreKeyId as number,
        signedPreKey: h(str(bundleJson, 'signedPreKey')),
        signedPreKeySignature: h(str(bundleJson, 'signedPreKeySignature')),
        preKeyId: bundleJson.preKeyId as number | undefined,
        preKey: bundleJson.preKey === undefined ? undefined : h(str(bundleJson, 'preKey')),
      };
      e2e.processPreKeyBundle(aliceStore, 'bob', bundle, { random: aliceRandom, now: () => 0 });
      const setup = flow.setup as Record<string, string>;
      const aliceState = () => aliceStore.loadSession('bob')!.current!;
      t.equal(hx(aliceState().rootKey), setup.rootKey1, 'Alice RK1');
      t.equal(hx(aliceState().sendingChain.chainKey), setup.sendingChainKey, 'Alice first sending chain');
      t.equal(hx(aliceState().receivingChains[0]!.chainKey), setup.chainKey0, 'Alice CK0');
      const ciphers = {
        alice: new e2e.SessionCipher(aliceStore, 'bob', { random: aliceRandom, now: () => 0 }),
        bob: new e2e.SessionCipher(bobStore, 'alice', { random: bobRandom, now: () => 0 }),
      };
      const stores = { alice: aliceStore, bob: bobStore };
      const sent = new Map<string, e2e.E2eEnvelope>();
      for (const step of flow.steps as Array<Record<string, unknown>>) {
        const label = `${String(step.action)} ${String(step.id)}`;
        if (step.action === 'aliceSends' || step.action === 'bobSends') {
          const who = step.action === 'aliceSends' ? 'alice' : 'bob';
          const state = stores[who].loadSession(who === 'alice' ? 'bob' : 'alice')!.current!;
          t.equal(hx(state.sendingChain.chainKey), step.chainKey, `${label} chain key`);
          const envelope = ciphers[who].encrypt(h(str(step, 'plaintext')));
          t.equal(envelope.type, step.type, `${label} type`);
          t.equal(hx(envelope.body), step.body, `${label} body`);
          sent.set(step.id as string, envelope);
        } else if (step.action === 'drop') {
          continue;
        } else {
          const to = step.to as 'alice' | 'bob';
          const peer = to === 'alice' ? 'bob' : 'alice';
          const original = sent.get(step.id as string)!;
          const envelope = step.action === 'tamper' ? { type: original.type, body: h(str(step, 'body')) } : original;
          const before = JSON.stringify(e2e.serializeSessionRecord(stores[to].loadSession(peer) ?? e2e.emptyRecord()));
          if (step.error !== undefined) {
            t.equal(codeOf(() => ciphers[to].decrypt(envelope)), step.error, label);
            t.equal(JSON.stringify(e2e.serializeSessionRecord(stores[to].loadSession(peer) ?? e2e.emptyRecord())), before, `${label} leaves the state unchanged`);
          } else {
            t.equal(hx(ciphers[to].decrypt(envelope)), step.plaintext, label);
            const rs = step.ratchetStep as Record<string, string> | undefined;
            const state = stores[to].loadSession(peer)!.current!;
            if (rs) {
              t.equal(hx(state.rootKey), rs.rootKey, `${label} root key after the DH ratchet step`);
              t.equal(hx(state.sendingChain.ratchetKeyPair.publicKey), rs.newRatchetKey, `${label} new ratchet key`);
            }
          }
        }
      }
    });
  }
});
