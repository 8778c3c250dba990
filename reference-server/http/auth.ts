// HTTP device authentication (section 2.8): Basic credentials `userId.deviceId:secret`, checked against the SHA-256
// digest the store keeps [AUT-2], compared in constant time [AUT-3]. Every failure is the same 401 [AUT-7].
import { digestsEqual, hashSecret } from '../credentials.ts';
import { ProtocolError } from '../errors.ts';
import type { DeviceAddress, DeviceRecord, Store } from '../store/store.ts';

const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SECRET = /^[A-Za-z0-9_-]{43,128}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_DEVICE_ID = 2147483647;

/**
 * Parses a decimal deviceId written without sign or leading zeros, in 1..2147483647 [TRN-10] [AUT-5]; undefined
 * otherwise.
 */
export function parseDeviceId(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= MAX_DEVICE_ID ? value : undefined;
}

export interface BasicCredentials {
  userId: string;
  deviceId: number;
  secret: string;
}

/** Parses an Authorization header; undefined when it is missing or malformed in any way [AUT-6]. */
export function parseBasicAuth(header: string | undefined): BasicCredentials | undefined {
  if (header === undefined) return undefined;
  const match = /^([A-Za-z]+) +([^ ]+) *$/.exec(header);
  // [AUT-6] The scheme name in any letter case.
  if (!match || match[1]!.toLowerCase() !== 'basic' || !BASE64.test(match[2]!)) return undefined;
  const decoded = Buffer.from(match[2]!, 'base64').toString('utf8');
  // [AUT-6] Split at the first colon into user part and secret, and the user part at its last dot.
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const userPart = decoded.slice(0, colon);
  const secret = decoded.slice(colon + 1);
  const dot = userPart.lastIndexOf('.');
  if (dot < 0) return undefined;
  const userId = userPart.slice(0, dot);
  const deviceId = parseDeviceId(userPart.slice(dot + 1));
  if (!USER_ID.test(userId) || deviceId === undefined || !SECRET.test(secret)) return undefined;
  return { userId, deviceId, secret };
}

/**
 * [SEC-9] A failed lookup still runs one hash and one comparison against this digest, so that an unknown user or
 * device costs about the same as a wrong secret (the store lookup itself may still differ slightly).
 */
const DUMMY_DIGEST = hashSecret('tickwire-dummy-secret-for-unknown-devices-000000');

/** Authentication times as the other processes of a service see them (the session bus, cluster/bus.ts). */
export interface SharedLastSeen {
  deviceSeen(device: DeviceAddress, at: number): void;
  devicesSeen(userId: string): Promise<Map<number, number>>;
}

/**
 * The time of each device's most recent successful authentication, for `lastSeenAt` in device lists [IDN-23].
 * Kept in memory: the Store interface has no member for it, so it is lost on restart (then omitted, as for a device
 * that has not authenticated since the restart). In a service of several processes the times are shared through
 * `shared`, so that a list on one process shows an authentication on another [DPL-1].
 */
export class LastSeenBook {
  private readonly seen = new Map<string, number>();
  constructor(private readonly shared?: SharedLastSeen) {}
  touch(device: DeviceAddress, at: number): void {
    this.seen.set(key(device), at);
    this.shared?.deviceSeen(device, at);
  }
  get(device: DeviceAddress): number | undefined {
    return this.seen.get(key(device));
  }
  /** deviceId → latest authentication time, for every device of the user known here or to the other processes. */
  async ofUser(userId: string, deviceIds: readonly number[]): Promise<Map<number, number>> {
    const out = this.shared ? await this.shared.devicesSeen(userId) : new Map<number, number>();
    for (const deviceId of deviceIds) {
      const local = this.seen.get(key({ userId, deviceId }));
      if (local !== undefined && local > (out.get(deviceId) ?? -Infinity)) out.set(deviceId, local);
    }
    return out;
  }
  forget(device: DeviceAddress): void {
    this.seen.delete(key(device));
  }
}

function key(device: DeviceAddress): string {
  return `${device.userId}.${device.deviceId}`;
}

export interface Authenticated {
  address: DeviceAddress;
  device: DeviceRecord;
}

/** The one 401 of [AUT-7]: the same code and message whichever part of the credentials was wrong. */
export function unauthorized(): ProtocolError {
  return new ProtocolError('UNAUTHORIZED', 'valid device credentials are required');
}

/**
 * Authenticates a request from its Authorization header. Resolves the device the credentials name, or throws the
 * 401 of [AUT-7]. The identity of the acting device comes only from here [AUT-8].
 */
export async function authenticate(header: string | undefined, store: Store, now: number, lastSeen: LastSeenBook): Promise<Authenticated> {
  const credentials = parseBasicAuth(header);
  if (!credentials) throw unauthorized();
  const address = { userId: credentials.userId, deviceId: credentials.deviceId };
  // A deleted device is absent from the store, so its credentials fail here [IDN-27].
  const device = await store.getDevice(address);
  const presented = hashSecret(credentials.secret);
  const matches = digestsEqual(presented, device?.secretHash ?? DUMMY_DIGEST);
  if (!device || !matches) throw unauthorized();
  // [IDN-23] lastSeenAt is the time of the most recent successful authentication.
  lastSeen.touch(address, now);
  return { address, device };
}
