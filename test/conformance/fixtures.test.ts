// The suite's test material is fair to a strict server: keys pass the checks of E2E-4 to E2E-6, signed prekeys
// verify under the registration's identity key (a server MAY verify them, IDN-10), and a seed replays the same values.
import t from 'tap';
import { publicKeyProblem, xeddsaVerify } from '../../reference-client/e2e/index.ts';
import { Material, Rng } from '../../conformance/fixtures.ts';

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

t.test('registrations carry valid keys and a signed prekey that verifies', async (t) => {
  const material = new Material(new Rng(42));
  for (let i = 0; i < 20; i++) {
    const reg = material.deviceRegistration('d', 3);
    for (const key of [reg.identityKey, reg.signedPreKey.publicKey, ...(reg.oneTimePreKeys ?? []).map((k) => k.publicKey)]) {
      t.equal(publicKeyProblem(bytes(key)), undefined, 'a well-formed public key');
    }
    t.ok(xeddsaVerify(bytes(reg.identityKey), bytes(reg.signedPreKey.publicKey), bytes(reg.signedPreKey.signature)), 'the signature verifies');
    const next = material.signedPreKey(reg.identityKey, 2);
    t.ok(xeddsaVerify(bytes(reg.identityKey), bytes(next.publicKey), bytes(next.signature)), 'a later signed prekey verifies too');
  }
  t.notOk(xeddsaVerify(bytes(material.identityKey()), bytes(material.publicKey()), bytes(material.signature())), 'signature() does not verify');
  t.throws(() => material.signedPreKey(material.publicKey(), 1), RangeError, 'only identities it made');
});

t.test('the same seed gives the same material', async (t) => {
  t.same(new Material(new Rng(7)).deviceRegistration('x', 2), new Material(new Rng(7)).deviceRegistration('x', 2));
});
