// Accounts (section 2.2) and username lookup (section 2.6).
import type { RegisterRequest, RegisterResponse, UserLookupResponse } from '../../spec/index.ts';
import { ProtocolError } from '../errors.ts';
import { enforce } from './rate-limit.ts';
import { authOf, newDevice, type ApiDeps } from './api-deps.ts';
import { checkPreKeyBatch } from './body.ts';
import type { Endpoint } from './router.ts';

export function accountEndpoints(deps: ApiDeps): Endpoint[] {
  const { ctx } = deps;
  return [
    {
      route: 'register',
      checkBody(request) {
        const body = request.body as RegisterRequest;
        // [IDN-9] At most prekeyBatchMax initial one-time prekeys, no keyId twice.
        checkPreKeyBatch(body.device.oneTimePreKeys ?? [], ctx.config.limits.prekeyBatchMax, 'device.oneTimePreKeys');
      },
      async rateLimit(request) {
        // [IDN-8] registrationsPerMinute per source address, shared with POST /v1/devices.
        await enforce(deps.rateLimits.registrations, request.sourceAddress, 'registrations from this address');
      },
      async handle(request) {
        const body = request.body as RegisterRequest;
        // [IDN-13] The store resolves only once the user and device are durable; [IDN-7] it refuses a taken name
        // atomically, so of concurrent registrations of one username exactly one succeeds.
        const created = await ctx.store.createAccount(body.username, newDevice(body.device), request.now);
        if (!created) throw new ProtocolError('USERNAME_TAKEN', 'that username is taken');
        ctx.log.info('account.created', { userId: created.userId, deviceId: created.deviceId });
        // [IDN-6]
        const answer: RegisterResponse = { userId: created.userId, username: body.username, deviceId: created.deviceId };
        return { status: 201, body: answer };
      },
    },
    {
      route: 'lookupUser',
      async rateLimit(request) {
        // [SEC-6] Per requesting device, against mass resolution of usernames into userIds.
        const { address } = authOf(request);
        await enforce(deps.rateLimits.usernameLookups, `${address.userId}.${address.deviceId}`, 'username lookups');
      },
      async handle(request) {
        const username = request.params['username'] as string;
        // [IDN-31] Usernames are compared byte for byte [IDN-5].
        const account = await ctx.store.findUserByUsername(username);
        if (!account) throw new ProtocolError('UNKNOWN_USER', 'no user has that username');
        const answer: UserLookupResponse = { userId: account.userId, username: account.username };
        return { status: 200, body: answer };
      },
    },
  ];
}
