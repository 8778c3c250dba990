// Writes spec/vectors/e2e/*.json: libsignal's known answers (v0.73.3) as data, cases derived from them, constructed
// negative cases, and the scripted session flows. Run with `npx tsx spec/vectors/tools/generate-e2e.ts`; a test
// checks the checked-in files equal a fresh generation.
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  L, aesEncrypt, cat, dh, fieldBytes, fieldUint, hex, messageKeys, nextCk, preKeySignalMessage, rootStep,
  seedOf, seededPair, signalMessage, unhex, varint, x3dhKeys, xeddsaSign,
} from './e2e-model.ts';
import { FLOWS, makeFlow } from './session-flows.ts';

const REF = 'v0.73.3';
const SCHEMA = 'tickwire-e2e-vectors-v1';
const src = (path: string, test: string) => ({ kind: 'libsignal', ref: REF, path, test });
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

function file(algorithm: string, source: unknown[], requirements: string[], body: { tests?: unknown[]; testGroups?: Array<{ tests: unknown[]; [key: string]: unknown }> }, notes: Record<string, string> = {}) {
  const count = body.tests ? body.tests.length : body.testGroups!.reduce((n, g) => n + g.tests.length, 0);
  return { algorithm, schema: SCHEMA, source, requirements, numberOfTests: count, notes, ...body };
}

function numbered<T extends object>(cases: T[]): Array<{ tcId: number } & T> {
  return cases.map((c, i) => ({ tcId: i + 1, ...c }));
}

function x25519File() {
  const aPriv = 'c806439dc9d2c476ffed8f2580c0888d58ab406bf7ae3698879021b96bb4bf59';
  const bPriv = 'b03b34c33a1c44f225b662d2bf4859b8135411fa7b0386d45fb75dc5b91b4466';
  const aPub = '051bb75966f2e93a3691dfff942bb2a466a1c08b8d78ca3f4d6df8b8bfa2e4ee28';
  const bPub = '05653614993d2b15ee9e5fd3d86ce719ef4ec1daae1886a87b3f5fa9565a27a22f';
  const shared = '325f239328941ced6e673b86ba41017448e99b649a9c3806c1dd7ca4c477e629';
  const s = src('rust/core/src/curve/curve25519.rs', 'test_agreement');
  const tests = numbered([
    { comment: 'libsignal test_agreement, Alice side', source: s, private: aPriv, publicKey: bPub, derivedPublicKey: aPub, shared, result: 'valid' },
    { comment: 'libsignal test_agreement, Bob side', source: s, private: bPriv, publicKey: aPub, derivedPublicKey: bPub, shared, result: 'valid' },
    { comment: 'unclamped private bytes are clamped first (libsignal PrivateKey::from clamps)', source: { kind: 'derived', from: 'tcId 1' },
      private: 'c906439dc9d2c476ffed8f2580c0888d58ab406bf7ae3698879021b96bb4bfd9', publicKey: bPub, derivedPublicKey: aPub, shared, result: 'valid' },
    ...LOW_ORDER.slice(0, 5).map((u, i) => ({
      comment: `all-zero output for low-order u #${i + 1}, computed on the raw u without the key checks`, source: { kind: 'constructed' },
      requirements: ['E2E-7'], private: aPriv, rawU: u, result: 'invalid', error: 'E2E_INVALID_AGREEMENT',
    })),
  ]);
  return file('X25519 (RFC 7748) with 33-byte libsignal keys', [s], ['E2E-2', 'E2E-3', 'E2E-7'], { tests });
}

