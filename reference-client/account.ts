// Creating a device (PROTOCOL.md 2.2, 2.3): fresh identity key pair and registrationId [E2E-1] [E2E-2] [E2E-9], a
// random secret [AUT-1], a signed prekey signed with XEdDSA and a batch of one-time prekeys, then POST /v1/accounts
// (a new user) or POST /v1/devices with a link code (a new device of an existing user). The private halves are on
// disk before the request goes out, and the credentials right after the 201, so the state directory always holds
// every key the server may hand out.
import type { LinkDeviceResponse, PreKey, RegisterResponse } from '../spec/index.ts';
import type { ClientOptions } from './client-api.ts';
import { DEFAULT_PREKEY_BATCH, REGISTRATION_PREKEYS_MAX, SECRET_BYTES } from './constants.ts';
import { generateKeyPair, REGISTRATION_ID_MAX, REGISTRATION_ID_MIN, secureRandom, type KeyPair } from './e2e/index.ts';
import { ClientError } from './errors.ts';
import { httpFailure, PreKeyStore, signedPreKeyWire } from './prekeys.ts';
import { DEVICE_FORMAT, StateDir, type DeviceRecord } from './state/state-dir.ts';
import { HttpApi } from './wire/http.ts';

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

/** [TRN-39] Credentials never travel in plaintext to a host other than loopback. */
export function checkServerUrl(url: unknown): string {
  if (typeof url !== 'string') throw new ClientError('INVALID_ARGUMENT', 'url must be a string');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ClientError('INVALID_ARGUMENT', 'url is not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ClientError('INVALID_ARGUMENT', 'url must be http:// or https://');
  if (parsed.protocol === 'http:' && !LOOPBACK.test(parsed.hostname)) {
    throw new ClientError('INVALID_ARGUMENT', 'plain http is allowed only to a loopback address (TRN-39); use https');
  }
  return url;
}

/** [E2E-9] uniform in 1..16380, by rejection sampling. */
export function randomRegistrationId(): number {
  const span = REGISTRATION_ID_MAX - REGISTRATION_ID_MIN + 1;
  const limit = 65536 - (65536 % span);
  for (;;) {
    const b = secureRandom(2);
    const value = (b[0]! << 8) | b[1]!;
    if (value < limit) return REGISTRATION_ID_MIN + (value % span);
  }
}

interface NewDevice {
  dir: StateDir;
  identity: KeyPair;
  registrationId: number;
  secret: string;
  preKeys: PreKeyStore;
  oneTime: PreKey[];
}

function createKeys(options: ClientOptions, deviceName: string): NewDevice {
  checkServerUrl(options.url);
  if (typeof deviceName !== 'string' || deviceName.length === 0 || [...deviceName].length > 64) {
    throw new ClientError('INVALID_ARGUMENT', 'deviceName must be 1 to 64 characters');
  }
  const dir = new StateDir(options.stateDir);
  if (dir.hasDevice()) throw new ClientError('STATE_EXISTS', `${options.stateDir} already holds a device; use open()`);
  dir.prepare();
  const identity = generateKeyPair(secureRandom);
  const registrationId = randomRegistrationId();
  dir.writeIdentity({ identityKeyPair: identity, registrationId });
  const preKeys = new PreKeyStore(dir.path('prekeys.json'));
  preKeys.generateSigned(identity, secureRandom, Date.now());
  const batch = Math.min(options.preKeyBatch ?? DEFAULT_PREKEY_BATCH, REGISTRATION_PREKEYS_MAX);
  const oneTime = preKeys.generateOneTime(batch, secureRandom);
  return { dir, identity, registrationId, secret: Buffer.from(secureRandom(SECRET_BYTES)).toString('base64url'), preKeys, oneTime };
}

function registration(device: NewDevice, deviceName: string, withPreKeys: boolean) {
  return {
    name: deviceName,
    secret: device.secret,
    registrationId: device.registrationId,
    identityKey: Buffer.from(device.identity.publicKey).toString('base64'),
    signedPreKey: signedPreKeyWire(device.preKeys.current),
    ...(withPreKeys && device.oneTime.length > 0 ? { oneTimePreKeys: device.oneTime } : {}),
  };
}

/**
 * Posts the registration; a server whose prekeyBatchMax is below our batch answers 400, so we retry once without
 * one-time prekeys (they are uploaded after the first welcome) [LIM-7].
 */
async function post<T>(http: HttpApi, route: string, device: NewDevice, body: (withPreKeys: boolean) => unknown): Promise<T> {
  let answer = await http.call<T>(route, { body: body(true) });
  if (answer.status === 400 && device.oneTime.length > 0) answer = await http.call<T>(route, { body: body(false) });
  if (answer.status !== 201) throw httpFailure(route, answer.status, answer.body);
  device.preKeys.current.uploaded = true;
  device.preKeys.save();
  return answer.body;
}

function persist(device: NewDevice, options: ClientOptions, userId: string, deviceId: number, username: string): DeviceRecord {
  const record: DeviceRecord = { format: DEVICE_FORMAT, url: options.url, userId, deviceId, secret: device.secret, username, createdAt: Date.now() };
  device.dir.writeDevice(record);
  return record;
}

export async function registerDevice(options: ClientOptions, username: string, deviceName: string): Promise<DeviceRecord> {
  if (typeof username !== 'string' || !/^[a-z0-9_]{3,32}$/.test(username)) throw new ClientError('INVALID_ARGUMENT', 'username must match ^[a-z0-9_]{3,32}$');
  const device = createKeys(options, deviceName);
  const http = new HttpApi(options.url);
  const created = await post<RegisterResponse>(http, 'register', device, (withPreKeys) => ({ username, device: registration(device, deviceName, withPreKeys) }));
  return persist(device, options, created.userId, created.deviceId, created.username);
}

export async function linkDevice(options: ClientOptions, linkCode: string, deviceName: string, username?: string): Promise<DeviceRecord> {
  if (typeof linkCode !== 'string' || !/^[A-Za-z0-9]{8,64}$/.test(linkCode)) throw new ClientError('INVALID_ARGUMENT', 'linkCode must match ^[A-Za-z0-9]{8,64}$');
  const device = createKeys(options, deviceName);
  const http = new HttpApi(options.url);
  const created = await post<LinkDeviceResponse>(http, 'linkDevice', device, (withPreKeys) => ({ linkCode, device: registration(device, deviceName, withPreKeys) }));
  // [IDN-16] The answer names the user; a username the caller expected must match it.
  if (username !== undefined && username !== created.username) {
    throw new ClientError('INVALID_ARGUMENT', `the link code belongs to ${created.username}, not ${username}`);
  }
  return persist(device, options, created.userId, created.deviceId, created.username);
}
