// Server configuration: every limit of spec/limits.json with its reference default, overridable by a flag
// (`--window 128`) or an environment variable (`TICKWIRE_WINDOW=128`), checked against the spec's allowed range and
// the relations of [LIM-3] before the server starts.
import { limits as limitSpecs, type LimitName } from '../spec/index.ts';
import { isMutantName, type MutantName } from './mutants.ts';
import { MIN_LEASE_TTL_MS } from './cluster/constants.ts';
import { redisUrlProblem } from './store/redis/url.ts';

export type LimitValues = Record<LimitName, number>;

export interface TlsConfig {
  certFile: string;
  keyFile: string;
}

export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  limits: LimitValues;
  tls?: TlsConfig;
  logLevel: LogLevel;
  /** Milliseconds a graceful shutdown waits for in-flight work before closing anyway. */
  shutdownGraceMs: number;
  /** Bytes buffered on a socket beyond which ephemeral pushes are dropped and the session is closed [KAL]. */
  maxBufferedBytes: number;
  /**
   * `GET /v1/usernames/{username}` requests per requesting device per 60 s [SEC-6]. Not a limit of spec/limits.json
   * (the spec leaves the rule to the server); high enough for a client resolving its contacts, low enough to make
   * mass resolution of usernames slow. Absent means DEFAULT_USERNAME_LOOKUPS_PER_MINUTE.
   */
  usernameLookupsPerMinute?: number;
  /**
   * Failed authentications per source address per 60 s answered without delay [SEC-8]; each further one is answered
   * a little later (reference-server/auth-throttle.ts). Absent means DEFAULT_FREE_AUTH_FAILURES.
   */
  authFailuresPerMinute?: number;
  /**
   * FOR TESTING THE CONFORMANCE SUITE ONLY: plants the bug of this mutant (reference-server/mutants.ts). Never set in
   * a real deployment; absent means the real server.
   */
  testMutant?: MutantName;
  /**
   * Keep all state in the Redis at this URL (`redis://host:port`, `rediss://` for TLS, or a Redis Cluster by its seed
   * nodes: `redis+cluster://host1:port1,host2:port2`, store/redis/url.ts) instead of the embedded log in `dataDir`, so
   * that several server processes and hosts share it (store/redis/, README "Redis store"). Absent means the embedded
   * log.
   */
  redisUrl?: string;
  /**
   * `tickwire serve --workers N`: N worker processes behind the one port (cluster/primary.ts), sharing their state
   * through Redis, so N above 1 needs redisUrl. Absent means one process without a primary.
   */
  workers?: number;
  /**
   * How long a process of a service on Redis stays in it without renewing its lease: bounds how long the sessions of
   * a crashed process still count (cluster/constants.ts, DEFAULT_LEASE_TTL_MS) [DPL-7]. Absent means the default.
   */
  leaseTtlMs?: number;
}

/** Mutants planted in the embedded log store: they do not exist in the Redis store. */
const LOG_STORE_MUTANTS: readonly string[] = ['ack-before-durable', 'prekey-handed-out-twice', 'duplicate-enqueued', 'delivered-receipt-not-durable'];

