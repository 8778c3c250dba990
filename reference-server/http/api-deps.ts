// What the HTTP endpoints share: the server context plus the HTTP side's own in-memory state (rate-limit windows,
// last-seen times). One object, built once by createHttpApi, passed to every endpoint module.
import type { PreKey, SignedPreKey } from '../../spec/index.ts';
import type { ServerContext } from '../context.ts';
import type { NewDevice } from '../store/store.ts';
import { hashSecret } from '../credentials.ts';
import type { Authenticated, LastSeenBook } from './auth.ts';
import type { HttpRateLimits } from './rate-limit.ts';
import type { ApiRequest } from './router.ts';

export interface ApiDeps {
  ctx: ServerContext;
  lastSeen: LastSeenBook;
  rateLimits: HttpRateLimits;
  /** True once a graceful shutdown has begun. */
  closing: () => boolean;
}

/** The authenticated device of a `device` route; the router guarantees it is set [AUT-8]. */
export function authOf(request: ApiRequest): Authenticated {
  if (!request.auth) throw new TypeError(`route ${request.route.name} ran without authentication`);
  return request.auth;
}

/** A DeviceRegistration as the schema defines it (common.json#deviceRegistration). */
export interface DeviceRegistrationBody {
  name: string;
  secret: string;
  registrationId: number;
  identityKey: string;
  signedPreKey: SignedPreKey;
  oneTimePreKeys?: PreKey[];
}

/**
 * The store's form of a new device: the secret replaced by its digest [AUT-2], and only the members the protocol
 * defines copied, so that unknown members are ignored rather than stored [ERR-15] [IDN-12].
 */
export function newDevice(registration: DeviceRegistrationBody): NewDevice {
  return {
    name: registration.name,
    secretHash: hashSecret(registration.secret),
    registrationId: registration.registrationId,
    identityKey: registration.identityKey,
    signedPreKey: signedPreKeyOf(registration.signedPreKey),
    oneTimePreKeys: (registration.oneTimePreKeys ?? []).map(preKeyOf),
  };
}

export function signedPreKeyOf(key: SignedPreKey): SignedPreKey {
  return { keyId: key.keyId, publicKey: key.publicKey, signature: key.signature };
}

export function preKeyOf(key: PreKey): PreKey {
  return { keyId: key.keyId, publicKey: key.publicKey };
}
