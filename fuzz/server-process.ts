// The reference server as a child process, for `tickwire fuzz` without --url, the tests and `npm run fuzz:long`:
// `node bin/tickwire.js serve --port 0 --data-dir TMP`, exactly as an operator starts it (the fuzzer never imports
// the server's modules, test/walls.test.ts), with its pid for the memory oracle. It can be restarted on a fresh data
// directory, which is how a crash is reproduced and shrunk.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TICKWIRE_BIN = fileURLToPath(new URL('../bin/tickwire.js', import.meta.url));
/** The ready line; its pid is the server's own (the child may be a wrapper). */
const READY_LINE = /tickwire serving on (\S+) \(pid (\d+)\)\r?\n/;
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

/**
 * What the fuzzer changes on the built-in server, each inside the spec's allowed range: set-up registers about
 * 2 × lanes + 7 users at once, more than the default 10 a minute allows; and the fuzzer's many wrong credentials
 * would otherwise be answered up to a second late (SEC-8), which would only slow the campaign down.
 */
export const FUZZ_SERVER_ARGS = ['--registrations-per-minute', '60', '--auth-failures-per-minute', '1000000', '--log-level', 'error'];

export class ServerStartError extends Error {
  readonly code = 'SERVER_START';
  constructor(message: string) {
    super(message);
    this.name = 'ServerStartError';
  }
}

export class ReferenceServer {
  private child: ChildProcess | undefined;
  private dataDir: string | undefined;
  private stderrTail = '';
  url = '';
  pid = 0;

  private constructor(private readonly extraArgs: string[]) {}

  /** Starts the reference server on a free port and a fresh temporary data directory. */
  static async start(extraArgs: string[] = []): Promise<ReferenceServer> {
    const server = new ReferenceServer(extraArgs);
    try {
      await server.spawn();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** Whether the process is still running (a crash ends it). */
  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get logTail(): string {
    return this.stderrTail;
  }

  private spawn(): Promise<void> {
    this.dataDir = mkdtempSync(join(tmpdir(), 'tickwire-fuzz-'));
    const args = [TICKWIRE_BIN, 'serve', '--port', '0', '--data-dir', this.dataDir, ...withoutOverridden(FUZZ_SERVER_ARGS, this.extraArgs), ...this.extraArgs];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const orphanGuard = () => child.kill('SIGKILL');
    process.once('exit', orphanGuard);
    child.once('exit', () => process.off('exit', orphanGuard));
    this.stderrTail = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-8000);
    });
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new ServerStartError(`reference server printed no ready line within ${START_TIMEOUT_MS} ms\n${this.stderrTail}`)), START_TIMEOUT_MS);
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => {
        out += chunk;
        const match = READY_LINE.exec(out);
        if (match) {
          clearTimeout(timer);
          this.url = match[1]!;
          this.pid = Number(match[2]);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new ServerStartError(`reference server exited (${code ?? signal}) before it was ready\n${this.stderrTail}`));
      });
    });
  }

  /** Stops the server and starts a new one on a fresh data directory (a new URL and pid). */
  async restart(): Promise<void> {
    await this.stop();
    await this.spawn();
  }

  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and removes its data directory. */
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
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
    this.dataDir = undefined;
  }
}

/** `base` (flag, value pairs) without the flags that `overrides` sets: an extra argument replaces a built-in one. */
function withoutOverridden(base: readonly string[], overrides: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < base.length; i += 2) if (!overrides.includes(base[i]!)) out.push(base[i]!, base[i + 1]!);
  return out;
}
