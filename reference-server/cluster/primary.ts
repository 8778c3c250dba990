// `tickwire serve --workers N --redis URL`: the primary process of Node's cluster module. It serves nothing itself; it
// runs N worker processes that each run the whole server on one shared port (the primary accepts connections and
// hands them to the workers in turn) and share one service through Redis (the store and the session bus).
//
//   starting ──all N listening──▶ serving ──SIGHUP──▶ rolling ──each replaced──▶ serving
//       │                           │  ▲                 │
//       └─a worker exits: exit 2    │  └─worker died: a replacement is forked (with backoff)
//                                   └──SIGTERM / SIGINT──▶ stopping ──every worker exited──▶ exit
//
// [DPL-6] A rolling restart replaces workers one at a time: the replacement is forked and listening before the old
// worker gets SIGTERM, which makes it stop accepting, answer the requests it already received and close its sessions
// with SERVER_RESTART (1012) [DPL-3] [KAL-13]; their clients reconnect and land on the other workers.
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import type { Logger } from '../context.ts';

/** The message a worker sends to the primary once its server listens. */
export interface ListeningMessage {
  type: 'tickwire:listening';
  url: string;
}

export function isListeningMessage(value: unknown): value is ListeningMessage {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'tickwire:listening' && typeof (value as { url?: unknown }).url === 'string';
}

/** The environment variable through which the primary gives every worker the one port they share. */
export const WORKER_PORT_ENV = 'TICKWIRE_CLUSTER_PORT';

export interface PrimaryOptions {
  workers: number;
  host: string;
  /** 0: the primary picks a free port once, so that a worker started later (a restart) binds the same one. */
  port: number;
  /** A worker that has not exited this long after SIGTERM (plus a margin) is killed. */
  shutdownGraceMs: number;
  log: Logger;
  /** Prints the ready line; `tickwire serving on <url> (pid <primary pid>)` by default. */
  ready?: (url: string) => void;
}

/** A worker must report listening within this time, or it counts as failed to start. */
const WORKER_START_TIMEOUT_MS = 60_000;
/** Added to shutdownGraceMs before a worker that ignores SIGTERM is killed. */
const STOP_MARGIN_MS = 10_000;
/** Unexpected exits within this window make the next restart wait longer (crash-loop backoff). */
const CRASH_WINDOW_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

type WorkerState = 'starting' | 'serving' | 'stopping';

