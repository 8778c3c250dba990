// A redis-server of a test's own: Debian's /usr/bin/redis-server on a free loopback port, its data in a temporary
// directory, append-only with fsync on every write (the setting that keeps the spec's promises), no RDB snapshots.
// Stopped by PID: SIGTERM for a clean stop, SIGKILL for a crash; restart() starts it again on the same port and
// directory, so that a test sees what survived. pause()/resume() (SIGSTOP/SIGCONT) make it hang without closing sockets.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER_BIN = process.env['TICKWIRE_REDIS_SERVER'] ?? 'redis-server';

export interface RedisServerOptions {
  appendfsync?: 'always' | 'everysec' | 'no';
  /** Reuse a directory (and its data) instead of a fresh temporary one. */
  dir?: string;
  /**
   * A node of a Redis Cluster (redis-cluster.ts): cluster-enabled, its nodes.conf in its directory, its cluster bus on
   * a second free loopback port (the default, port + 10000, may be out of range or taken).
   */
  clusterNode?: boolean;
}

/** A free TCP port on 127.0.0.1 (never 6379: the kernel picks from its ephemeral range). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class RedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisServerOptions,
    private readonly ownsDir: boolean,
    /** The cluster bus port of a cluster node. */
    readonly busPort?: number,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tickwire-redis-'));
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      let busPort: number | undefined;
      while (options.clusterNode && (busPort === undefined || busPort === port)) busPort = await freePort();
      const server = new RedisServer(port, dir, options, options.dir === undefined, busPort);
      try {
        await server.launch();
        return server;
      } catch (error) {
        if (attempt >= 4) throw error; // the port was taken between freePort() and the bind: try another one
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private launch(): Promise<void> {
    const args = [
      '--bind', '127.0.0.1',
      '--port', String(this.port),
      '--dir', this.dir,
      '--appendonly', 'yes',
      '--appendfsync', this.options.appendfsync ?? 'always',
      '--save', '',
      '--daemonize', 'no',
      '--protected-mode', 'yes',
      '--loglevel', 'notice',
      '--logfile', '',
      ...(this.busPort === undefined ? [] : ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(this.busPort)]),
    ];
    const child = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    this.exited = new Promise((resolve) => child.once('exit', () => {
      running.delete(child);
      resolve();
    }));
    return new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => fail(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(error);
      };
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (/Ready to accept connections/.test(output)) {
          clearTimeout(timer);
          child.stdout?.removeAllListeners('data');
          child.stdout?.resume();
          child.stderr?.resume();
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.once('error', fail);
      child.once('exit', (code) => fail(new Error(`redis-server exited with ${code}:\n${output}`)));
    });
  }

  /** Starts redis-server again on the same port and directory (after stop() or kill()). */
  async restart(): Promise<void> {
    await this.exited;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.launch();
        return;
      } catch (error) {
        // The old socket may linger for a moment after a SIGKILL.
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** SIGKILL: a crash. Everything not fsynced is gone. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: a clean shutdown. */
  async stop(): Promise<void> {
    this.signal('SIGTERM');
    await this.exited;
  }

  pause(): void {
    this.signal('SIGSTOP');
  }

  resume(): void {
    this.signal('SIGCONT');
  }

  /** Stops the server (if running) and removes its directory if it made it. */
  async dispose(): Promise<void> {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  private signal(signal: NodeJS.Signals): void {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, signal);
  }
}
