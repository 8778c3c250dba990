// `tickwire serve` as a child process for the cluster tests: started with the CLI exactly as an operator would, its ready
// line parsed, its stderr (JSON log lines) kept for the test to wait on, stopped by PID (SIGTERM, SIGKILL) at teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WS_PATH } from '../../../spec/index.ts';
import type { Teardown } from '../helpers.ts';

const TICKWIRE_BIN = fileURLToPath(new URL('../../../bin/tickwire.js', import.meta.url));
const READY_LINE = /tickwire serving on (\S+) \(pid (\d+)\)\r?\n/;
const START_TIMEOUT_MS = 60_000;

/** Limits for tests: registrations are not rate-limited, timers short. */
export const TEST_SERVER_ARGS = ['--registrations-per-minute', '100000', '--ack-timeout-ms', '1000', '--shutdown-grace-ms', '2000'];

export interface LogLine {
  event: string;
  level: string;
  [field: string]: unknown;
}

export class ServeProcess {
  url = '';
  wsUrl = '';
  pid = 0;
  private stderr = '';
  private stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private lineWaiters: Array<() => void> = [];

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.stdout += chunk;
      this.notify();
    });
    child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
      this.notify();
    });
  }

  /** Spawns `tickwire serve ARGS` and resolves once it printed its ready line (rejects if it exits first). */
  static async start(t: Teardown, args: string[]): Promise<ServeProcess> {
    const child = spawn(process.execPath, [TICKWIRE_BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const serve = new ServeProcess(child);
    const orphanGuard = () => child.kill('SIGKILL');
    process.once('exit', orphanGuard);
    // A test that restarts servers many times would otherwise pile up one 'exit' listener per process it ever started.
    child.once('exit', () => process.off('exit', orphanGuard));
    t.teardown(async () => {
      process.off('exit', orphanGuard);
      await serve.stop();
    });
    await serve.ready();
    return serve;
  }

  /** Runs `tickwire serve ARGS` to its end: the exit code, stdout and stderr (for usage errors). */
  static run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, [TICKWIRE_BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const serve = new ServeProcess(child);
    return serve.exited.then(({ code }) => ({ code, stdout: serve.stdout, stderr: serve.stderr }));
  }

  private async ready(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const match = READY_LINE.exec(this.stdout);
      if (match) {
        this.url = match[1]!;
        this.wsUrl = this.url.replace(/^http/, 'ws') + WS_PATH;
        this.pid = Number(match[2]);
        return;
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`tickwire serve exited before it was ready:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`tickwire serve printed no ready line:\n${this.stderr}`);
      await this.changed(500);
    }
  }

  /** Everything printed on stdout so far. */
  get output(): string {
    return this.stdout;
  }

  /** The JSON log lines on stderr so far. */
  logs(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        // a line cut in the middle of a write: the next call sees it whole
      }
    }
    return out;
  }

  /** Waits for a log line with this event (and matching `predicate`), at most `timeoutMs`. */
  async logged(event: string, predicate: (line: LogLine) => boolean = () => true, timeoutMs = 30_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs().find((line) => line.event === event && predicate(line));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no '${event}' log line within ${timeoutMs} ms:\n${this.stderr.slice(-3000)}`);
      await this.changed(500);
    }
  }

  private changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.lineWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private notify(): void {
    const waiters = this.lineWaiters;
    this.lineWaiters = [];
    for (const wake of waiters) wake();
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL after 20 s; resolves the exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), 20_000);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

/** A temporary data directory (the embedded log's; a server on Redis does not use it), removed at teardown. */
export function tempDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The `tickwire_process_pid` gauge of one GET /metrics, on a fresh connection (so possibly another worker). */
export async function servingPid(url: string): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    const request = httpGet(`${url}/metrics`, { agent: false, headers: { connection: 'close' } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(body));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
  const match = /^tickwire_process_pid (\d+)$/m.exec(text);
  if (!match) throw new Error('no tickwire_process_pid in /metrics');
  return Number(match[1]);
}