interface Managed {
  worker: Worker;
  state: WorkerState;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export class Primary {
  private readonly managed = new Map<number, Managed>();
  private state: 'starting' | 'serving' | 'stopping' = 'starting';
  private rolling: Promise<void> | undefined;
  private rollAgain = false;
  private crashes: number[] = [];
  private port = 0;
  private url = '';
  private finished!: (code: number) => void;
  private readonly done = new Promise<number>((resolve) => (this.finished = resolve));

  constructor(private readonly options: PrimaryOptions) {
    if (!Number.isSafeInteger(options.workers) || options.workers < 1) throw new RangeError(`workers must be >= 1 (got ${options.workers})`);
  }

  /** Starts the workers and runs until SIGTERM or SIGINT; resolves the exit code. */
  async run(): Promise<number> {
    const { log } = this.options;
    this.port = this.options.port === 0 ? await freePort(this.options.host) : this.options.port;
    const onStop = (signal: NodeJS.Signals) => {
      log.info('primary.signal', { signal });
      void this.stop();
    };
    const onHup = () => {
      log.info('primary.signal', { signal: 'SIGHUP' });
      this.rollingRestart();
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', onHup);
    try {
      const started = await Promise.allSettled(Array.from({ length: this.options.workers }, () => this.fork()));
      const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed && this.state === 'starting') {
        console.error(`tickwire serve: cannot start: ${(failed.reason as Error).message}`);
        await this.stop(2);
      } else if (this.state === 'starting') {
        this.state = 'serving';
        log.info('primary.serving', { url: this.url, workers: this.options.workers, pids: [...this.managed.values()].map((m) => m.worker.process.pid) });
        (this.options.ready ?? ((url) => console.log(`tickwire serving on ${url} (pid ${process.pid})`)))(this.url);
      }
      return await this.done;
    } finally {
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
      process.off('SIGHUP', onHup);
    }
  }

  /** Forks one worker; resolves once it listens, rejects if it exits (or stays silent) before. */
  private fork(): Promise<Managed> {
    const worker = cluster.fork({ [WORKER_PORT_ENV]: String(this.port) });
    let exited!: (value: { code: number | null; signal: string | null }) => void;
    const managed: Managed = { worker, state: 'starting', exited: new Promise((resolve) => (exited = resolve)) };
    this.managed.set(worker.id, managed);
    const pid = worker.process.pid;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`worker ${pid} did not start listening within ${WORKER_START_TIMEOUT_MS} ms`));
        worker.process.kill('SIGKILL');
      }, WORKER_START_TIMEOUT_MS);
      worker.on('message', (message: unknown) => {
        if (!isListeningMessage(message) || managed.state !== 'starting') return;
        clearTimeout(timer);
        managed.state = 'serving';
        this.url ||= message.url;
        this.options.log.info('primary.worker_listening', { pid, url: message.url });
        resolve(managed);
      });
      worker.on('exit', (code, signal) => {
        clearTimeout(timer);
        this.managed.delete(worker.id);
        exited({ code, signal });
        const before = managed.state;
        if (before === 'starting') reject(new Error(`worker ${pid} exited (${code ?? signal}) before it listened`));
        this.onExit(managed, before, code, signal);
      });
    });
  }

  private onExit(managed: Managed, before: WorkerState, code: number | null, signal: string | null): void {
    const pid = managed.worker.process.pid;
    if (before === 'stopping' || this.state === 'stopping') {
      this.options.log.info('primary.worker_exited', { pid, exitCode: code, signal });
      return;
    }
    this.options.log.error('primary.worker_died', { pid, exitCode: code, signal });
    if (this.state !== 'serving') return;
    // A worker that died unexpectedly is replaced, later and later while they keep dying.
    const now = Date.now();
    this.crashes = [...this.crashes.filter((at) => at > now - CRASH_WINDOW_MS), now];
    const delayMs = Math.min(MAX_RESTART_DELAY_MS, 250 * 2 ** (this.crashes.length - 1));
    setTimeout(() => {
      if (this.state !== 'serving') return;
      this.fork().catch((error: Error) => this.options.log.error('primary.restart_failed', { message: error.message }));
    }, delayMs).unref();
  }

  /** SIGTERM to one worker; resolves when it has exited (killed after the grace period). */
  private async stopWorker(managed: Managed): Promise<void> {
    managed.state = 'stopping';
    managed.worker.process.kill('SIGTERM');
    const timer = setTimeout(() => managed.worker.process.kill('SIGKILL'), this.options.shutdownGraceMs + STOP_MARGIN_MS);
    await managed.exited;
    clearTimeout(timer);
  }

  /** [DPL-6] SIGHUP: replaces the workers one at a time; a SIGHUP during a rolling restart runs another after it. */
  rollingRestart(): void {
    if (this.state !== 'serving') return;
    if (this.rolling) {
      this.rollAgain = true;
      return;
    }
    this.rolling = (async () => {
      do {
        this.rollAgain = false;
        const old = [...this.managed.values()].filter((m) => m.state === 'serving');
        this.options.log.info('primary.rolling_restart', { workers: old.length });
        for (const previous of old) {
          if (this.state !== 'serving') return;
          if (previous.state !== 'serving') continue; // died meanwhile: already replaced
          try {
            await this.fork();
          } catch (error) {
            // The old workers keep serving; the operator sees why in the log.
            this.options.log.error('primary.rolling_restart_failed', { message: (error as Error).message });
            return;
          }
          await this.stopWorker(previous);
        }
        this.options.log.info('primary.rolling_restart_done', { pids: [...this.managed.values()].map((m) => m.worker.process.pid) });
      } while (this.rollAgain && this.state === 'serving');
    })().finally(() => (this.rolling = undefined));
  }

  /** SIGTERM or SIGINT: every worker shuts down gracefully [KAL-13]; the primary exits once all have. */
  async stop(code = 0): Promise<void> {
    if (this.state === 'stopping') return;
    this.state = 'stopping';
    const all = [...this.managed.values()];
    await Promise.all(all.map((managed) => this.stopWorker(managed)));
    const results = await Promise.all(all.map((managed) => managed.exited));
    const failed = results.some((result) => result.code !== 0);
    this.options.log.info('primary.stopped', { workers: all.length });
    this.finished(code !== 0 ? code : failed ? 1 : 0);
  }
}
