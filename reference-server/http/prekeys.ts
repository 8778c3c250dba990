// The prekey directory (section 3): signed prekey, one-time prekeys, the count, and bundle fetches with the
// one-time prekey consumption of [PKY-15] and the low-water signal of [PKY-20].
import type {
  OneTimePreKeysRequest,
  OneTimePreKeysResponse,
  PreKeyBundleDevice,
  PreKeyBundleResponse,
  PreKeyCountResponse,
  SignedPreKeyRequest,
} from '../../spec/index.ts';
import { ProtocolError } from '../errors.ts';
import { enforce } from './rate-limit.ts';
import type { BundleEntry, DeviceAddress } from '../store/store.ts';
import { authOf, preKeyOf, signedPreKeyOf, type ApiDeps } from './api-deps.ts';
import { checkPreKeyBatch } from './body.ts';
import type { Endpoint } from './router.ts';

/** One bundle entry as the wire shows it: never the secret digest or anything else the record holds [AUT-4]. */
export function bundleDevice(entry: BundleEntry): PreKeyBundleDevice {
  const out: PreKeyBundleDevice = {
    deviceId: entry.device.deviceId,
    registrationId: entry.device.registrationId,
    // [PKY-1] The identity key given at registration or linking.
    identityKey: entry.device.identityKey,
    signedPreKey: signedPreKeyOf(entry.device.signedPreKey),
  };
  // [PKY-16] Omitted, not null, when none is left.
  if (entry.oneTimePreKey) out.oneTimePreKey = preKeyOf(entry.oneTimePreKey);
  return out;
}

export function preKeyEndpoints(deps: ApiDeps): Endpoint[] {
  const { ctx } = deps;
  const limits = () => ctx.config.limits;

  return [
    {
      route: 'putSignedPreKey',
      async handle(request) {
        const { address } = authOf(request);
        const body = request.body as SignedPreKeyRequest;
        // [PKY-2] Replace, durably, then 204; [PKY-3] whatever the keyId.
        await ctx.store.setSignedPreKey(address, signedPreKeyOf(body.signedPreKey));
        return { status: 204 };
      },
    },
    {
      route: 'uploadOneTimePreKeys',
      checkBody(request) {
        const body = request.body as OneTimePreKeysRequest;
        // [PKY-5] At most prekeyBatchMax entries, no keyId twice in the batch.
        checkPreKeyBatch(body.preKeys, limits().prekeyBatchMax, 'preKeys');
      },
      async handle(request) {
        const { address } = authOf(request);
        const body = request.body as OneTimePreKeysRequest;
        // [PKY-8] All or nothing, durable before the answer; [PKY-6] duplicates checked before [PKY-7] the cap.
        const result = await ctx.store.addOneTimePreKeys(address, body.preKeys.map(preKeyOf), limits().maxStoredPreKeys);
        if (typeof result === 'number') {
          const answer: OneTimePreKeysResponse = { count: result };
          return { status: 200, body: answer };
        }
        if (result === 'too-many') {
          throw new ProtocolError('TOO_MANY_PREKEYS', `the upload would store more than maxStoredPreKeys (${limits().maxStoredPreKeys})`);
        }
        // [PKY-6] [ERR-5] details { keyIds }: the clashing ones, ascending (the store sorts them).
        throw new ProtocolError('DUPLICATE_PREKEY_ID', 'a keyId of the upload is already stored unconsumed', { details: { keyIds: result.duplicateKeyIds } });
      },
    },
    {
      route: 'getPreKeyCount',
      async handle(request) {
        const { address, device } = authOf(request);
        // [PKY-10]
        const answer: PreKeyCountResponse = {
          oneTimePreKeys: await ctx.store.countOneTimePreKeys(address),
          lowWater: limits().prekeyLowWater,
          signedPreKeyId: device.signedPreKey.keyId,
        };
        return { status: 200, body: answer };
      },
    },
    {
      route: 'getPreKeyBundle',
      async rateLimit(request) {
        // [PKY-17] prekeyFetchesPerMinute per requesting device; every request reaching this check counts, whatever
        // its outcome, except those refused here. Checked before anything is consumed.
        const { address } = authOf(request);
        await enforce(deps.rateLimits.prekeyFetches, `${address.userId}.${address.deviceId}`, 'prekey bundle fetches');
      },
      async handle(request) {
        const { address } = authOf(request);
        const userId = request.params['userId'] as string;
        const deviceId = request.params['deviceId'] as number | undefined;
        const entries = await takeBundles(deps, address, userId, deviceId);
        // [PKY-11] Ascending deviceId.
        entries.sort((a, b) => a.device.deviceId - b.device.deviceId);
        announceLowWater(deps, entries);
        const answer: PreKeyBundleResponse = { userId, devices: entries.map(bundleDevice) };
        return { status: 200, body: answer };
      },
    },
  ];
}

/**
 * Takes the bundles a fetch asks for. [PKY-15] The store removes each handed-out one-time prekey atomically with the
 * read and durably before resolving, and never restores it.
 */
async function takeBundles(deps: ApiDeps, requester: DeviceAddress, userId: string, deviceId: number | undefined): Promise<BundleEntry[]> {
  const { store } = deps.ctx;
  const unknownUser = () => new ProtocolError('UNKNOWN_USER', 'no such user');
  if (deviceId !== undefined || userId !== requester.userId) {
    // [PKY-13] One entry for the named device; [PKY-11] or one per current device.
    const taken = await store.takeBundles(userId, deviceId);
    // [PKY-14] UNKNOWN_USER first, then UNKNOWN_DEVICE.
    if (taken === 'unknown-user') throw unknownUser();
    if (taken === 'unknown-device') throw new ProtocolError('UNKNOWN_DEVICE', 'no such device of this user');
    return taken;
  }
  // [PKY-12] The requester's own user without a deviceId: every sibling, never the requesting device, whose own
  // one-time prekeys this fetch must not consume.
  const taken = await store.takeBundles(userId, undefined, requester.deviceId);
  if (taken === 'unknown-user' || taken === 'unknown-device') throw unknownUser();
  return taken;
}

/** [PKY-20] A fetch that consumed a one-time prekey and left fewer than prekeyLowWater (0 disables it). */
function announceLowWater(deps: ApiDeps, entries: BundleEntry[]): void {
  const lowWater = deps.ctx.config.limits.prekeyLowWater;
  if (lowWater <= 0) return;
  for (const entry of entries) {
    if (entry.oneTimePreKey && entry.remaining < lowWater) {
      deps.ctx.hub.emit('prekeys-low', { userId: entry.device.userId, deviceId: entry.device.deviceId }, entry.remaining);
    }
  }
}