export const DEFAULT_USERNAME_LOOKUPS_PER_MINUTE = 120;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** `maxFrameBytes` → `max-frame-bytes` (the flag), `TICKWIRE_MAX_FRAME_BYTES` (the variable). */
export function limitFlag(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
export function limitEnv(name: string): string {
  return `TICKWIRE_${limitFlag(name).replace(/-/g, '_').toUpperCase()}`;
}

export function defaultLimitValues(): LimitValues {
  const out = {} as LimitValues;
  for (const spec of limitSpecs) out[spec.name] = spec.default;
  return out;
}

/** Returns the problems with a set of limit values: out of the spec's range, or breaking a relation of [LIM-3]. */
export function checkLimits(values: LimitValues): string[] {
  const problems: string[] = [];
  for (const spec of limitSpecs) {
    const value = values[spec.name];
    if (!Number.isSafeInteger(value)) problems.push(`${spec.name} must be an integer (got ${String(value)})`);
    else if (value < spec.minimum) problems.push(`${spec.name} must be at least ${spec.minimum} (got ${value})`);
    else if (spec.maximum !== undefined && value > spec.maximum) problems.push(`${spec.name} must be at most ${spec.maximum} (got ${value})`);
  }
  const v = values;
  const relation = (ok: boolean, text: string) => {
    if (!ok) problems.push(text);
  };
  relation(v.maxRedeliveryBackoffMs >= v.ackTimeoutMs, 'maxRedeliveryBackoffMs must be >= ackTimeoutMs');
  relation(v.maxPresenceSubscriptions >= v.maxPresenceBatch, 'maxPresenceSubscriptions must be >= maxPresenceBatch');
  relation(v.maxStoredPreKeys >= v.prekeyBatchMax, 'maxStoredPreKeys must be >= prekeyBatchMax');
  relation(v.prekeyLowWater <= v.maxStoredPreKeys, 'prekeyLowWater must be <= maxStoredPreKeys');
  relation(
    v.maxFrameBytes >= 4 * Math.ceil(v.maxEnvelopeBytes / 3) + 4096,
    'maxFrameBytes must be >= 4 * ceil(maxEnvelopeBytes / 3) + 4096',
  );
  relation(v.maxHttpBodyBytes >= 4096 + 128 * v.prekeyBatchMax, 'maxHttpBodyBytes must be >= 4096 + 128 * prekeyBatchMax');
  return problems;
}

export function defaultConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return {
    host: '127.0.0.1',
    port: 8080,
    dataDir: './data',
    limits: defaultLimitValues(),
    logLevel: 'info',
    shutdownGraceMs: 5000,
    maxBufferedBytes: 4 * 262144,
    usernameLookupsPerMinute: DEFAULT_USERNAME_LOOKUPS_PER_MINUTE,
    ...overrides,
  };
}

/** Every problem with a configuration: the limits of spec/limits.json [LIM-2] [LIM-3] and the server's own options. */
export function configProblems(config: ServerConfig): string[] {
  const problems = checkLimits(config.limits);
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) problems.push(`port must be an integer in 0..65535 (got ${config.port})`);
  if (config.host.trim() === '') problems.push('host must not be empty');
  if (config.dataDir.trim() === '') problems.push('dataDir must not be empty');
  if (config.tls && (!config.tls.certFile || !config.tls.keyFile)) problems.push('TLS needs both a certificate file and a key file');
  if (!Number.isSafeInteger(config.shutdownGraceMs) || config.shutdownGraceMs < 0) problems.push('shutdownGraceMs must be a non-negative integer');
  const lookups = config.usernameLookupsPerMinute;
  if (lookups !== undefined && (!Number.isSafeInteger(lookups) || lookups < 1)) problems.push('usernameLookupsPerMinute must be a positive integer');
  const freeFailures = config.authFailuresPerMinute;
  if (freeFailures !== undefined && (!Number.isSafeInteger(freeFailures) || freeFailures < 0)) problems.push('authFailuresPerMinute must be a non-negative integer');
  if (config.testMutant !== undefined && !isMutantName(config.testMutant)) problems.push(`testMutant '${String(config.testMutant)}' is not a mutant of reference-server/mutants.ts`);
  if (config.workers !== undefined && (!Number.isSafeInteger(config.workers) || config.workers < 1)) problems.push(`workers must be a positive integer (got ${config.workers})`);
  // The workers share their data through Redis: the embedded log belongs to one process.
  if (config.workers !== undefined && config.workers > 1 && config.redisUrl === undefined) problems.push('--workers above 1 needs --redis: worker processes share their state through Redis');
  if (config.leaseTtlMs !== undefined && (!Number.isSafeInteger(config.leaseTtlMs) || config.leaseTtlMs < MIN_LEASE_TTL_MS)) {
    problems.push(`leaseTtlMs must be an integer of at least ${MIN_LEASE_TTL_MS} (got ${config.leaseTtlMs})`);
  }
  if (config.redisUrl !== undefined) {
    const urlProblem = redisUrlProblem(config.redisUrl);
    if (urlProblem !== undefined) problems.push(urlProblem);
    if (config.testMutant !== undefined && LOG_STORE_MUTANTS.includes(config.testMutant)) problems.push(`testMutant '${config.testMutant}' lives in the embedded log store and cannot be combined with redisUrl`);
  }
  return problems;
}
