// Prekeys of this device (PROTOCOL.md section 3): the private halves on disk (prekeys.json), generation of the
// registration batch, top-ups after `prekeys_low` or a low count at connect [PKY-24] [E2E-80], and rotation of the
// signed prekey [PKY-4]. A private key is always durable before its public half is uploaded, so the device holds
// every prekey the server can hand out.
import type { Limits, PreKey, PreKeyCountResponse, SignedPreKey } from '../spec/index.ts';
import {
  fromHex,
  generateKeyPair,
  keyPairFromPrivateKey,
  PREKEY_ID_MAX,
  toHex,
  xeddsaSign,
  type KeyPair,
  type RandomSource,
} from './e2e/index.ts';
import { MAX_LOCAL_ONE_TIME_PREKEYS } from './constants.ts';
import { ClientError, describeError } from './errors.ts';
import { readJson, writeJsonAtomic } from './state/atomic-file.ts';
import type { Credentials } from './wire/connection.ts';
import type { HttpApi } from './wire/http.ts';

export interface SignedPreKeyEntry {
  keyId: number;
  keyPair: KeyPair;
  signature: Uint8Array;
  createdAt: number;
  /** When a newer signed prekey replaced this one; kept for retentionSec after that [E2E-66]. */
  replacedAt?: number | undefined;
  /** False until the server has stored it (PUT /v1/keys/signed answered 204, or it went in with registration). */
  uploaded: boolean;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const nextId = (id: number): number => (id + 1) & PREKEY_ID_MAX;

/** The private halves of this device's prekeys, written through to `prekeys.json`. */
export class PreKeyStore {
  /** Newest first: [0] is the current signed prekey. */
  signed: SignedPreKeyEntry[] = [];
  readonly oneTime = new Map<number, KeyPair>();
  nextOneTimeId = 1;
  nextSignedId = 1;

  constructor(private readonly file: string) {}

  static load(file: string): PreKeyStore {
    const store = new PreKeyStore(file);
    const value = readJson(file) as
      | { signed?: unknown; oneTime?: unknown; nextOneTimeId?: unknown; nextSignedId?: unknown }
      | undefined;
    if (value === undefined) return store;
    if (!Array.isArray(value.signed) || !Array.isArray(value.oneTime)) throw new ClientError('STATE_INVALID', 'prekeys.json is malformed');
    for (const raw of value.signed as Array<Record<string, unknown>>) {
      store.signed.push({
        keyId: Number(raw['keyId']),
        keyPair: keyPairFromPrivateKey(fromHex(String(raw['privateKey']), 'signed prekey')),
        signature: fromHex(String(raw['signature']), 'signature'),
        createdAt: Number(raw['createdAt']),
        replacedAt: raw['replacedAt'] === undefined ? undefined : Number(raw['replacedAt']),
        uploaded: raw['uploaded'] === true,
      });
    }
    for (const raw of value.oneTime as Array<[number, string]>) {
      store.oneTime.set(raw[0], keyPairFromPrivateKey(fromHex(raw[1], 'one-time prekey')));
    }
    store.nextOneTimeId = Number(value.nextOneTimeId ?? 1);
    store.nextSignedId = Number(value.nextSignedId ?? 1);
    return store;
  }

  save(): void {
    writeJsonAtomic(this.file, {
      signed: this.signed.map((s) => ({
        keyId: s.keyId,
        privateKey: toHex(s.keyPair.privateKey),
        signature: toHex(s.signature),
        createdAt: s.createdAt,
        ...(s.replacedAt === undefined ? {} : { replacedAt: s.replacedAt }),
        uploaded: s.uploaded,
      })),
      oneTime: [...this.oneTime].map(([id, pair]) => [id, toHex(pair.privateKey)]),
      nextOneTimeId: this.nextOneTimeId,
      nextSignedId: this.nextSignedId,
    });
  }

  get current(): SignedPreKeyEntry {
    const current = this.signed[0];
    if (current === undefined) throw new ClientError('STATE_INVALID', 'no signed prekey');
    return current;
  }

  signedPreKey(id: number): KeyPair | undefined {
    return this.signed.find((s) => s.keyId === id)?.keyPair;
  }

  preKey(id: number): KeyPair | undefined {
    return this.oneTime.get(id);
  }

  /** [E2E-58] Called once a message that used the key has decrypted. */
  removePreKey(id: number): void {
    if (this.oneTime.delete(id)) this.save();
  }

  /** New one-time prekeys with fresh ids [PKY-9] [E2E-10], durable before the caller uploads them. */
  generateOneTime(count: number, random: RandomSource): PreKey[] {
    const out: PreKey[] = [];
    for (let i = 0; i < count; i++) {
      const keyId = this.nextOneTimeId;
      this.nextOneTimeId = nextId(keyId);
      const pair = generateKeyPair(random);
      this.oneTime.set(keyId, pair);
      out.push({ keyId, publicKey: b64(pair.publicKey) });
    }
    // Forget the oldest ids beyond the cap (Map iteration is insertion order).
    for (const id of this.oneTime.keys()) {
      if (this.oneTime.size <= MAX_LOCAL_ONE_TIME_PREKEYS) break;
      this.oneTime.delete(id);
    }
    this.save();
    return out;
  }

