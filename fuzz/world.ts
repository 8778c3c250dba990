// The identities a campaign sets up on the server under test before it sends anything, through the ordinary wire
// client (HTTP registration and linking, a WebSocket send):
//
// - one worker user per concurrent fuzzing lane, with two devices: `main` keeps a long-lived session that carries the
//   `frame` and `sequence` inputs, `spare` opens a fresh session for each `fatal` input (a second session of `main`
//   would replace the first, DLV-34);
// - `herald`, whose credentials the `preauth` inputs mutate (its sessions may replace each other freely);
// - `clerk`, whose credentials the `http` inputs carry (one device, so a mutated DELETE can never remove it);
// - `victim` (two devices) and `friend`: friend sends a few messages to the victim at set-up, then neither acts
//   again. The victim oracle checks that they are still there, unchanged, and that nothing ever claims to come from
//   either of them;
// - `probeA` and `probeB`, for the health oracle's end-to-end exchange.
//
// Registration is rate-limited per source address (IDN-8): the set-up waits out every 429 and says so.
import { randomBytes } from 'node:crypto';
import { keyPairFromPrivateKey, xeddsaSignWithRandom } from '../reference-client/e2e/index.ts';
import { Connection, type Credentials } from '../reference-client/wire/connection.ts';
import { HttpApi } from '../reference-client/wire/http.ts';
import type { DeviceEnvelope, DeviceRegistration, Limits, RegisterResponse, LinkCodeResponse, LinkDeviceResponse } from '../spec/index.ts';
import type { Bindings } from './input.ts';
import { Rng } from './random.ts';

export interface Identity extends Credentials {
  username: string;
}

export interface WorkerIdentity {
  main: Identity;
  spare: Identity;
}

export interface SeededMessage {
  messageId: string;
  /** The envelope body addressed to each victim device, by deviceId. */
  bodies: Map<number, string>;
  type: 'prekey' | 'ratchet';
}

export interface World {
  url: string;
  http: HttpApi;
  /** The limits the server advertised in a `welcome` at set-up. */
  limits: Limits;
  workers: WorkerIdentity[];
  herald: Identity;
  clerk: Identity;
  victim: Identity;
  victim2: Identity;
  friend: Identity;
  probeA: Identity;
  probeB: Identity;
  /** What friend sent the victim at set-up, in order. */
  seeded: SeededMessage[];
  /** The victim's signed prekey id and one-time prekey count at registration. */
  victimSignedPreKeyId: number;
  victimPreKeys: number;
  /** Users that never act after set-up: an item, receipt or typing frame `from` them is forged [AUT-9]. */
  silentUsers: ReadonlySet<string>;
  /** Every device the fuzzer holds credentials for, as `userId.deviceId` → secret. */
  credentials: ReadonlyMap<string, string>;
}

export interface SetupOptions {
  url: string;
  workers: number;
  seed: number;
  /** Called with progress notes (rate-limit waits). */
  log?: (line: string) => void;
  /** Gives up after this long (default 10 minutes: a server allowing 10 registrations a minute needs about 2). */
  timeoutMs?: number;
}

export class SetupError extends Error {
  readonly code = 'SETUP';
  constructor(message: string) {
    super(message);
    this.name = 'SetupError';
  }
}

/** Key material whose signatures verify (IDN-10 lets a server check them). Not secret: seeded, for tests only. */
class Material {
  private readonly identities = new Map<string, Uint8Array>();
  constructor(private readonly rng: Rng) {}

  publicKey(): string {
    const u = this.rng.bytes(32);
    u[31]! &= 0x7f;
    return Buffer.concat([Buffer.from([0x05]), u]).toString('base64');
  }

  identityKey(): string {
    const pair = keyPairFromPrivateKey(new Uint8Array(this.rng.bytes(32)));
    const publicKey = Buffer.from(pair.publicKey).toString('base64');
    this.identities.set(publicKey, pair.privateKey);
    return publicKey;
  }

