// Connections to Redis that fail fast. Every command either gets its answer or rejects within about
// commandTimeoutMs: nothing is queued while Redis is unreachable (no offline queue), a command sent on a connection that
// drops is failed at once (no retries, never re-sent after a reconnect, where it could apply twice), and a Redis that
// hangs (paused, swapping, a stalled disk) is cut off by the command timeout. The client reconnects by itself, every
// RECONNECT_MAX_MS at worst, so the store recovers without help once Redis is back.
//
// The URL names one Redis or a Redis Cluster (url.ts). For a cluster, every client is an ioredis Cluster with the same
// fail-fast options on each of its node connections, and the cluster-level retries that could apply a command twice
// are off: a command whose connection closed is failed (retryDelayOnFailover 0), as is one that meets CLUSTERDOWN
// (retryDelayOnClusterDown 0). MOVED and ASK redirections (the command was not run) are followed. Subscriptions use
// a plain connection to one node of the cluster (createSubscriber below).
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors.ts';
import type { LuaScript } from './scripts.ts';
import { isClusterUrl, parseClusterUrl, type SeedNode } from './url.ts';

/** The default time a command may take before it fails with StoreUnavailableError. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
/** The default time to wait for Redis when the store opens. */
export const DEFAULT_OPEN_TIMEOUT_MS = 5000;
/** Reconnection backoff: 50 ms, 100 ms, ... at most this much between attempts. */
export const RECONNECT_MAX_MS = 500;
/** How long a cluster client waits for a node's CLUSTER SLOTS (at start, after MOVED) before it asks another one. */
export const CLUSTER_SLOTS_TIMEOUT_MS = 2000;

/** One Redis or a Redis Cluster: the commands, scripts and pipelines the store uses exist on both. */
export type RedisClient = Redis | Cluster;

export interface ConnectionOptions {
  commandTimeoutMs: number;
  /** Called with each connection error (they repeat while Redis is down; the caller may rate-limit its logging). */
  onError: (error: Error) => void;
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

function failFastOptions(name: string, options: ConnectionOptions): RedisOptions {
  return {
    connectionName: name,
    // RESP2: the replies of scripts and commands have the shapes the parsers in redis-store.ts expect.
    protocol: 2,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(options.commandTimeoutMs, 500),
    retryStrategy: (times) => Math.min(times * 50, RECONNECT_MAX_MS),
    lazyConnect: true,
    // A connection that is given up while still connecting is dropped at once (ioredis waits 2 s by default).
    disconnectTimeout: 100,
  };
}

/**
 * A client for `url` with these per-connection options: a Redis, or for a cluster URL a Cluster whose node connections
 * get `options` (enableOfflineQueue, lazyConnect and retryStrategy become the cluster's own settings).
 */
export function createClient(url: string, options: RedisOptions): RedisClient {
  if (!isClusterUrl(url)) return new Redis(url, options);
  const target = parseClusterUrl(url);
  const { retryStrategy, enableOfflineQueue: _queue, lazyConnect, ...nodeOptions } = options;
  const clusterOptions: ClusterOptions = {
    redisOptions: {
      ...nodeOptions,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls ? { tls: {} } : {}),
    },
    // Always on for a cluster, whatever `options` say: without it ioredis refuses ("Connection is closed.", not
    // sent) every command for a node whose connection is still being made, and node connections are made lazily, so
    // the first commands of a fresh process, or after the topology changed, failed for no reason (seen as hellos
    // answered TEMPORARILY_UNAVAILABLE right after a restart). A command handed to a node connection still fails
    // within commandTimeout; only while no node of the cluster is known does it wait for one.
    enableOfflineQueue: true,
    lazyConnect: lazyConnect ?? false,
    clusterRetryStrategy: (times) => retryStrategy?.(times) ?? null,
    // A command is never sent twice: not after its connection closed (it may have run), not after CLUSTERDOWN.
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    slotsRefreshTimeout: CLUSTER_SLOTS_TIMEOUT_MS,
    enableReadyCheck: true,
  };
  return new Cluster(target.nodes, clusterOptions);
}

/** Listens for a client's errors: a Cluster reports the trouble of one node as 'node error'. */
function onErrors(client: RedisClient, onError: (error: Error) => void): void {
  client.on('error', onError);
  if (isCluster(client)) client.on('node error', onError);
}

export function connect(url: string, name: string, options: ConnectionOptions): RedisClient {
  const client = createClient(url, failFastOptions(name, options));
  onErrors(client, options.onError);
  return client;
}

