// Operational endpoints outside the versioned API: `GET /healthz` (liveness and readiness, [TRN-2]) and
// `GET /metrics` (Prometheus text format 0.0.4; not in spec/routes.json). Also the answer to a plain GET /v1/ws that
// is not a WebSocket upgrade [TRN-18]: real upgrades never reach the router, the gateway takes them.
import type { HealthResponse, RouteSpec } from '../../spec/index.ts';
import { ProtocolError } from '../errors.ts';
import type { ApiDeps } from './api-deps.ts';
import type { Endpoint } from './router.ts';

/** The route of `/metrics`, added to the routes of spec/routes.json so that the router treats it like the others. */
export const METRICS_ROUTE: RouteSpec = {
  name: 'metrics',
  method: 'GET',
  path: '/metrics',
  auth: 'none',
  success: { status: 200, schema: null },
  errors: [],
};

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function operationalEndpoints(deps: ApiDeps): Endpoint[] {
  return [
    {
      route: 'health',
      async handle() {
        // [TRN-2] 200 whenever the server can serve requests: the store is open and no shutdown has begun. While
        // shutting down, 503 so that load balancers stop sending traffic before the listener closes.
        if (deps.closing()) {
          throw new ProtocolError('TEMPORARILY_UNAVAILABLE', 'the server is shutting down', { retryAfterMs: 1000 });
        }
        const answer: HealthResponse = { status: 'ok' };
        return { status: 200, body: answer };
      },
    },
    {
      route: 'metrics',
      async handle() {
        return { status: 200, text: { contentType: PROMETHEUS_CONTENT_TYPE, content: deps.ctx.metrics.render() } };
      },
    },
    {
      route: 'webSocket',
      async handle() {
        // [TRN-18] A request to /v1/ws that is not a valid RFC 6455 upgrade request.
        throw new ProtocolError('BAD_REQUEST', 'GET /v1/ws must be a WebSocket upgrade request offering tickwire.v1');
      },
    },
  ];
}
