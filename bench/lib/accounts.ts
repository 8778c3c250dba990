// Test accounts for the benchmark, registered over HTTP through the wire client (reference-client/wire/http.ts).
// Keys are fake but well formed (TRN-14): a 33-byte public key starting with 0x05 is 44 base64 characters starting
// with "B", a signature is 64 bytes (88 characters ending "=="). The reference server does not verify signatures
// (IDN-10 makes that optional), so nothing here needs real Curve25519 math.
import type { Credentials } from '../../reference-client/wire/connection.ts';
import { HttpApi } from '../../reference-client/wire/http.ts';
import type { RegisterRequest, RegisterResponse } from '../../spec/index.ts';
import { BenchError } from './children.ts';
import type { Rng } from './rng.ts';

export interface Account extends Credentials {
  username: string;
}

function fakePublicKey(rng: Rng): string {
  return Buffer.concat([Buffer.from([0x05]), rng.bytes(32)]).toString('base64');
}

/** A registration body with seeded, well-formed fake keys and a 256-bit base64url secret (AUT-1). */
export function fakeRegistration(rng: Rng, username: string): RegisterRequest {
  return {
    username,
    device: {
      name: 'bench',
      secret: rng.bytes(32).toString('base64url'),
      registrationId: rng.int(1, 16380),
      identityKey: fakePublicKey(rng),
      signedPreKey: { keyId: 1, publicKey: fakePublicKey(rng), signature: rng.bytes(64).toString('base64') },
    },
  };
}

export interface RegisterOutcome {
  accounts: Account[];
  elapsedMs: number;
  /** Registrations per second at this concurrency (the server makes each one durable before answering, IDN-13). */
  perSecond: number;
}

/**
 * Registers `count` accounts with usernames `<prefix>_<i>`, `concurrency` requests at a time. Throws on any answer
 * other than 201: the benchmark must not measure a server that refuses its set-up.
 */
export async function registerAccounts(baseUrl: string, rng: Rng, prefix: string, count: number, concurrency = 32): Promise<RegisterOutcome> {
  if (!/^[a-z0-9_]{1,20}$/.test(prefix)) throw new RangeError(`username prefix must be [a-z0-9_]{1,20} (got '${prefix}')`);
  const api = new HttpApi(baseUrl);
  const accounts = new Array<Account>(count);
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const username = `${prefix}_${i}`;
      const body = fakeRegistration(rng, username);
      const result = await api.call<RegisterResponse>('register', { body, timeoutMs: 30_000 });
      if (result.status !== 201) {
        throw new BenchError('SCENARIO', `registering ${username} answered HTTP ${result.status}: ${JSON.stringify(result.body)}`);
      }
      accounts[i] = { username, userId: result.body.userId, deviceId: result.body.deviceId, secret: body.device.secret };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  const elapsedMs = performance.now() - t0;
  return { accounts, elapsedMs, perSecond: count / (elapsedMs / 1000) };
}
