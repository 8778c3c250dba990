// Connections to Redis that fail fast. Every command either gets its answer or rejects within about
// commandTimeoutMs: nothing is queued while Redis is unreachable (no offline queue), a command sent on a connection that
// drops is failed at once (no retries, never re-sent after a reconnect, where it could apply twice), and a Redis that
// hangs (paused, swapping, a stalled disk) is cut off by the command timeout. The client reconnects by itself, every
// RECONNECT_MAX_MS at worst, so the store recovers without help once Redis is back.
import { Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors.ts';
import type { LuaScript } from './scripts.ts';

/** The default time a command may take before it fails with StoreUnavailableError. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
/** The default time to wait for Redis when the store opens. */
export const DEFAULT_OPEN_TIMEOUT_MS = 5000;
/** Reconnection backoff: 50 ms, 100 ms, ... at most this much between attempts. */
export const RECONNECT_MAX_MS = 500;

export interface ConnectionOptions {
  commandTimeoutMs: number;
  /** Called with each connection error (they repeat while Redis is down; the caller may rate-limit its logging). */
  onError: (error: Error) => void;
}

export function connect(url: string, name: string, options: ConnectionOptions): Redis {
  const redisOptions: RedisOptions = {
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
  const redis = new Redis(url, redisOptions);
  redis.on('error', options.onError);
  return redis;
}

/** Connects and waits until Redis answers (it may be loading its data set), or rejects after `timeoutMs`. */
export async function open(redis: Redis, timeoutMs: number): Promise<void> {
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
export async function close(redis: Redis): Promise<void> {
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
export function defineScripts(redis: Redis, scripts: readonly LuaScript[]): void {
  for (const script of scripts) redis.defineCommand(commandName(script), { lua: script.lua });
}

/** Sends a script at once (commands on one connection run in the order they were sent) and resolves its reply. */
export function runScript(redis: Redis, script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
  // defineCommand adds the method at run time; ioredis's types cannot know it.
  const command = (redis as unknown as Record<string, ScriptCommand>)[commandName(script)];
  if (!command) return Promise.reject(new Error(`script ${script.name} is not defined on this connection`));
  return command.call(redis, keys.length, ...keys, ...args.map(String));
}