function publicKeyFile() {
  const good = '05653614993d2b15ee9e5fd3d86ce719ef4ec1daae1886a87b3f5fa9565a27a22f';
  const c = { kind: 'constructed' };
  const tests = numbered([
    { comment: 'a valid key', source: c, key: good, result: 'valid' },
    { comment: 'a valid base key (passes E2E-8)', source: c, key: good, baseKey: true, result: 'valid' },
    { comment: '32 bytes, no type byte', source: c, key: good.slice(2), result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-4'] },
    { comment: '34 bytes, trailing byte (libsignal v0.73.3 ignores it)', source: c, key: good + '00', result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-4'] },
    { comment: 'type byte 0x06', source: c, key: '06' + good.slice(2), result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-4'] },
    { comment: 'empty', source: c, key: '', result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-4'] },
    { comment: 'bit 255 set', source: c, key: good.slice(0, 64) + 'af', result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-5'] },
    { comment: 'u = p + 2 (non-canonical 2)', source: c, key: '05efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-5'] },
    { comment: 'u = 2^255 − 1', source: c, key: '05ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-5'] },
    ...LOW_ORDER.map((u, i) => ({ comment: `low-order u #${i + 1} of 8.1.2`, source: c, key: '05' + u, result: 'invalid', error: 'E2E_INVALID_KEY', requirements: [i < 5 ? 'E2E-6' : 'E2E-5'] })),
    { comment: 'base key with a torsion component: libsignal test key + an order-8 point (fails E2E-8 only)', source: c,
      key: torsionedKey(), baseKey: true, result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-8'] },
    { comment: 'u on the twist, not on the curve (fails E2E-8 only)', source: c, key: '05' + twistU(), baseKey: true, result: 'invalid', error: 'E2E_INVALID_KEY', requirements: ['E2E-8'] },
  ]);
  return file('Curve25519 public key serialisation and checks', [], ['E2E-4', 'E2E-5', 'E2E-6', 'E2E-8'], { tests });
}

import { ed25519 } from '@noble/curves/ed25519.js';
const P = 2n ** 255n - 19n;
const leN = (b: Uint8Array) => BigInt('0x' + (hex(Uint8Array.from(b).reverse()) || '0'));
const nLe = (n: bigint) => unhex(n.toString(16).padStart(64, '0')).reverse();
const inv = (a: bigint) => { let r = 1n, b = ((a % P) + P) % P, e = P - 2n; while (e > 0n) { if (e & 1n) r = r * b % P; b = b * b % P; e >>= 1n; } return r; };
/** Edwards point → Montgomery u = (1 + y)/(1 − y). */
const edToU = (pt: InstanceType<typeof ed25519.Point>) => { const y = leN(pt.toBytes().map((v, i) => (i === 31 ? v & 0x7f : v))); return nLe((1n + y) * inv(1n - y) % P); };
function torsionedKey(): string {
  const base = ed25519.Point.BASE.multiply(123456789n);
  const t8 = ed25519.Point.fromBytes(unhex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')); // order 8
  return '05' + hex(edToU(base.add(t8)));
}
function twistU(): string {
  for (let u = 2n; ; u++) {
    const y = (u - 1n) * inv(u + 1n) % P;
    try { ed25519.Point.fromBytes(nLe(y)); } catch { return hex(nLe(u)); }
  }
}

function xeddsaFile() {
  const pub = '05ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64';
  const priv = 'c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865';
  const msg = '05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a';
  const sig = '5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfbede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88';
  const s = src('rust/core/src/curve/curve25519.rs', 'test_signature');
  const sigBytes = unhex(sig);
  const flips = Array.from({ length: 64 }, (_, i) => {
    const c = Uint8Array.from(sigBytes);
    c[i]! ^= 1;
    return { comment: `libsignal test_signature: lowest bit of byte ${i} flipped`, source: s, msg, sig: hex(c), result: 'invalid', error: 'E2E_BAD_SIGNATURE' };
  });
  const sVal = leN(sigBytes.slice(32).map((v, i) => (i === 31 ? v & 0x7f : v)));
  const nonReduced = cat(sigBytes.slice(0, 32), nLe(sVal + L));
  nonReduced[63]! |= sigBytes[63]! & 0x80;
  const cleared = Uint8Array.from(sigBytes);
  cleared[63]! &= 0x7f;
  const highS = Uint8Array.from(sigBytes);
  highS[63]! |= 0x20;
  const verify = numbered([
    { comment: 'libsignal test_signature (sign bit set)', source: s, flags: ['SignBitSet'], msg, sig, result: 'valid' },
    ...flips,
    { comment: 'S + l (< 2^253): libsignal reduces S and accepts', source: { kind: 'derived', from: 'tcId 1' }, flags: ['NonReducedS'], msg, sig: hex(nonReduced), result: 'acceptable', requirements: ['E2E-17'] },
    { comment: 'sign bit cleared: the wrong Edwards point', source: { kind: 'derived', from: 'tcId 1' }, msg, sig: hex(cleared), result: 'invalid', error: 'E2E_BAD_SIGNATURE', requirements: ['E2E-16'] },
    { comment: 'bit 5 of byte 63 set (S ≥ 2^253)', source: { kind: 'derived', from: 'tcId 1' }, msg, sig: hex(highS), result: 'invalid', error: 'E2E_BAD_SIGNATURE' },
    { comment: '63-byte signature', source: { kind: 'derived', from: 'tcId 1' }, msg, sig: sig.slice(0, 126), result: 'invalid', error: 'E2E_BAD_SIGNATURE' },
    { comment: 'other message', source: { kind: 'derived', from: 'tcId 1' }, msg: msg.slice(0, 64) + '4b', sig, result: 'invalid', error: 'E2E_BAD_SIGNATURE' },
  ]);
  const signing = [0, 1, 2, 3].map((i) => {
    const z = unhex(hex(Uint8Array.of(i)).repeat(64));
    const m = i === 0 ? unhex(msg) : seededPair(`xeddsa/msg${i}`).pub;
    return { comment: `sign with fixed Z = ${hex(Uint8Array.of(i))}×64`, source: { kind: 'derived', from: 'libsignal test_signature key' }, msg: hex(m), z: hex(z), sig: hex(xeddsaSign(unhex(priv), m, z)), result: 'valid' };
  });
  const other = seededPair('xeddsa/second-signer');
  const signing2 = [{ comment: 'sign with a second key (seeded), fixed Z', source: { kind: 'derived', from: 'generator' }, msg, z: '07'.repeat(64), sig: hex(xeddsaSign(other.priv, unhex(msg), unhex('07'.repeat(64)))), result: 'valid' }];
  const signGroup = signing.map((c, i) => ({ tcId: verify.length + i + 1, ...c }));
  return file('XEdDSA-Curve25519 (libsignal variant)', [s], ['E2E-12', 'E2E-15', 'E2E-16', 'E2E-17'], {
    testGroups: [
      { type: 'XEdDSAVerify', publicKey: pub, tests: verify },
      { type: 'XEdDSASign', privateKey: priv, publicKey: pub, tests: signGroup },
      { type: 'XEdDSASign', privateKey: hex(other.priv), publicKey: hex(other.pub), tests: signing2.map((c, i) => ({ tcId: verify.length + signGroup.length + i + 1, ...c })) },
    ],
  }, { SignBitSet: 'the signature carries Edwards sign bit 1 in bit 7 of byte 63', NonReducedS: 'l <= S < 2^253; libsignal reduces S and accepts; E2E-17 allows rejection' });
}

function x3dhFile() {
  const asBob = src('rust/protocol/tests/ratchet.rs', 'test_ratcheting_session_as_bob');
  const asAlice = src('rust/protocol/tests/ratchet.rs', 'test_ratcheting_session_as_alice');
  const k = {
    bobIdentityPublic: '05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626', bobIdentityPrivate: '4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e',
    bobSignedPreKeyPublic: '05ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67', bobSignedPreKeyPrivate: '583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253',
    aliceIdentityPublic: '05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a', aliceIdentityPrivate: '9040f0d4e09cf38f6dc7c13779c908c015a1da4fa78737a080eb0a6f4f5f8f58',
    aliceBasePublic: '05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950', aliceBasePrivate: '11ae7c64d1e61cd596b76a0db5012673391cae66edbfcf073b4da80516a47449',
  };
  const seeded = { aI: seededPair('x3dh/alice/identity'), aB: seededPair('x3dh/alice/base'), bI: seededPair('x3dh/bob/identity'), bS: seededPair('x3dh/bob/signedPreKey'), bO: seededPair('x3dh/bob/oneTimePreKey') };
  const four = x3dhKeys([dh(seeded.aI.priv, seeded.bS.pub), dh(seeded.aB.priv, seeded.bI.pub), dh(seeded.aB.priv, seeded.bS.pub), dh(seeded.aB.priv, seeded.bO.pub)]);
  const three = x3dhKeys([dh(seeded.aI.priv, seeded.bS.pub), dh(seeded.aB.priv, seeded.bI.pub), dh(seeded.aB.priv, seeded.bS.pub)]);
  const tests = numbered([
    { comment: 'libsignal: Bob (responder), three DH results; chainKey asserted by libsignal, rootKey derived', source: asBob, side: 'responder',
      identityPrivate: k.bobIdentityPrivate, identityKey: k.bobIdentityPublic, signedPreKeyPrivate: k.bobSignedPreKeyPrivate, signedPreKey: k.bobSignedPreKeyPublic,
      theirIdentityKey: k.aliceIdentityPublic, theirBaseKey: k.aliceBasePublic,
      rootKey: '3e6130d0a8c8e5b8ad65eb8b7d95fa3ab84710d48d92f34dcda43f9909261bca', chainKey: '9797caca53c989bbe229a40ca7727010eb2604fc14945d77958a0aeda088b44d', result: 'valid' },
    { comment: 'libsignal: Alice (initiator), three DH results; her base private key does not match the base public key (see README)', source: asAlice, side: 'initiator',
      identityPrivate: k.aliceIdentityPrivate, identityKey: k.aliceIdentityPublic, basePrivate: k.aliceBasePrivate,
      theirIdentityKey: k.bobIdentityPublic, theirSignedPreKey: k.bobSignedPreKeyPublic,
      rootKey: 'cdbd35392e300db7b28f9e8501eb21b224cd8ca0a009c8339fbe89614035bcb2', chainKey: 'ab9be50e5cb22a925446ab90ee5670545f4fd32902459ec274b6ad0ae5d6031a', result: 'valid' },
    ...(['initiator', 'responder'] as const).flatMap((side) => [true, false].map((otk) => {
      const keys = otk ? four : three;
      return {
        comment: `seeded keys, ${otk ? 'four' : 'three'} DH results, ${side}`, source: { kind: 'derived', from: 'generator' }, side,
        ...(side === 'initiator'
          ? { identityPrivate: hex(seeded.aI.priv), identityKey: hex(seeded.aI.pub), basePrivate: hex(seeded.aB.priv), theirIdentityKey: hex(seeded.bI.pub), theirSignedPreKey: hex(seeded.bS.pub), ...(otk ? { theirOneTimePreKey: hex(seeded.bO.pub) } : {}) }
          : { identityPrivate: hex(seeded.bI.priv), identityKey: hex(seeded.bI.pub), signedPreKeyPrivate: hex(seeded.bS.priv), signedPreKey: hex(seeded.bS.pub), ...(otk ? { oneTimePreKeyPrivate: hex(seeded.bO.priv) } : {}), theirIdentityKey: hex(seeded.aI.pub), theirBaseKey: hex(seeded.aB.pub) }),
        rootKey: hex(keys.rootKey), chainKey: hex(keys.chainKey), result: 'valid',
      };
    })),
  ]);
  return file('X3DH version 3 (HKDF "WhisperText")', [asBob, asAlice], ['E2E-18', 'E2E-19', 'E2E-20', 'E2E-24'], { tests });
}

function kdfFile() {
  const s = src('rust/protocol/src/ratchet/keys.rs', 'test_chain_key_derivation');
  const ck = unhex('8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f');
  const seeds: Array<{ index: number; chainKey: string; seed: string; cipherKey: string; macKey: string; iv: string }> = [];
  let c = ck;
  for (let i = 0; i < 3; i++) {
    const seed = seedOf(c);
    const mk = messageKeys(seed);
    seeds.push({ index: i, chainKey: hex(c), seed: hex(seed), cipherKey: hex(mk.cipherKey), macKey: hex(mk.macKey), iv: hex(mk.iv) });
    c = nextCk(c);
  }
  const rk = seededPair('kdf/root').priv;
  const dhOut = dh(seededPair('kdf/a').priv, seededPair('kdf/b').pub);
  const step = rootStep(rk, dhOut);
  const tests = numbered([
    { comment: 'libsignal test_chain_key_derivation: cipher key, MAC key, next chain key asserted; seed and IV derived', source: s, type: 'ChainStep',
      chainKey: hex(ck), seed: seeds[0]!.seed, cipherKey: seeds[0]!.cipherKey, macKey: seeds[0]!.macKey, iv: seeds[0]!.iv, nextChainKey: '28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d', result: 'valid' },
    ...seeds.slice(1).map((x) => ({ comment: `chain index ${x.index} of the same chain`, source: { kind: 'derived', from: 'tcId 1' }, type: 'ChainStep', chainKey: x.chainKey, seed: x.seed, cipherKey: x.cipherKey, macKey: x.macKey, iv: x.iv, nextChainKey: hex(nextCk(unhex(x.chainKey))), result: 'valid' })),
    { comment: 'root step HKDF(salt = root key, ikm = DH output, "WhisperRatchet", 64)', source: { kind: 'derived', from: 'generator' }, type: 'RootStep',
      rootKey: hex(rk), dhOutput: hex(dhOut), newRootKey: hex(step.rootKey), newChainKey: hex(step.chainKey), result: 'valid' },
  ]);
  return file('Double Ratchet key derivation', [s], ['E2E-26'], { tests });
}

function aesFile() {
  const s = src('rust/crypto/src/aes_cbc.rs', 'aes_cbc_test');
  const key = '4e22eb16d964779994222e82192ce9f747da72dc4abe49dfdeeb71d0ffe3796e';
  const iv = '6f8a557ddc0a140c878063a6d5f31d3d';
  const k2 = seededPair('aes/key').priv;
  const iv2 = seededPair('aes/iv').priv.slice(0, 16);
  const tests = numbered([
    { comment: 'libsignal aes_cbc_test', source: s, key, iv, plaintext: '30736294a124482a4159', ciphertext: 'dd3f573ab4508b9ed0e45e0baf5608f3', result: 'valid' },
    { comment: 'libsignal aes_cbc_test: the plaintext as ciphertext (bad length)', source: s, key, iv, ciphertext: '30736294a124482a4159', result: 'invalid', error: 'E2E_BAD_CIPHERTEXT' },
    { comment: 'libsignal aes_cbc_test: the ciphertext as IV (bad padding)', source: s, key, iv: 'dd3f573ab4508b9ed0e45e0baf5608f3', ciphertext: 'dd3f573ab4508b9ed0e45e0baf5608f3', result: 'invalid', error: 'E2E_BAD_CIPHERTEXT' },
    { comment: 'libsignal aes_cbc_test: IV bit flip flips the plaintext (CBC malleability; the MAC stops it)', source: s, key, iv: 'ef8a557ddc0a140c878063a6d5f31d3d', plaintext: 'b0736294a124482a4159', ciphertext: 'dd3f573ab4508b9ed0e45e0baf5608f3', result: 'valid' },
    { comment: 'empty ciphertext', source: { kind: 'constructed' }, key, iv, ciphertext: '', result: 'invalid', error: 'E2E_BAD_CIPHERTEXT' },
    ...[0, 15, 16, 17, 256].map((n) => {
      const pt = Uint8Array.from({ length: n }, (_, i) => i & 0xff);
      return { comment: `${n}-byte plaintext, PKCS#7 to ${Math.floor(n / 16) * 16 + 16} bytes`, source: { kind: 'derived', from: 'generator' }, key: hex(k2), iv: hex(iv2), plaintext: hex(pt), ciphertext: hex(aesEncrypt(k2, iv2, pt)), result: 'valid' };
    }),
  ]);
  return file('AES-256-CBC with PKCS#7', [s], ['E2E-27', 'E2E-36'], { tests });
}

function envelopeFiles() {
  const rk = seededPair('envelope/ratchet').pub;
  const sender = seededPair('envelope/sender').pub;
  const receiver = seededPair('envelope/receiver').pub;
  const macKey = seededPair('envelope/mac').priv;
  const ct = unhex('00112233445566778899aabbccddeeff');
  const good = signalMessage(rk, 7, 3, ct, macKey, sender, receiver);
  const pb = good.subarray(1, good.length - 8);
  const mac = good.subarray(good.length - 8);
  const withPb = (bytes: Uint8Array, version = 0x33) => hex(cat(Uint8Array.of(version), bytes, mac));
  const fields = { ratchetKey: hex(rk), counter: 7, previousCounter: 3, ciphertext: hex(ct) };
  const c = { kind: 'constructed' };
  const bad = (comment: string, body: string, error: string, requirements: string[]) => ({ comment, source: c, body, result: 'invalid', error, requirements });
  const signal = numbered([
    { comment: 'a SignalMessage with its MAC', source: { kind: 'derived', from: 'generator' }, body: hex(good), fields, macKey: hex(macKey), senderIdentity: hex(sender), receiverIdentity: hex(receiver), result: 'valid' },
    { comment: 'version byte 0x34 (libsignal ≥ v0.24.0): low nibble ignored', source: c, body: withPb(pb, 0x34), fields, result: 'valid', requirements: ['E2E-41'] },
    { comment: 'fields in reverse order decode the same', source: c, body: withPb(cat(fieldBytes(4, ct), fieldUint(3, 3), fieldUint(2, 7), fieldBytes(1, rk))), fields, result: 'valid' },
    { comment: 'an unknown varint field 9 is skipped', source: c, body: withPb(cat(pb, fieldUint(9, 1))), fields, result: 'valid', requirements: ['E2E-47'] },
    { comment: 'an unknown fixed32 field 10 is skipped', source: c, body: withPb(cat(pb, varint((10 << 3) | 5), unhex('01020304'))), fields, result: 'valid', requirements: ['E2E-47'] },
    { comment: 'previousCounter absent reads as 0', source: c, body: withPb(cat(fieldBytes(1, rk), fieldUint(2, 7), fieldBytes(4, ct))), fields: { ...fields, previousCounter: 0 }, result: 'valid' },
    bad('version 2', withPb(pb, 0x23), 'E2E_UNSUPPORTED_VERSION', ['E2E-41']),
    bad('version 4', withPb(pb, 0x44), 'E2E_UNSUPPORTED_VERSION', ['E2E-41']),
    bad('8 bytes', hex(good.subarray(0, 8)), 'E2E_MALFORMED_MESSAGE', ['E2E-42']),
    bad('empty', '', 'E2E_MALFORMED_MESSAGE', ['E2E-42']),
    bad('truncated varint', withPb(cat(pb, Uint8Array.of(0x48, 0x80))), 'E2E_MALFORMED_MESSAGE', ['E2E-43']),
    bad('11-byte varint', withPb(cat(pb, Uint8Array.of(0x48), new Uint8Array(10).fill(0x80), Uint8Array.of(0))), 'E2E_MALFORMED_MESSAGE', ['E2E-43']),
    bad('length past the end', withPb(cat(pb, Uint8Array.of(0x52, 0x05, 0x00))), 'E2E_MALFORMED_MESSAGE', ['E2E-43']),
    bad('field number 0', withPb(cat(pb, Uint8Array.of(0x00, 0x00))), 'E2E_MALFORMED_MESSAGE', ['E2E-43']),
    bad('wire type 3 (group start)', withPb(cat(pb, Uint8Array.of(0x4b))), 'E2E_MALFORMED_MESSAGE', ['E2E-43']),
    bad('counter with wire type 2', withPb(cat(fieldBytes(1, rk), fieldBytes(2, Uint8Array.of(7)), fieldUint(3, 3), fieldBytes(4, ct))), 'E2E_MALFORMED_MESSAGE', ['E2E-43']),
    bad('counter above 2^32 − 1', withPb(cat(fieldBytes(1, rk), Uint8Array.of(0x10), varint(2 ** 32), fieldUint(3, 3), fieldBytes(4, ct))), 'E2E_MALFORMED_MESSAGE', ['E2E-43']),
    bad('counter repeated', withPb(cat(pb, fieldUint(2, 8))), 'E2E_MALFORMED_MESSAGE', ['E2E-44']),
    bad('ratchetKey missing', withPb(cat(fieldUint(2, 7), fieldUint(3, 3), fieldBytes(4, ct))), 'E2E_MALFORMED_MESSAGE', ['E2E-45']),
    bad('counter missing', withPb(cat(fieldBytes(1, rk), fieldUint(3, 3), fieldBytes(4, ct))), 'E2E_MALFORMED_MESSAGE', ['E2E-45']),
    bad('ciphertext missing', withPb(cat(fieldBytes(1, rk), fieldUint(2, 7), fieldUint(3, 3))), 'E2E_MALFORMED_MESSAGE', ['E2E-45']),
    bad('ratchetKey of 32 bytes', withPb(cat(fieldBytes(1, rk.subarray(1)), fieldUint(2, 7), fieldUint(3, 3), fieldBytes(4, ct))), 'E2E_INVALID_KEY', ['E2E-48']),
    bad('ratchetKey low order', withPb(cat(fieldBytes(1, cat(Uint8Array.of(5), unhex(LOW_ORDER[2]!))), fieldUint(2, 7), fieldUint(3, 3), fieldBytes(4, ct))), 'E2E_INVALID_KEY', ['E2E-48']),
  ]);
  const base = seededPair('envelope/base').pub;
  const pk = { preKeyId: 5, baseKey: base, identityKey: sender, message: good, registrationId: 1234, signedPreKeyId: 0 };
  const pkBody = preKeySignalMessage(pk);
  const pkFields = { preKeyId: 5, baseKey: hex(base), identityKey: hex(sender), message: hex(good), registrationId: 1234, signedPreKeyId: 0 };
  const inner = (parts: Uint8Array[], version = 0x33) => hex(cat(Uint8Array.of(version), ...parts));
  const f = { p1: fieldUint(1, 5), p2: fieldBytes(2, base), p3: fieldBytes(3, sender), p4: fieldBytes(4, good), p5: fieldUint(5, 1234), p6: fieldUint(6, 0) };
  const prekey = numbered([
    { comment: 'a PreKeySignalMessage with a one-time prekey and signed prekey id 0', source: { kind: 'derived', from: 'generator' }, body: hex(pkBody), fields: pkFields, result: 'valid' },
    { comment: 'without a one-time prekey (field 1 absent)', source: { kind: 'derived', from: 'generator' }, body: hex(preKeySignalMessage({ ...pk, preKeyId: undefined })), fields: { ...pkFields, preKeyId: null }, result: 'valid', requirements: ['E2E-20'] },
    { comment: 'registrationId absent reads as 0', source: c, body: inner([f.p1, f.p2, f.p3, f.p4, f.p6]), fields: { ...pkFields, registrationId: 0 }, result: 'valid' },
    bad('empty', '', 'E2E_MALFORMED_MESSAGE', ['E2E-42']),
    bad('version 4 outer byte', inner([f.p1, f.p2, f.p3, f.p4, f.p5, f.p6], 0x44), 'E2E_UNSUPPORTED_VERSION', ['E2E-41']),
    bad('kyberPreKeyId (field 7)', inner([f.p1, f.p2, f.p3, f.p4, f.p5, f.p6, fieldUint(7, 1)]), 'E2E_MALFORMED_MESSAGE', ['E2E-46']),
    bad('kyberCiphertext (field 8)', inner([f.p1, f.p2, f.p3, f.p4, f.p5, f.p6, fieldBytes(8, Uint8Array.of(1))]), 'E2E_MALFORMED_MESSAGE', ['E2E-46']),
    bad('baseKey repeated', inner([f.p1, f.p2, f.p2, f.p3, f.p4, f.p5, f.p6]), 'E2E_MALFORMED_MESSAGE', ['E2E-44']),
    bad('baseKey missing', inner([f.p1, f.p3, f.p4, f.p5, f.p6]), 'E2E_MALFORMED_MESSAGE', ['E2E-45']),
    bad('identityKey missing', inner([f.p1, f.p2, f.p4, f.p5, f.p6]), 'E2E_MALFORMED_MESSAGE', ['E2E-45']),
    bad('message missing', inner([f.p1, f.p2, f.p3, f.p5, f.p6]), 'E2E_MALFORMED_MESSAGE', ['E2E-45']),
    bad('signedPreKeyId missing', inner([f.p1, f.p2, f.p3, f.p4, f.p5]), 'E2E_MALFORMED_MESSAGE', ['E2E-45']),
    bad('identityKey with type byte 0x06', inner([f.p1, f.p2, fieldBytes(3, cat(Uint8Array.of(6), sender.subarray(1))), f.p4, f.p5, f.p6]), 'E2E_INVALID_KEY', ['E2E-48']),
    bad('embedded message truncated to 8 bytes', inner([f.p1, f.p2, f.p3, fieldBytes(4, good.subarray(0, 8)), f.p5, f.p6]), 'E2E_MALFORMED_MESSAGE', ['E2E-42']),
  ]);
  return {
    'signal-message.json': file('SignalMessage encoding (version 3)', [], ['E2E-37', 'E2E-38', 'E2E-39', 'E2E-41', 'E2E-42', 'E2E-43', 'E2E-44', 'E2E-45', 'E2E-47', 'E2E-48'], { tests: signal }),
    'prekey-signal-message.json': file('PreKeySignalMessage encoding (version 3)', [], ['E2E-37', 'E2E-38', 'E2E-41', 'E2E-42', 'E2E-44', 'E2E-45', 'E2E-46', 'E2E-48'], { tests: prekey }),
  };
}

function flowsFile() {
  const tests = FLOWS.map((f, i) => makeFlow(i + 1, f.name, f.comment, f.oneTime, f.script));
  return file('Scripted Alice/Bob sessions (X3DH + Double Ratchet)', [src('rust/protocol/fuzz/fuzz_targets/interaction.rs', 'interaction (action model)')],
    ['E2E-18', 'E2E-26', 'E2E-28', 'E2E-29', 'E2E-31', 'E2E-34', 'E2E-35', 'E2E-54', 'E2E-56', 'E2E-62', 'E2E-63'], { tests });
}

/** Every file of spec/vectors/e2e, by name. */
export function generateE2eVectors(): Record<string, unknown> {
  return {
    'x25519.json': x25519File(),
    'public-key.json': publicKeyFile(),
    'xeddsa.json': xeddsaFile(),
    'x3dh.json': x3dhFile(),
    'ratchet-kdf.json': kdfFile(),
    'aes-cbc.json': aesFile(),
    ...envelopeFiles(),
    'session-flows.json': flowsFile(),
  };
}

export const E2E_VECTOR_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'e2e');

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(E2E_VECTOR_DIR, { recursive: true });
  for (const [name, content] of Object.entries(generateE2eVectors())) {
    writeFileSync(join(E2E_VECTOR_DIR, name), JSON.stringify(content, null, 2) + '\n');
    console.log(`wrote ${name}: ${(content as { numberOfTests: number }).numberOfTests} tests`);
  }
}
