// Child processes of the benchmark: the Tickwire server (`node bin/tickwire.js serve`, a black box started as an
// operator would), the bare `ws` baseline server and the client workers. Every child is registered in one set and
// stopped by its PID when the benchmark ends, also on error.
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TICKWIRE_BIN = join(PROJECT_ROOT, 'bin/tickwire.js');
const BASELINE_SERVER = join(PROJECT_ROOT, 'bench/baseline-ws-server.ts');
/** How long a child gets after SIGTERM before it is killed. */
const STOP_GRACE_MS = 15_000;
/** How long a server gets to print its ready line. */
const READY_TIMEOUT_MS = 120_000;

export class BenchError extends Error {
  constructor(readonly code: 'SERVER_START' | 'SERVER_EXIT' | 'WORKER' | 'TIMEOUT' | 'SCENARIO', message: string) {
    super(message);
    this.name = 'BenchError';
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Every child started by the benchmark; stopAll() runs in the finally block of the main program. */
export class Children {
  private readonly live = new Map<number, { name: string; child: ChildProcess; exited: Promise<Exit> }>();
  private readonly tempDirs: string[] = [];

  track(name: string, child: ChildProcess): Promise<Exit> {
    if (child.pid === undefined) throw new BenchError('SERVER_START', `${name} did not start`);
    const pid = child.pid;
    const exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.live.delete(pid);
        resolve({ code, signal });
      });
    });
    this.live.set(pid, { name, child, exited });
    return exited;
  }

  /** SIGTERM (or the given signal), then SIGKILL after the grace period; resolves when the process has exited. */
  async stop(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = STOP_GRACE_MS): Promise<Exit | undefined> {
    const entry = this.live.get(pid);
    if (!entry) return undefined;
    process.kill(pid, signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.live.has(pid)) process.kill(pid, 'SIGKILL');
        resolve();
      }, graceMs);
    });
    const exit = await Promise.race([entry.exited, killed.then(() => entry.exited)]);
    clearTimeout(timer);
    return exit;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live.keys()].map((pid) => this.stop(pid).catch(() => undefined)));
    for (const dir of this.tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.tempDirs.push(dir);
    return dir;
  }

  removeTempDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
    const i = this.tempDirs.indexOf(dir);
    if (i >= 0) this.tempDirs.splice(i, 1);
  }
}

export interface ServerProcess {
  name: string;
  pid: number;
  url: string;
  port: number;
  dataDir: string;
  /** Milliseconds from spawn to the "serving on" line on stdout. */
  readyLineMs: number;
  /** Milliseconds from spawn to the first GET /healthz answered 200 (baseline: same as readyLineMs). */
  healthyMs: number;
  exited: Promise<Exit>;
  /** Last lines of the child's stderr, for error reports. */
  stderrTail(): string;
}

const READY_LINE = /(?:tickwire|baseline ws|bare ws relay) serving on (https?:\/\/[^\s]+)/;

function waitForReadyLine(child: ChildProcess, name: string, exited: Promise<Exit>, tail: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new BenchError('SERVER_START', `${name} printed no ready line within ${READY_TIMEOUT_MS} ms\n${tail()}`)), READY_TIMEOUT_MS);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffer += chunk;
      const match = READY_LINE.exec(buffer);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
        buffer = '';
      } else if (buffer.length > 65536) buffer = buffer.slice(-4096);
    });
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(new BenchError('SERVER_EXIT', `${name} exited (code ${exit.code}, signal ${exit.signal}) before it was ready\n${tail()}`));
    });
  });
}

