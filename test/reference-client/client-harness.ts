// Helpers for the messaging library's tests: a real reference server that can be stopped and started again on the
// same port and data directory, clients registered in temporary state directories, and waiting for events.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, defaultLimitValues, type LimitValues } from '../../reference-server/config.ts';
import { startServer, type RunningServer } from '../../reference-server/server.ts';
import type { ClientEvents } from '../../reference-client/client-api.ts';
import { TickwireClient, type TickwireClientOptions } from '../../reference-client/client.ts';
import type { Credentials } from '../../reference-client/wire/connection.ts';
import type { Teardown } from '../reference-server/helpers.ts';

export interface RestartableServer {
  url: string;
  port: number;
  dataDir: string;
  running: RunningServer | undefined;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** A reference server on 127.0.0.1 that keeps its port and data directory across stop/start. */
export async function startRestartableServer(t: Teardown, limits: Partial<LimitValues> = {}): Promise<RestartableServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-client-srv-'));
  let port = 0;
  const config = () =>
    defaultConfig({
      port,
      host: '127.0.0.1',
      dataDir,
      logLevel: 'silent',
      shutdownGraceMs: 500,
      limits: { ...defaultLimitValues(), registrationsPerMinute: 10_000, ...limits },
    });
  const server: RestartableServer = {
    url: '',
    port: 0,
    dataDir,
    running: undefined,
    async stop() {
      await server.running?.close();
      server.running = undefined;
    },
    async start() {
      server.running = await startServer(config());
      port = server.running.port;
      server.port = port;
      server.url = server.running.url;
    },
  };
  await server.start();
  t.teardown(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return server;
}

let counter = 0;
const runTag = Math.random().toString(36).slice(2, 8);

export function uniqueName(prefix: string): string {
  return `${prefix}_${runTag}_${++counter}`.slice(0, 32);
}

export function tempStateDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-client-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Options with fast reconnects, for tests. */
export function clientOptions(server: { url: string }, stateDir: string, extra: Partial<TickwireClientOptions> = {}): TickwireClientOptions {
  return { url: server.url, stateDir, minReconnectDelayMs: 50, maxReconnectDelayMs: 400, serverRestartDelayMs: 100, ...extra };
}

/** Collects every event a client emits, and waits for the ones a test needs. */
export class Recorder {
  readonly events: Array<{ name: keyof ClientEvents; args: unknown[] }> = [];
  private waiters: Array<() => void> = [];

  constructor(readonly client: TickwireClient) {
    for (const name of ['connected', 'disconnected', 'caughtUp', 'message', 'receipt', 'presence', 'typing', 'warning'] as const) {
      // Listener typing across the event map: each listener just records its arguments.
      (client.on as (event: string, listener: (...args: unknown[]) => void) => unknown)(name, (...args: unknown[]) => {
        this.events.push({ name, args });
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      });
    }
  }

  of<K extends keyof ClientEvents>(name: K): ClientEvents[K][] {
    return this.events.filter((e) => e.name === name).map((e) => e.args as ClientEvents[K]);
  }

  /** Waits until `predicate` holds over the recorded events. */
  async until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => e.name))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  texts(): string[] {
    return this.of('message').map(([m]) => Buffer.from(m.plaintext).toString('utf8'));
  }
}

/** Registers a device in a fresh state directory; closes it at teardown. */
export async function newClient(
  t: Teardown,
  server: { url: string },
  prefix: string,
  extra: Partial<TickwireClientOptions> = {},
): Promise<{ client: TickwireClient; rec: Recorder; stateDir: string; options: TickwireClientOptions }> {
  const stateDir = tempStateDir(t);
  const options = clientOptions(server, stateDir, extra);
  const client = await TickwireClient.register(options, uniqueName(prefix), `${prefix} device`);
  t.teardown(() => client.close());
  return { client, rec: new Recorder(client), stateDir, options };
}

/** The credentials in a state directory (tests only: a test may look inside the directory it made). */
export function credentialsIn(stateDir: string): Credentials {
  const device = JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as Credentials;
  return { userId: device.userId, deviceId: device.deviceId, secret: device.secret };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
