// The reference server as a child process, for runs without --url and for the tests: started exactly as an operator
// would (`node bin/tickwire.js serve --port 0 --data-dir TMP`), never imported (test/walls.test.ts). The same idea
// as conformance/server-process.ts, kept separate because load/ may not import conformance/. The bare ws relay of
// `--target baseline` starts the same way (`node bin/tickwire.js load --baseline-server --port 0`).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TICKWIRE_BIN = fileURLToPath(new URL('../bin/tickwire.js', import.meta.url));
/** "tickwire serving on URL (pid N)" or, from the relay, "bare ws relay serving on URL (pid N)". */
const READY_LINE = /serving on (\S+) \(pid (\d+)\)\r?\n/;
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

/**
 * What a load run needs of the reference server: registrations effectively unlimited (every session is a fresh
 * user registered from one source address, IDN-8). Everything else stays at its default.
 */
export const LOAD_SERVER_ARGS = ['--registrations-per-minute', '1000000'];

export class ServerStartError extends Error {
  readonly code = 'SERVER_START';
  constructor(message: string) {
    super(message);
    this.name = 'ServerStartError';
  }
}

export class LoadServer {
  url = '';
  /** The server's own pid (from its ready line), for memory and CPU sampling. */
  pid = 0;
  private child: ChildProcess | undefined;
  private stderrTail = '';

  private constructor(
    private readonly dataDir: string | undefined,
    private readonly name: string,
  ) {}

  static async start(extraArgs: string[] = []): Promise<LoadServer> {
    const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-load-'));
    return LoadServer.launch(new LoadServer(dataDir, 'reference server'), [TICKWIRE_BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...LOAD_SERVER_ARGS, ...extraArgs]);
  }

  /** The bare ws relay of load/baseline-server.ts, for `--target baseline` runs without --url. */
  static async startBaseline(): Promise<LoadServer> {
    return LoadServer.launch(new LoadServer(undefined, 'bare ws relay'), [TICKWIRE_BIN, 'load', '--baseline-server', '--port', '0']);
  }

  private static async launch(server: LoadServer, args: string[]): Promise<LoadServer> {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    server.child = child;
    const orphanGuard = () => child.kill('SIGKILL');
    process.once('exit', orphanGuard);
    child.once('exit', () => process.off('exit', orphanGuard));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      server.stderrTail = (server.stderrTail + chunk).slice(-4000);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new ServerStartError(`no ready line within ${START_TIMEOUT_MS} ms\n${server.stderrTail}`)), START_TIMEOUT_MS);
        child.stdout!.setEncoding('utf8');
        child.stdout!.on('data', (chunk: string) => {
          out += chunk;
          const match = READY_LINE.exec(out);
          if (match) {
            clearTimeout(timer);
            server.url = match[1]!;
            server.pid = Number(match[2]);
            resolve();
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new ServerStartError(`${server.name} exited (${code ?? signal}) before it was ready\n${server.stderrTail}`));
        });
      });
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  get logTail(): string {
    return this.stderrTail;
  }

  /** SIGTERM, SIGKILL after a grace period; removes the data directory. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
    if (this.dataDir !== undefined) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