/**
 * A connection for SUBSCRIBE. For one Redis, a connection to it. For a cluster, a plain connection to one node: a
 * classic PUBLISH reaches the subscribers of every node of a Redis Cluster, so any node will do. Each failed attempt to
 * connect moves on to the next node (the seeds, then the nodes `peers` knows), so a node that is gone does not leave
 * the process deaf. Unlike ioredis's own cluster subscriber (which moves to another node without a word), it emits
 * 'ready' after every reconnection, which the event buses need: they subscribe again and re-announce what they may
 * have missed in between.
 */
export function createSubscriber(url: string, options: RedisOptions, peers?: RedisClient): Redis {
  if (!isClusterUrl(url)) return new Redis(url, options);
  const target = parseClusterUrl(url);
  const first = target.nodes[0]!;
  let next = 0;
  const candidates = (): SeedNode[] => {
    const known = peers && isCluster(peers) ? peers.nodes('all').map((node) => ({ host: String(node.options.host), port: Number(node.options.port) })) : [];
    const seen = new Set<string>();
    return [...target.nodes, ...known].filter((node) => !seen.has(`${node.host}:${node.port}`) && seen.add(`${node.host}:${node.port}`));
  };
  const redis: Redis = new Redis({
    ...options,
    host: first.host,
    port: first.port,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.tls ? { tls: {} } : {}),
    retryStrategy: (times) => {
      // The connector reads host and port from these options at every attempt.
      const nodes = candidates();
      const node = nodes[++next % nodes.length]!;
      redis.options.host = node.host;
      redis.options.port = node.port;
      return options.retryStrategy ? options.retryStrategy(times) : Math.min(times * 50, RECONNECT_MAX_MS);
    },
  });
  return redis;
}

/** The fail-fast subscriber connection of the store's event bus (see createSubscriber). */
export function connectSubscriber(url: string, name: string, options: ConnectionOptions, peers?: RedisClient): Redis {
  const redis = createSubscriber(url, failFastOptions(name, options), peers);
  redis.on('error', options.onError);
  return redis;
}

/** The master nodes of a cluster (connected on demand), or the one Redis. */
export function masters(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/** Connects and waits until Redis answers (it may be loading its data set), or rejects after `timeoutMs`. */
export async function open(redis: RedisClient, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`Redis did not become ready within ${timeoutMs} ms`)), timeoutMs);
  });
  const ready = new Promise<void>((resolve) => {
    if (redis.status === 'ready') resolve();
    else redis.once('ready', () => resolve());
  });
  try {
    redis.connect().catch(() => undefined); // failures are retried by retryStrategy; the timeout decides
    await Promise.race([ready, timeout]);
  } catch (error) {
    redis.disconnect();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Closes a connection politely (QUIT), or at once when Redis does not answer. */
export async function close(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  try {
    if (redis.status === 'ready') await redis.quit();
  } catch {
    // Redis is unreachable; disconnecting is all that is left.
  } finally {
    redis.disconnect();
  }
}

/** Whatever failed between us and Redis, the caller hears StoreUnavailableError: nothing was promised. */
export function unavailable(error: unknown): StoreUnavailableError {
  if (error instanceof StoreUnavailableError) return error;
  return new StoreUnavailableError(`Redis: ${error instanceof Error ? error.message : String(error)}`);
}

type ScriptCommand = (numberOfKeys: number, ...args: string[]) => Promise<unknown>;

const commandName = (script: LuaScript) => `tw_${script.name.replace(/-/g, '_')}`;

/**
 * Registers the scripts on a connection. ioredis then runs each with EVALSHA, and with EVAL (which loads it) the first
 * time on every new socket, so a restarted Redis with an empty script cache costs no extra round trip and never
 * reorders commands.
 */
export function defineScripts(redis: RedisClient, scripts: readonly LuaScript[]): void {
  for (const script of scripts) redis.defineCommand(commandName(script), { lua: script.lua });
}

/** Sends a script at once (commands on one connection run in the order they were sent) and resolves its reply. */
export function runScript(redis: RedisClient, script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
  // defineCommand adds the method at run time; ioredis's types cannot know it.
  const command = (redis as unknown as Record<string, ScriptCommand>)[commandName(script)];
  if (!command) return Promise.reject(new Error(`script ${script.name} is not defined on this connection`));
  return command.call(redis, keys.length, ...keys, ...args.map(String));
}
