// The server under test as a process. Without --url the suite starts the reference server itself, exactly as an
// operator would (`node bin/tickwire.js serve --port 0 --data-dir TMP`), never importing its modules (the wall of
// test/walls.test.ts), and can then restart it on the same port and data directory. With --restart-cmd the suite
// restarts an external server by running that shell command and polling --ready-url until it answers 200.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Faulter, RestartKind, Restarter } from './context.ts';

const TICKWIRE_BIN = fileURLToPath(new URL('../bin/tickwire.js', import.meta.url));
/** The reference server's ready line; its pid is the server's own (the child may be a wrapper, as under tap). */
const READY_LINE = /tickwire serving on (\S+) \(pid (\d+)\)\r?\n/;
/** How long the reference server gets to print its ready line. */
const START_TIMEOUT_MS = 30_000;
/** How long it gets to exit after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;

/**
 * Limits the suite sets on the built-in reference server: registrations are not rate-limited in practice (every case
 * registers fresh users), and the timers that cases wait for are at their allowed minimums so that redelivery and
 * hello-timeout cases fit the default case timeout, and the idle-timeout case (KAL-5) takes about 31 s instead of two
 * minutes. The capacities that cases fill are small: a queue of maxQueueItems (QUEUE_FULL, MSG-9, RCP-9) at the
 * allowed minimum of 1000 fills in about a thousand sends, and maxPresenceSubscriptions 20 (TOO_MANY_SUBSCRIPTIONS,
 * PRS-3) needs 21 users; maxPresenceBatch 10 keeps maxPresenceSubscriptions >= maxPresenceBatch (LIM-3). Every value is
 * inside the spec's allowed range. A graceful restart (KAL-13) waits at most a second for connections to finish
 * instead of five.
 */
export const BUILT_IN_SERVER_ARGS = [
  '--registrations-per-minute', '100000',
  '--ack-timeout-ms', '1000',
  '--hello-timeout-ms', '2000',
  '--idle-timeout-ms', '30000',
  '--max-queue-items', '1000',
  '--max-presence-batch', '10',
  '--max-presence-subscriptions', '20',
  '--shutdown-grace-ms', '1000',
];

export class ServerStartError extends Error {
  readonly code = 'SERVER_START';
  constructor(message: string) {
    super(message);
    this.name = 'ServerStartError';
  }
}

export class ReferenceServer implements Restarter, Faulter {
  readonly kinds: ReadonlySet<RestartKind> = new Set<RestartKind>(['crash', 'graceful']);
  private child: ChildProcess | undefined;
  private stderrTail = '';
  private serverPid: number | undefined;
  url = '';
  private constructor(
    private readonly dataDir: string,
    private readonly extraArgs: string[],
  ) {}