  device(name: string, prekeys: number, signedKeyId: number): DeviceRegistration {
    const identityKey = this.identityKey();
    const publicKey = this.publicKey();
    const signature = xeddsaSignWithRandom(this.identities.get(identityKey)!, Buffer.from(publicKey, 'base64'), new Uint8Array(this.rng.bytes(64)));
    return {
      name,
      // 32 bytes from the CSPRNG, not from the seed: a replay against the same server must not reuse secrets.
      secret: randomBytes(32).toString('base64url'),
      registrationId: this.rng.int(1, 16380),
      identityKey,
      signedPreKey: { keyId: signedKeyId, publicKey, signature: Buffer.from(signature).toString('base64') },
      ...(prekeys > 0 ? { oneTimePreKeys: Array.from({ length: prekeys }, (_, i) => ({ keyId: i + 1, publicKey: this.publicKey() })) } : {}),
    };
  }
}

const VICTIM_SIGNED_KEY_ID = 4242;
const VICTIM_PREKEYS = 5;
const SEEDED_MESSAGES = 3;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sets up every identity of a campaign; throws SetupError when the server refuses or does not answer. */
export async function setUpWorld(options: SetupOptions): Promise<World> {
  const http = new HttpApi(options.url);
  const rng = new Rng(options.seed ^ 0x5eed5eed);
  const material = new Material(rng);
  const deadline = performance.now() + (options.timeoutMs ?? 600_000);
  // A random per-run tag keeps usernames unique when the same seed runs twice against one server.
  const tag = randomBytes(4).toString('hex');
  let counter = 0;
  const credentials = new Map<string, string>();
  let warned = false;

  /** POSTs with the registration rate limit waited out (IDN-8). */
  const post = async <T>(route: string, body: unknown, auth?: Credentials): Promise<T> => {
    for (;;) {
      const result = await http.call<T & { error?: { code: string; retryAfterMs?: number } }>(route, { body, ...(auth ? { credentials: auth } : {}), timeoutMs: 15_000 });
      if (result.status === 429) {
        const wait = Math.max(100, result.body.error?.retryAfterMs ?? 1000);
        if (performance.now() + wait > deadline) throw new SetupError(`set-up gave up waiting for the registration rate limit (${route})`);
        if (!warned) options.log?.(`waiting for the server's registration rate limit (${Math.ceil(wait / 1000)} s; start it with a higher registrationsPerMinute to avoid this)`);
        warned = true;
        await sleep(wait);
        continue;
      }
      if (result.status !== 201) throw new SetupError(`${route} answered HTTP ${result.status}: ${JSON.stringify(result.body).slice(0, 300)}`);
      if (result.issues.length > 0) throw new SetupError(`${route} answered a body outside its schema: ${JSON.stringify(result.issues).slice(0, 300)}`);
      return result.body;
    }
  };

  const register = async (label: string, prekeys = 0, signedKeyId = 1): Promise<Identity> => {
    const username = `fz${tag}_${label}${(++counter).toString(36)}`.slice(0, 32);
    const device = material.device(`fuzz ${label}`, prekeys, signedKeyId);
    const created = await post<RegisterResponse>('register', { username, device });
    credentials.set(`${created.userId}.${created.deviceId}`, device.secret);
    return { userId: created.userId, deviceId: created.deviceId, secret: device.secret, username };
  };

  const link = async (owner: Identity, label: string): Promise<Identity> => {
    const code = await post<LinkCodeResponse>('createLinkCode', undefined, owner);
    const device = material.device(`fuzz ${label}`, 0, 1);
    const linked = await post<LinkDeviceResponse>('linkDevice', { linkCode: code.code, device });
    credentials.set(`${linked.userId}.${linked.deviceId}`, device.secret);
    return { userId: linked.userId, deviceId: linked.deviceId, secret: device.secret, username: owner.username };
  };

  try {
    const health = await fetch(new URL('/healthz', options.url), { signal: AbortSignal.timeout(10_000) });
    await health.arrayBuffer();
  } catch (error) {
    throw new SetupError(`cannot reach ${options.url}: ${(error as Error).message}`);
  }

  const victim = await register('victim', VICTIM_PREKEYS, VICTIM_SIGNED_KEY_ID);
  const victim2 = await link(victim, 'victim2');
  const friend = await register('friend');
  const herald = await register('herald');
  const clerk = await register('clerk');
  const probeA = await register('probea');
  const probeB = await register('probeb');
  const workers: WorkerIdentity[] = [];
  for (let i = 0; i < Math.max(2, options.workers); i++) {
    const main = await register(`w${i}`);
    workers.push({ main, spare: await link(main, `w${i}spare`) });
  }

  // Friend sends the victim's seeded messages, then never acts again.
  const seeded: SeededMessage[] = [];
  let limits: Limits;
  const conn = await Connection.connect(options.url, friend).catch((error: Error) => {
    throw new SetupError(`friend cannot open a session: ${error.message}`);
  });
  try {
    limits = conn.welcome!.limits;
    for (let i = 0; i < SEEDED_MESSAGES; i++) {
      const messageId = `seed-${tag}-${i}`;
      const type = i % 2 === 0 ? 'ratchet' : 'prekey';
      const bodies = new Map<number, string>([
        [victim.deviceId, rng.bytes(24 + i).toString('base64')],
        [victim2.deviceId, rng.bytes(30 + i).toString('base64')],
      ]);
      const answer = await conn.request({
        type: 'send',
        messageId,
        to: victim.userId,
        envelopes: [...bodies].map(([deviceId, body]) => ({ deviceId, type, body })) as [DeviceEnvelope, ...DeviceEnvelope[]],
      });
      if (answer.type !== 'send_ok') throw new SetupError(`friend's seeded send was refused: ${JSON.stringify(answer)}`);
      seeded.push({ messageId, bodies, type });
    }
  } finally {
    await conn.close();
  }

  return {
    url: options.url,
    http,
    limits,
    workers,
    herald,
    clerk,
    victim,
    victim2,
    friend,
    probeA,
    probeB,
    seeded,
    victimSignedPreKeyId: VICTIM_SIGNED_KEY_ID,
    victimPreKeys: VICTIM_PREKEYS,
    silentUsers: new Set([victim.userId, friend.userId]),
    credentials,
  };
}

