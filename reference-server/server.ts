// Starting and stopping the reference server: checks the configuration, opens the store, serves the HTTP API and the
// WebSocket gateway on one listener (http, or https with --tls-cert/--tls-key), registers the core metrics, and shuts
// down gracefully: stop accepting, close the sessions with SERVER_RESTART [KAL-13], let in-flight requests finish,
// close the store.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { configProblems, type ServerConfig } from './config.ts';
import type { HubEvents, Logger, ServerContext } from './context.ts';
import { createHttpApi } from './http/api.ts';
import { clientErrorListener } from './http/client-error.ts';
import { createLogger } from './logger.ts';
import { LATENCY_BUCKETS, MetricsRegistry } from './metrics.ts';
import { attachGateway } from './session/gateway.ts';
import type { SessionBus } from './cluster/bus.ts';
import { openLogStore } from './store/log/log-store.ts';
import { openRedisStore } from './store/redis/redis-store.ts';
import type { Store } from './store/store.ts';
import { AuthThrottle, DEFAULT_FREE_AUTH_FAILURES } from './auth-throttle.ts';
import { RedisLimits } from './cluster/redis-limits.ts';
import { createHttpRateLimits } from './http/rate-limit.ts';

export interface StartOptions {
  /** A store to serve instead of opening the log store in `config.dataDir`. The server closes it on close(). */
  store?: Store;
  log?: Logger;
  /** The clock (milliseconds since the epoch); Date.now by default. */
  now?: () => number;
  /**
   * The session bus shared with the other processes of the service (cluster/bus.ts). By default a RedisBus when the
   * configuration names Redis, else a LocalBus. The server starts it, and closes it on close().
   */
  bus?: SessionBus;
}

export interface RunningServer {
  /** `http://host:port`, or `https://…` with TLS; the port is the one actually bound (port 0 = ephemeral). */
  url: string;
  port: number;
  ctx: ServerContext;
  /** Graceful shutdown; idempotent. */
  close(): Promise<void>;
}