  /** Starts the reference server on a free port with a fresh temporary data directory. */
  static async start(extraArgs: string[] = []): Promise<ReferenceServer> {
    const server = new ReferenceServer(mkdtempSync(join(tmpdir(), 'tickwire-conformance-')), extraArgs);
    try {
      server.url = await server.spawn('0');
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  private spawn(port: string): Promise<string> {
    const args = [TICKWIRE_BIN, 'serve', '--port', port, '--data-dir', this.dataDir, '--log-level', 'warn', ...withoutOverridden(BUILT_IN_SERVER_ARGS, this.extraArgs), ...this.extraArgs];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // If the suite itself dies (an uncaught error), do not leave the server running.
    const orphanGuard = () => child.kill('SIGKILL');
    process.once('exit', orphanGuard);
    child.once('exit', () => process.off('exit', orphanGuard));
    this.stderrTail = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
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
          this.serverPid = Number(match[2]);
          resolve(match[1]!);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new ServerStartError(`reference server exited (${code ?? signal}) before it was ready\n${this.stderrTail}`));
      });
    });
  }

  /**
   * Restarts on the same port and data directory: a crash is SIGKILL, with no chance to flush anything (the
   * durability promises of PROTOCOL.md hold even then); a graceful restart is SIGTERM, waiting for the exit.
   */
  async restart(kind: RestartKind): Promise<void> {
    if (kind === 'crash') await this.killChild();
    else await this.stopChild();
    const port = new URL(this.url).port;
    const url = await this.spawn(port);
    if (url !== this.url) throw new ServerStartError(`restarted server serves ${url}, not ${this.url}`);
  }

  private async killChild(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  private async stopChild(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /**
   * A storage fault from outside, without touching the server's code: prlimit(1) cuts the running server's file size
   * limit (RLIMIT_FSIZE) to one byte, so every write to its log fails with EFBIG (Node ignores SIGXFSZ), until `heal`
   * lifts the limit again. Needs util-linux's prlimit.
   */
  async inject(): Promise<void> {
    await this.prlimit('1:unlimited');
  }

  async heal(): Promise<void> {
    await this.prlimit('unlimited:unlimited');
  }

  private async prlimit(fsize: string): Promise<void> {
    const pid = this.serverPid;
    if (pid === undefined || !this.child) throw new ServerStartError('the reference server is not running');
    await runCommand(`prlimit --pid ${pid} --fsize=${fsize}`, 'prlimit');
  }

  /** Whether this machine has prlimit(1), which `inject` and `heal` need. */
  static async canFault(): Promise<boolean> {
    return runCommand('prlimit --version >/dev/null 2>&1', 'prlimit').then(() => true, () => false);
  }

  /** Stops the server and removes its data directory. */
  async stop(): Promise<void> {
    await this.stopChild();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The last lines the server wrote to stderr (for diagnostics when it misbehaves). */
  get logTail(): string {
    return this.stderrTail;
  }
}

/**
 * Restarts an external server with a shell command per kind (`--restart-cmd` for a crash, `--graceful-restart-cmd`
 * for a deliberate restart), then polls each ready URL (one per process or host of the service) until it answers 200.
 */
export class CommandRestarter implements Restarter {
  readonly kinds: ReadonlySet<RestartKind>;
  private readonly readyUrls: readonly string[];
  constructor(
    private readonly commands: Partial<Record<RestartKind, string>>,
    readyUrl: string | readonly string[],
    private readonly timeoutMs = 60_000,
  ) {
    this.kinds = new Set((Object.keys(commands) as RestartKind[]).filter((k) => commands[k] !== undefined));
    this.readyUrls = typeof readyUrl === 'string' ? [readyUrl] : readyUrl;
    if (this.readyUrls.length === 0) throw new RangeError('CommandRestarter needs a ready URL');
  }

  async restart(kind: RestartKind): Promise<void> {
    const command = this.commands[kind];
    if (command === undefined) throw new RangeError(`no command for a ${kind} restart`);
    await runCommand(command, kind === 'crash' ? '--restart-cmd' : '--graceful-restart-cmd');
    const deadline = performance.now() + this.timeoutMs;
    for (const readyUrl of this.readyUrls) {
      while (!(await answers200(readyUrl))) {
        if (performance.now() >= deadline) throw new ServerStartError(`${readyUrl} did not answer 200 within ${this.timeoutMs} ms after --restart-cmd`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

async function answers200(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false; // not up yet
  }
}

/** Makes storage fail and heal with the two shell commands `--fault-cmd` and `--heal-cmd`. */
export class CommandFaulter implements Faulter {
  constructor(
    private readonly faultCmd: string,
    private readonly healCmd: string,
  ) {}

  inject(): Promise<void> {
    return runCommand(this.faultCmd, '--fault-cmd');
  }

  heal(): Promise<void> {
    return runCommand(this.healCmd, '--heal-cmd');
  }
}

/** Runs a shell command; rejects unless it exits 0. `what` names it in the error. */
function runCommand(command: string, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, { shell: true, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new ServerStartError(`${what} exited with ${code}`))));
  });
}

/** `base` (flag, value pairs) without the flags that `overrides` sets: an extra argument replaces a built-in one. */
function withoutOverridden(base: readonly string[], overrides: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < base.length; i += 2) if (!overrides.includes(base[i]!)) out.push(base[i]!, base[i + 1]!);
  return out;
}
