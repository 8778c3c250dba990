// The layout of a device's local state directory, and its two fixed records: the device credentials and the
// identity. Everything in it is secret (credentials, private keys, session states, plaintexts waiting in the
// outbox): the directory is created 0700 and its files 0600, and none of it is ever logged [E2E-11].
//
//   device.json        credentials { userId, deviceId, secret }, username, server URL
//   identity.json      identity key pair, registrationId [E2E-1], [E2E-9]
//   prekeys.json       signed prekeys (current and recently replaced) and one-time prekey private keys
//   peers.json         recorded identity keys per peer device (trust on first use) and known devices per user
//   sessions/          one session record per peer device, `<userId>.<deviceId>.json`
//   outbox/            one entry per message not yet acknowledged by send_ok, `<messageId>.json`
//   inbox/             decrypted messages handed to the application but not yet recorded as processed
//   processed.log      processed (sender, messageId) keys, for deduplication across restarts [DLV-29]
//   ticks.log          ticks of sent messages
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { assertUint, fromHex, keyPairFromPrivateKey, REGISTRATION_ID_MAX, REGISTRATION_ID_MIN, toHex, type KeyPair } from '../e2e/index.ts';
import { ClientError } from '../errors.ts';
import { ensureDir, readJson, removeStaleTemps, writeJsonAtomic } from './atomic-file.ts';

export const DEVICE_FORMAT = 'tickwire-device-v1';

export interface DeviceRecord {
  format: typeof DEVICE_FORMAT;
  url: string;
  userId: string;
  deviceId: number;
  secret: string;
  /** The account's username; empty for a linked device that was not told it (no endpoint maps userId → username). */
  username: string;
  createdAt: number;
}

export interface IdentityRecord {
  identityKeyPair: KeyPair;
  registrationId: number;
}

export class StateDir {
  readonly sessionsDir: string;
  readonly outboxDir: string;
  readonly inboxDir: string;

  constructor(readonly root: string) {
    if (typeof root !== 'string' || root === '') throw new ClientError('INVALID_ARGUMENT', 'stateDir must be a non-empty path');
    this.sessionsDir = join(root, 'sessions');
    this.outboxDir = join(root, 'outbox');
    this.inboxDir = join(root, 'inbox');
  }

  path(name: string): string {
    return join(this.root, name);
  }

  /** Creates the directory tree and clears temporary files left by a crash. */
  prepare(): void {
    for (const dir of [this.root, this.sessionsDir, this.outboxDir, this.inboxDir]) {
      ensureDir(dir);
      removeStaleTemps(dir);
    }
  }

  hasDevice(): boolean {
    return existsSync(this.path('device.json'));
  }

  writeDevice(record: DeviceRecord): void {
    writeJsonAtomic(this.path('device.json'), record);
  }

  readDevice(): DeviceRecord {
    const value = readJson(this.path('device.json'));
    if (value === undefined) throw new ClientError('STATE_INVALID', `no device in ${this.root}: register or link first`);
    const r = value as Partial<DeviceRecord>;
    if (
      r.format !== DEVICE_FORMAT ||
      typeof r.url !== 'string' ||
      typeof r.userId !== 'string' ||
      typeof r.deviceId !== 'number' ||
      typeof r.secret !== 'string' ||
      typeof r.username !== 'string'
    ) {
      throw new ClientError('STATE_INVALID', 'device.json is malformed');
    }
    return r as DeviceRecord;
  }

  writeIdentity(identity: IdentityRecord): void {
    writeJsonAtomic(this.path('identity.json'), {
      privateKey: toHex(identity.identityKeyPair.privateKey),
      registrationId: identity.registrationId,
    });
  }

  readIdentity(): IdentityRecord {
    const value = readJson(this.path('identity.json')) as { privateKey?: unknown; registrationId?: unknown } | undefined;
    if (value === undefined || typeof value.privateKey !== 'string') throw new ClientError('STATE_INVALID', 'identity.json is missing or malformed');
    assertUint(value.registrationId, 'registrationId', REGISTRATION_ID_MIN, REGISTRATION_ID_MAX);
    // The public key is derived again rather than trusted from disk.
    return { identityKeyPair: keyPairFromPrivateKey(fromHex(value.privateKey, 'identity private key')), registrationId: value.registrationId };
  }
}
