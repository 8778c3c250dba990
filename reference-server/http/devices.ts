// Devices: link codes and linking (section 2.3), listing (section 2.4) and deletion (section 2.5).
import type { DeviceInfo, DeviceListResponse, LinkCodeResponse, LinkDeviceRequest, LinkDeviceResponse } from '../../spec/index.ts';
import { ProtocolError } from '../errors.ts';
import { enforce } from './rate-limit.ts';
import { authOf, newDevice, type ApiDeps } from './api-deps.ts';
import { checkPreKeyBatch } from './body.ts';
import { generateLinkCode, hashLinkCode } from './link-codes.ts';
import type { Endpoint } from './router.ts';

export function deviceEndpoints(deps: ApiDeps): Endpoint[] {
  const { ctx } = deps;
  const invalidCode = () => new ProtocolError('INVALID_LINK_CODE', 'the link code is unknown, expired, used or invalidated');

  return [
    {
      route: 'createLinkCode',
      async handle(request) {
        const { address } = authOf(request);
        // [IDN-15] CSPRNG, ≥ 128 bits; only the hash is stored.
        const code = generateLinkCode();
        const codeHash = hashLinkCode(code);
        // [IDN-14] expiresAt is the issue time plus linkCodeTtlSec × 1000.
        const expiresAt = request.now + ctx.config.limits.linkCodeTtlSec * 1000;
        // [IDN-14] The code is bound to the authenticated user; [IDN-20] the store also records the device that
        // obtained it, and invalidates the code when that device is deleted.
        await ctx.store.createLinkCode(address.userId, codeHash, expiresAt, address.deviceId, request.now);
        const answer: LinkCodeResponse = { code, expiresAt };
        return { status: 201, body: answer };
      },
    },
    {
      route: 'linkDevice',
      checkBody(request) {
        const body = request.body as LinkDeviceRequest;
        // [IDN-9] The same batch rules as at registration.
        checkPreKeyBatch(body.device.oneTimePreKeys ?? [], ctx.config.limits.prekeyBatchMax, 'device.oneTimePreKeys');
      },
      async rateLimit(request) {
        // [IDN-8] Shared with POST /v1/accounts: the link code is a bearer token, and this slows guessing.
        await enforce(deps.rateLimits.registrations, request.sourceAddress, 'registrations from this address');
      },
      async handle(request) {
        const body = request.body as LinkDeviceRequest;
        const codeHash = hashLinkCode(body.linkCode);
        // [IDN-16] [IDN-18] The store consumes the code and creates the device in one atomic, durable step; a failed
        // attempt leaves the code unconsumed [IDN-19]. [IDN-17] Unknown, expired (now ≥ expiresAt), consumed or
        // invalidated codes are refused before [IDN-19] the device cap is checked.
        const linked = await ctx.store.linkDevice(codeHash, newDevice(body.device), request.now, ctx.config.limits.maxDevicesPerUser);
        if (linked === 'invalid-code') throw invalidCode();
        if (linked === 'too-many-devices') {
          throw new ProtocolError('TOO_MANY_DEVICES', `the user already has maxDevicesPerUser (${ctx.config.limits.maxDevicesPerUser}) devices`);
        }
        ctx.log.info('device.linked', { userId: linked.userId, deviceId: linked.deviceId });
        const account = await ctx.store.getAccount(linked.userId);
        const answer: LinkDeviceResponse = { userId: linked.userId, deviceId: linked.deviceId, username: account!.username };
        return { status: 201, body: answer };
      },
    },
    {
      route: 'listDevices',
      async handle(request) {
        const { address } = authOf(request);
        // [IDN-22] Every current device of the authenticated user, and only those, by ascending deviceId.
        const account = await ctx.store.getAccount(address.userId);
        if (!account) throw new ProtocolError('UNAUTHORIZED', 'valid device credentials are required');
        const ids = [...account.deviceIds].sort((a, b) => a - b);
        const [records, seen] = await Promise.all([
          Promise.all(ids.map((deviceId) => ctx.store.getDevice({ userId: address.userId, deviceId }))),
          deps.lastSeen.ofUser(address.userId, ids),
        ]);
        const devices: DeviceInfo[] = [];
        for (const record of records) {
          if (!record) continue; // deleted between the two reads
          const info: DeviceInfo = { deviceId: record.deviceId, name: record.name, createdAt: record.createdAt };
          // [IDN-23] lastSeenAt only when the device has authenticated since it was created.
          const lastSeenAt = seen.get(record.deviceId);
          if (lastSeenAt !== undefined) info.lastSeenAt = lastSeenAt;
          devices.push(info);
        }
        if (devices.length === 0) throw new ProtocolError('UNAUTHORIZED', 'valid device credentials are required');
        const answer: DeviceListResponse = { devices: devices as DeviceListResponse['devices'] };
        return { status: 200, body: answer };
      },
    },
    {
      route: 'deleteDevice',
      async handle(request) {
        const { address } = authOf(request);
        // [AUT-8] Only a device of the authenticated user can be named: the userId comes from the credentials.
        const target = { userId: address.userId, deviceId: request.params['deviceId'] as number };
        // [IDN-27] [IDN-28] The store revokes the credentials, discards queue and prekeys, durably, before resolving.
        const outcome = await ctx.store.removeDevice(target);
        // [IDN-25] before [IDN-26].
        if (outcome === 'unknown-device') throw new ProtocolError('UNKNOWN_DEVICE', 'no such device of this user');
        if (outcome === 'last-device') throw new ProtocolError('LAST_DEVICE', 'a user keeps at least one device');
        // [IDN-20] The store invalidated the link codes it obtained.
        deps.lastSeen.forget(target);
        // [IDN-29] The WebSocket side closes the device's session with DEVICE_REMOVED.
        ctx.hub.emit('device-removed', target);
        ctx.log.info('device.removed', { userId: target.userId, deviceId: target.deviceId, by: address.deviceId });
        // [IDN-24]
        return { status: 204 };
      },
    },
  ];
}