/** The configuration cannot be served; `problems` lists every one found, not only the first. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`invalid server configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

function registerCoreMetrics(metrics: MetricsRegistry) {
  const fsyncSeconds = metrics.histogram('tickwire_store_fsync_duration_seconds', 'Time of one group-commit fsync of the store log.', LATENCY_BUCKETS);
  const batchRecords = metrics.histogram('tickwire_store_fsync_batch_records', 'Records made durable by one fsync (group commit batch size).', BATCH_BUCKETS);
  const syncedBytes = metrics.counter('tickwire_store_fsync_bytes_total', 'Bytes made durable by fsync.');
  metrics.gauge('tickwire_process_resident_memory_bytes', 'Resident set size of the server process.', () => process.memoryUsage.rss());
  metrics.gauge('tickwire_process_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);
  // Tells the processes of one service apart (tickwire serve --workers N answers from N pids).
  metrics.gauge('tickwire_process_pid', 'Operating-system id of the process that served this request.', () => process.pid);
  return (info: { durationMs: number; records: number; bytes: number }) => {
    fsyncSeconds.observe(info.durationMs / 1000);
    batchRecords.observe(info.records);
    syncedBytes.inc(undefined, info.bytes);
  };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolveListen, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolveListen(server.address() as AddressInfo);
    });
  });
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** The session bus of the configuration: Redis pub/sub when the store is on Redis, else in this process only. */
async function openBus(config: ServerConfig, log: Logger, now: () => number): Promise<SessionBus> {
  const redisUrl = config.redisUrl;
  if (redisUrl === undefined) {
    const { LocalBus } = await import('./cluster/local-bus.ts');
    return new LocalBus(now);
  }
  const { RedisBus } = await import('./cluster/redis-bus.ts');
  return new RedisBus(redisUrl, { now, log, ...(config.leaseTtlMs === undefined ? {} : { leaseTtlMs: config.leaseTtlMs }) });
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const problems = configProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  const log = options.log ?? createLogger(config.logLevel);
  const metrics = new MetricsRegistry();
  const onSync = registerCoreMetrics(metrics);
  // TLS material is read before the store opens, so a bad path fails without touching the data directory.
  const tls = config.tls && { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  // The store gets the test mutant too: two of them (ack-before-durable, prekey-handed-out-twice) live in it.
  // With --redis the state lives in Redis (store/redis/) and dataDir is not used.
  const store =
    options.store ??
    (config.redisUrl !== undefined
      ? await openRedisStore(config.redisUrl, { log })
      : await openLogStore(resolve(config.dataDir), { onSync, ...(config.testMutant ? { mutant: config.testMutant } : {}) }));

  const now = options.now ?? Date.now;
  const freeAuthFailures = config.authFailuresPerMinute ?? DEFAULT_FREE_AUTH_FAILURES;
  // [DPL-8] With Redis, the limits of section 6.5 and the SEC-8 delay are counted for the whole service.
  let sharedLimits: RedisLimits | undefined;
  try {
    sharedLimits = config.redisUrl === undefined ? undefined : await RedisLimits.open(config.redisUrl, { log, now });
  } catch (error) {
    if (!options.store) await store.close().catch(() => undefined);
    throw error;
  }
  const authThrottle = sharedLimits ? sharedLimits.authFailures(freeAuthFailures) : new AuthThrottle(freeAuthFailures, now);
  const rateLimits = createHttpRateLimits(config, now, sharedLimits && ((name, limit) => sharedLimits.limiter(name, limit)));
  const ctx: ServerContext = { config, store, metrics, log, now, authThrottle, rateLimits, hub: new EventEmitter<HubEvents>() };
  let closing = false;
  // The session bus (cluster/bus.ts) is opened before the HTTP API, which shares device authentication times through
  // it [IDN-23]; the gateway starts it.
  const bus = options.bus ?? (await openBus(config, log, now));
  const api = createHttpApi(ctx, { closing: () => closing, lastSeenShared: bus });
  // Node's own check of the Host header answers a bare 400; the router and the gateway make the same check and
  // answer with the protocol's error body [ERR-1].
  const server: Server = tls ? createHttpsServer({ ...tls, requireHostHeader: false }, api.listener) : createHttpServer({ requireHostHeader: false }, api.listener);
  // [ERR-1] [TRN-9] Requests node:http's parser refuses still get the protocol's error body (and 405 for a method it
  // does not know), not Node's bare status line.
  server.on('clientError', clientErrorListener(api.router, log));
  // Slow-loris protection: a client gets this long to send its headers and its whole request.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;

  metrics.gauge('tickwire_store_accounts', 'Accounts in the store.', () => store.stats().accounts);
  metrics.gauge('tickwire_store_devices', 'Devices in the store.', () => store.stats().devices);
  metrics.gauge('tickwire_store_queued_items', 'Items waiting in device queues.', () => store.stats().queuedItems);
  metrics.gauge('tickwire_store_max_queue_depth', 'Items in the longest device queue.', () => store.stats().maxQueueDepth);
  metrics.gauge('tickwire_store_cached_bodies', 'Message bodies held in memory (the rest are read back from the log).', () => store.stats().cachedItems);

  // The gateway takes the 'upgrade' events of /v1/ws and registers its own metrics (tickwire_ws_sessions and more).
  // A successful hello is an authentication too: it sets the device's lastSeenAt in device lists [IDN-23].
  const gateway = attachGateway(server, ctx, { onAuthenticated: (device, at) => api.deps.lastSeen.touch(device, at), bus });

  // [DLV-32] [DLV-33] Items older than retentionSec may go; sweep once a minute (and once at start).
  const expired = metrics.counter('tickwire_messages_expired_total', 'Queue items removed by retention expiry.');
  const sweep = () => {
    if (closing) return;
    const cutoff = ctx.now() - config.limits.retentionSec * 1000;
    store.expire(cutoff).then(
      (count) => {
        if (count > 0) {
          expired.inc(undefined, count);
          log.info('store.expired', { count });
        }
      },
      (error: unknown) => log.warn('store.expire_failed', { error }),
    );
  };
  const sweeper = setInterval(sweep, 60_000);
  sweeper.unref();
  sweep();

  let address: AddressInfo;
  try {
    // [DPL-1] Sessions are served only once this process is part of the service.
    await gateway.ready;
    address = await listen(server, config.port, config.host);
  } catch (error) {
    await gateway.shutdown().catch(() => undefined);
    await store.close().catch(() => undefined);
    await sharedLimits?.close();
    throw error;
  }
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  const url = `${tls ? 'https' : 'http'}://${host}:${address.port}`;
  log.info('server.listening', { url, dataDir: options.store || config.redisUrl !== undefined ? undefined : resolve(config.dataDir), tls: Boolean(tls) });
  if (config.testMutant) log.warn('server.test_mutant', { mutant: config.testMutant, note: 'deliberately broken, for testing the conformance suite only' });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      // /healthz answers 503 from here on, so that balancers drain us while in-flight work finishes.
      closing = true;
      clearInterval(sweeper);
      log.info('server.closing', {});
      const stopped = new Promise<void>((done) => server.close(() => done()));
      server.closeIdleConnections();
      // [KAL-13] Every session gets SERVER_RESTART and close code 1012; the gateway stops taking new ones first.
      await gateway.shutdown().catch((error: unknown) => log.error('server.gateway_shutdown_failed', { error }));
      await Promise.race([stopped, delay(config.shutdownGraceMs)]);
      server.closeAllConnections();
      await Promise.race([stopped, delay(1000)]);
      await store.close().catch((error: unknown) => log.error('server.store_close_failed', { error }));
      await sharedLimits?.close();
      log.info('server.closed', {});
    })();
    return closed;
  };

  return { url, port: address.port, ctx, close };
}