/**
 * The placeholder values for inputs run by worker `lane`: `self` and `spare` are its own devices, `peer` the next
 * worker's main device; the others are shared. `@{id}` is added per step by the executor.
 */
export function bindingsFor(world: World, lane: number): Map<string, string | number> {
  const self = world.workers[lane % world.workers.length]!;
  const peer = world.workers[(lane + 1) % world.workers.length]!;
  const out = new Map<string, string | number>();
  const put = (name: string, identity: Identity, withSecret: boolean) => {
    out.set(`${name}.userId`, identity.userId);
    out.set(`${name}.deviceId`, identity.deviceId);
    out.set(`${name}.username`, identity.username);
    if (withSecret) out.set(`${name}.secret`, identity.secret);
  };
  put('self', self.main, true);
  put('spare', self.spare, true);
  put('peer', peer.main, false);
  put('herald', world.herald, true);
  put('clerk', world.clerk, true);
  put('victim', world.victim, false);
  put('victim2', world.victim2, false);
  put('friend', world.friend, false);
  return out;
}

/** Whether `userId.deviceId` with `secret` are the credentials of a current device the fuzzer set up. */
export function knownCredentials(world: World, userId: unknown, deviceId: unknown, secret: unknown): boolean {
  return typeof userId === 'string' && typeof deviceId === 'number' && typeof secret === 'string' && world.credentials.get(`${userId}.${deviceId}`) === secret;
}

export function withBindings(base: Bindings, extra: Record<string, string | number>): Map<string, string | number> {
  const out = new Map(base);
  for (const [key, value] of Object.entries(extra)) out.set(key, value);
  return out;
}
