// Assembles the HTTP API: the routes of spec/routes.json plus `/metrics`, one endpoint module per concern, and the
// HTTP side's in-memory state. The server passes `listener` to node:http (or node:https) as its request handler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { routes } from '../../spec/index.ts';
import type { ServerContext } from '../context.ts';
import { accountEndpoints } from './accounts.ts';
import type { ApiDeps } from './api-deps.ts';
import { LastSeenBook, type SharedLastSeen } from './auth.ts';
import { deviceEndpoints } from './devices.ts';
import { METRICS_ROUTE, operationalEndpoints } from './health.ts';
import { preKeyEndpoints } from './prekeys.ts';
import { Router, type RouteWithParams } from './router.ts';

export interface HttpApiOptions {
  /** True once a graceful shutdown has begun: /healthz answers 503 and store failures become 503. */
  closing: () => boolean;
  /** Shares device authentication times with the other processes of the service [IDN-23] (the session bus). */
  lastSeenShared?: SharedLastSeen;
}

export interface HttpApi {
  listener: (req: IncomingMessage, res: ServerResponse) => void;
  router: Router;
  deps: ApiDeps;
}

export function createHttpApi(ctx: ServerContext, options: HttpApiOptions): HttpApi {
  const deps: ApiDeps = {
    ctx,
    lastSeen: new LastSeenBook(options.lastSeenShared),
    rateLimits: ctx.rateLimits,
    closing: options.closing,
  };
  const endpoints = [...operationalEndpoints(deps), ...accountEndpoints(deps), ...deviceEndpoints(deps), ...preKeyEndpoints(deps)];
  const allRoutes: RouteWithParams[] = [...(routes as readonly RouteWithParams[]), METRICS_ROUTE];
  const router = new Router(allRoutes, endpoints, {
    store: ctx.store,
    log: ctx.log,
    metrics: ctx.metrics,
    now: ctx.now,
    lastSeen: deps.lastSeen,
    authThrottle: ctx.authThrottle,
    maxHttpBodyBytes: () => ctx.config.limits.maxHttpBodyBytes,
    closing: options.closing,
  });
  return { listener: router.listener, router, deps };
}