async function waitHealthy(url: string, deadline: number): Promise<void> {
  for (;;) {
    try {
      const response = await fetch(new URL('/healthz', url), { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not yet
    }
    if (performance.now() > deadline) throw new BenchError('SERVER_START', `GET ${url}/healthz never answered 200`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function tailKeeper(stream: NodeJS.ReadableStream, log: WriteStream | undefined): () => string {
  let tail = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    log?.write(chunk);
    tail = (tail + chunk).slice(-4000);
  });
  return () => tail;
}

export interface TickwireServerOptions {
  name: string;
  dataDir: string;
  /** Limit flags without the leading dashes, e.g. { window: 1000 }. */
  flags?: Record<string, number | string>;
  /** File that receives the server's stderr (its log). */
  logFile?: string;
  /** Let the bench force a full GC with SIGUSR2 before sampling memory (see lib/gc-on-signal.mjs). */
  gcOnSignal?: boolean;
}

const GC_ON_SIGNAL = join(PROJECT_ROOT, 'bench/lib/gc-on-signal.mjs');
const gcArgs = (enabled: boolean | undefined) => (enabled ? ['--expose-gc', '--import', GC_ON_SIGNAL] : []);

/** Forces a full GC in a server started with gcOnSignal, and gives it a moment to finish. */
export async function collectGarbage(pid: number): Promise<void> {
  process.kill(pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 750));
}

/** Starts `node bin/tickwire.js serve --port 0 --data-dir DIR ...` and waits for its ready line and /healthz. */
export async function startTickwire(children: Children, options: TickwireServerOptions): Promise<ServerProcess> {
  // TICKWIRE_BENCH_SERVER_NODE_ARGS passes Node options to the server only (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
  const nodeArgs = (process.env['TICKWIRE_BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const args = [...nodeArgs, ...gcArgs(options.gcOnSignal), TICKWIRE_BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', options.dataDir, '--log-level', 'warn'];
  for (const [flag, value] of Object.entries(options.flags ?? {})) args.push(`--${flag}`, String(value));
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = children.track(options.name, child);
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  const tail = tailKeeper(child.stderr!, log);
  void exited.then(() => log?.end());
  const url = await waitForReadyLine(child, options.name, exited, tail);
  const readyLineMs = performance.now() - t0;
  await waitHealthy(url, t0 + READY_TIMEOUT_MS);
  const healthyMs = performance.now() - t0;
  return { name: options.name, pid: child.pid!, url, port: Number(new URL(url).port), dataDir: options.dataDir, readyLineMs, healthyMs, exited, stderrTail: tail };
}

/** Starts the bare `ws` echo server (bench/baseline-ws-server.ts) under the same loader as the Tickwire server. */
export async function startBaseline(children: Children, name = 'baseline-ws', gcOnSignal = false): Promise<ServerProcess> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...gcArgs(gcOnSignal), '--import', 'tsx', BASELINE_SERVER], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = children.track(name, child);
  const tail = tailKeeper(child.stderr!, undefined);
  const url = await waitForReadyLine(child, name, exited, tail);
  const readyLineMs = performance.now() - t0;
  return { name, pid: child.pid!, url, port: Number(new URL(url).port), dataDir: '', readyLineMs, healthyMs: readyLineMs, exited, stderrTail: tail };
}

/**
 * Starts the load tool's baseline, the bare ws relay (`node bin/tickwire.js load --baseline-server --port 0`,
 * load/baseline-server.ts), as an operator would; it runs under the same loader as the Tickwire server.
 */
export async function startBareRelay(children: Children, name = 'bare-ws-relay'): Promise<ServerProcess> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [TICKWIRE_BIN, 'load', '--baseline-server', '--port', '0'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = children.track(name, child);
  const tail = tailKeeper(child.stderr!, undefined);
  const url = await waitForReadyLine(child, name, exited, tail);
  const readyLineMs = performance.now() - t0;
  await waitHealthy(url, t0 + READY_TIMEOUT_MS);
  return { name, pid: child.pid!, url, port: Number(new URL(url).port), dataDir: '', readyLineMs, healthyMs: performance.now() - t0, exited, stderrTail: tail };
}

/** Forks a client worker (bench/worker.ts) with an IPC channel. */
export function forkWorker(children: Children, name: string): ChildProcess {
  const child = fork(join(PROJECT_ROOT, 'bench/worker.ts'), [], {
    cwd: PROJECT_ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  void children.track(name, child);
  return child;
}

export function tempDirFor(children: Children, label: string): string {
  return children.tempDir(`tickwire-bench-${label}-`);
}
