// Expired link codes are forgotten. They lived only in memory and only a successful link removed one, so a device that
// asked for codes and never used them grew the server's memory for the life of the process (found by the fuzzer's
// memory oracle: 200,000 codes held about 78 MB after they had all expired). createLinkCode now drops expired codes,
// at most once a minute by the caller's clock.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLogStore } from '../../../../reference-server/store/log/log-store.ts';
import type { NewDevice } from '../../../../reference-server/store/store.ts';

const KEY = 'BQ' + 'A'.repeat(42);
const device: NewDevice = {
  name: 'phone',
  secretHash: 'f'.repeat(64),
  registrationId: 7,
  identityKey: KEY,
  signedPreKey: { keyId: 1, publicKey: KEY, signature: 'A'.repeat(86) + '==' },
  oneTimePreKeys: [],
};

t.test('createLinkCode forgets expired codes, and only those', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-store-'));
  const store = await openLogStore(dir);
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const held = () => (store as unknown as { state: { linkCodes: Map<string, unknown> } }).state.linkCodes.size;
  const alice = (await store.createAccount('alice', device, 1000))!;
  for (let i = 0; i < 100; i++) await store.createLinkCode(alice.userId, `old-${i}`, 2_000 + i, 1, 1_000);
  t.equal(held(), 100, 'unexpired codes are kept');
  // A minute and more later every old code has expired; the next code sweeps them, and a live one stays usable.
  await store.createLinkCode(alice.userId, 'live', 1_000_000, 1, 70_000);
  t.equal(held(), 1, 'the expired codes are gone');
  t.same(await store.linkDevice('live', device, 70_001, 16), { userId: alice.userId, deviceId: 2 }, 'the live code still links');
  t.equal(await store.linkDevice('old-1', device, 70_001, 16), 'invalid-code', 'an expired code stays refused');
});
