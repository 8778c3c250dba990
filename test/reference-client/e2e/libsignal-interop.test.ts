// Live oracle: the real libsignal (@signalapp/libsignal-client 0.72.1, the last npm release before the v0.73.3 the
// spec is written against) checks our XEdDSA, our X25519, and whole sessions in both directions. Skips visibly when
// the native module cannot load.
import t, { type Test } from 'tap';
import * as e2e from '../../../reference-client/e2e/index.ts';
import { loadLibsignal, makeLibsignalDevice } from '../../../bench/crypto-libsignal.ts';

const { lib, reason } = await loadLibsignal();
const random = e2e.seededRandom('libsignal-interop');
const buf = (b: Uint8Array) => Buffer.from(b);

if (lib === undefined) {
  t.test('libsignal interop', { skip: reason ?? 'libsignal not available' }, async () => {});
} else {
  t.test('XEdDSA: our signatures verify in libsignal and libsignal signatures verify in ours', async (t) => {
    for (let i = 0; i < 25; i++) {
      const theirs = lib.PrivateKey.generate();
      const ours = e2e.keyPairFromPrivateKey(new Uint8Array(theirs.serialize()));
      t.equal(e2e.toHex(ours.publicKey), theirs.getPublicKey().serialize().toString('hex'), 'same public key');
      const msg = random(i + 1);
      const ourSig = e2e.xeddsaSign(ours.privateKey, msg, random);
      t.ok(theirs.getPublicKey().verify(buf(msg), buf(ourSig)), `libsignal verifies ours ${i}`);
      const theirSig = new Uint8Array(theirs.sign(buf(msg)));
      t.ok(e2e.xeddsaVerify(ours.publicKey, msg, theirSig), `we verify libsignal's ${i}`);
      const bad = Uint8Array.from(ourSig);
      bad[i % 64]! ^= 1;
      t.equal(e2e.xeddsaVerify(ours.publicKey, msg, bad), theirs.getPublicKey().verify(buf(msg), buf(bad)), `same verdict on a bit flip ${i}`);
    }
  });

  t.test('X25519 agreements match', async (t) => {
    for (let i = 0; i < 25; i++) {
      const a = lib.PrivateKey.generate();
      const b = e2e.generateKeyPair(random);
      const theirs = a.agree(lib.PublicKey.deserialize(buf(b.publicKey))).toString('hex');
      t.equal(e2e.toHex(e2e.agree(new Uint8Array(a.serialize()), b.publicKey)), theirs, `agreement ${i}`);
    }
  });

  for (const oneTime of [true, false]) {
    t.test(`libsignal initiates, we respond (${oneTime ? 'four' : 'three'} DH results)`, async (t) => {
      const alice = makeLibsignalDevice(lib, 4242);
      const bob = e2e.InMemoryProtocolStore.create(random);
      const bundle = bob.makeBundle(random, 7, oneTime ? 0 : undefined);
      const bobAddress = lib.ProtocolAddress.new('bob', 1);
      await lib.processPreKeyBundle(
        lib.PreKeyBundle.new(bundle.registrationId, 1, bundle.preKeyId ?? null, bundle.preKey ? lib.PublicKey.deserialize(buf(bundle.preKey)) : null,
          bundle.signedPreKeyId, lib.PublicKey.deserialize(buf(bundle.signedPreKey)), buf(bundle.signedPreKeySignature), lib.PublicKey.deserialize(buf(bundle.identityKey))),
        bobAddress, alice.stores.sessions, alice.stores.identities,
      );
      const bobCipher = new e2e.SessionCipher(bob, 'alice', { random });
      await exchange(t, (p) => alice.encrypt(bobAddress, p), (env) => alice.decrypt(bobAddress, env), bobCipher);
      t.equal(bob.preKeys.size, 0, 'one-time prekey consumed');
    });

    t.test(`we initiate, libsignal responds (${oneTime ? 'four' : 'three'} DH results)`, async (t) => {
      const bob = makeLibsignalDevice(lib, 777);
      const b = bob.makeBundle(3, oneTime ? 9 : undefined);
      const alice = e2e.InMemoryProtocolStore.create(random);
      e2e.processPreKeyBundle(alice, 'bob', {
        registrationId: b.registrationId, identityKey: new Uint8Array(b.identityKey.serialize()), signedPreKeyId: b.signedPreKeyId,
        signedPreKey: new Uint8Array(b.signedPreKey.serialize()), signedPreKeySignature: new Uint8Array(b.signature),
        preKeyId: b.preKeyId, preKey: b.preKey ? new Uint8Array(b.preKey.serialize()) : undefined,
      }, { random });
      const aliceCipher = new e2e.SessionCipher(alice, 'bob', { random });
      const aliceAddress = lib.ProtocolAddress.new('alice', 1);
      // Here "ours" sends first: swap roles in the helper.
      const first = aliceCipher.encrypt(new Uint8Array([1, 2, 3]));
      t.equal(first.type, 'prekey');
      t.same(await bob.decrypt(aliceAddress, first), new Uint8Array([1, 2, 3]), 'libsignal decrypts our PreKeySignalMessage');
      await exchange(t, (p) => bob.encrypt(aliceAddress, p), (env) => bob.decrypt(aliceAddress, env), aliceCipher);
    });
  }
}

/** Messages both ways with reordering: `theirs` sends first in each round. */
async function exchange(
  t: Test,
  theirEncrypt: (p: Uint8Array) => Promise<e2e.E2eEnvelope>,
  theirDecrypt: (env: e2e.E2eEnvelope) => Promise<Uint8Array>,
  ours: e2e.SessionCipher,
) {
  for (let round = 0; round < 4; round++) {
    const batch: e2e.E2eEnvelope[] = [];
    for (const i of [0, 1, 2]) batch.push(await theirEncrypt(random(17 * round + i + 1))); // sequential: one store
    const plaintexts: Uint8Array[] = batch.map(() => new Uint8Array(0));
    // decrypt in reverse order: skipped keys on our side
    for (let i = batch.length - 1; i >= 0; i--) plaintexts[i] = ours.decrypt(batch[i]!);
    t.same(plaintexts.map((p) => p.length), [1, 2, 3].map((i) => 17 * round + i), `round ${round}: we decrypt libsignal's messages out of order`);
    const replies = [0, 1].map((i) => random(100 + i));
    const envs = replies.map((p) => ours.encrypt(p));
    const got = [await theirDecrypt(envs[1]!), await theirDecrypt(envs[0]!)];
    t.same(got, [replies[1], replies[0]], `round ${round}: libsignal decrypts ours out of order`);
  }
}