  /** A new current signed prekey, signed with XEdDSA by the identity key [E2E-14]; durable before upload. */
  generateSigned(identity: KeyPair, random: RandomSource, now: number): SignedPreKeyEntry {
    const keyPair = generateKeyPair(random);
    const entry: SignedPreKeyEntry = {
      keyId: this.nextSignedId,
      keyPair,
      signature: xeddsaSign(identity.privateKey, keyPair.publicKey, random),
      createdAt: now,
      uploaded: false,
    };
    this.nextSignedId = nextId(this.nextSignedId);
    if (this.signed[0] !== undefined) this.signed[0].replacedAt = now;
    this.signed.unshift(entry);
    this.save();
    return entry;
  }

  /** [E2E-66] Drops replaced signed prekeys older than `retentionMs` after their replacement. */
  pruneSigned(retentionMs: number, now: number): void {
    const keep = this.signed.filter((s, i) => i === 0 || s.replacedAt === undefined || s.replacedAt + retentionMs > now);
    if (keep.length !== this.signed.length) {
      this.signed = keep;
      this.save();
    }
  }
}

export function signedPreKeyWire(entry: SignedPreKeyEntry): SignedPreKey {
  return { keyId: entry.keyId, publicKey: b64(entry.keyPair.publicKey), signature: b64(entry.signature) };
}

export interface PreKeyManagerOptions {
  http: HttpApi;
  credentials: Credentials;
  identity: KeyPair;
  random: RandomSource;
  preKeyBatch: number;
  signedPreKeyRotationSec: number;
  now: () => number;
  warn: (code: string, message: string) => void;
}

/** Keeps the server's pool of this device's prekeys filled and its signed prekey fresh. */
export class PreKeyManager {
  private topUpRunning: Promise<void> | undefined;
  private topUpAgain = false;

  constructor(
    readonly store: PreKeyStore,
    private readonly options: PreKeyManagerOptions,
  ) {}

  /** The number of one-time prekeys to hold on the server: the batch, at least lowWater, at most maxStoredPreKeys. */
  target(limits: Limits): number {
    return Math.min(Math.max(this.options.preKeyBatch, limits.prekeyLowWater), limits.maxStoredPreKeys);
  }

  /**
   * Reads the count and uploads what is missing up to `target`, in batches of prekeyBatchMax [PKY-24]. Single
   * flight: a call during a running top-up schedules one more round after it.
   */
  topUp(limits: Limits): Promise<void> {
    if (this.topUpRunning !== undefined) {
      this.topUpAgain = true;
      return this.topUpRunning;
    }
    this.topUpRunning = (async () => {
      try {
        do {
          this.topUpAgain = false;
          await this.topUpOnce(limits);
        } while (this.topUpAgain);
      } catch (error) {
        const { code, message } = describeError(error);
        this.options.warn('PREKEY_UPLOAD_FAILED', `${code}: ${message}`);
      } finally {
        this.topUpRunning = undefined;
      }
    })();
    return this.topUpRunning;
  }

  private async topUpOnce(limits: Limits): Promise<void> {
    const { http, credentials, random } = this.options;
    const count = await http.call<PreKeyCountResponse>('getPreKeyCount', { credentials });
    if (count.status !== 200) throw httpFailure('getPreKeyCount', count.status, count.body);
    // The server lost or never got the current signed prekey: upload it again.
    if (count.body.signedPreKeyId !== this.store.current.keyId || !this.store.current.uploaded) await this.uploadSigned();
    let missing = this.target(limits) - count.body.oneTimePreKeys;
    while (missing > 0) {
      const batch = this.store.generateOneTime(Math.min(missing, limits.prekeyBatchMax), random);
      const answer = await http.call<{ count: number }>('uploadOneTimePreKeys', { credentials, body: { preKeys: batch } });
      if (answer.status === 409) {
        this.options.warn('PREKEY_UPLOAD_REFUSED', `server refused one-time prekeys: ${serverCode(answer.body)}`);
        return;
      }
      if (answer.status !== 200) throw httpFailure('uploadOneTimePreKeys', answer.status, answer.body);
      missing = this.target(limits) - answer.body.count;
    }
  }

  /** Rotates the signed prekey when it is older than signedPreKeyRotationSec [PKY-4], and prunes replaced ones. */
  async rotateIfDue(limits: Limits): Promise<void> {
    const now = this.options.now();
    try {
      if (this.store.current.createdAt + this.options.signedPreKeyRotationSec * 1000 <= now) {
        this.store.generateSigned(this.options.identity, this.options.random, now);
      }
      if (!this.store.current.uploaded) await this.uploadSigned();
      this.store.pruneSigned(limits.retentionSec * 1000, now);
    } catch (error) {
      const { code, message } = describeError(error);
      this.options.warn('SIGNED_PREKEY_ROTATION_FAILED', `${code}: ${message}`);
    }
  }

  private async uploadSigned(): Promise<void> {
    const current = this.store.current;
    const { http, credentials } = this.options;
    const answer = await http.call('putSignedPreKey', { credentials, body: { signedPreKey: signedPreKeyWire(current) } });
    if (answer.status !== 204) throw httpFailure('putSignedPreKey', answer.status, answer.body);
    current.uploaded = true;
    this.store.save();
  }
}

export function serverCode(body: unknown): string {
  const code = (body as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

export function httpFailure(route: string, status: number, body: unknown): ClientError {
  const code = serverCode(body);
  return new ClientError('HTTP_FAILED', `${route} answered HTTP ${status} ${code}`, { serverCode: code, status });
}
