// The worker process of a load run, started by the coordinator as `node bin/tickwire.js load --worker` with an IPC
// channel. It runs one share of a scenario and speaks a small protocol over process.send:
//   coordinator → worker  { type: 'assign', assignment, statsEpoch } what to run; the clock of the stats ticks
//                         { type: 'go', name, atEpoch, imports }    every worker reached barrier `name`
//                         { type: 'abort' }                         stop early and report
//   worker → coordinator  { type: 'barrier', name, exports }        this worker reached barrier `name`
//                         { type: 'stats', stats }                  once a second, for the progress line and
//                                                                   the timeline (load/timeline.ts)
//                         { type: 'result', result }                the end: counters, histograms, accounting
//                         { type: 'fatal', message }                the share could not run
// Spreading a run over processes keeps each under its open-file limit (one descriptor per socket).
import type { Credentials } from '../reference-client/wire/connection.ts';
import { HttpApi } from '../reference-client/wire/http.ts';
import { Accounting, type AccountingState } from './accounting.ts';
import { inPool, KeyMaterial, Peer, registerUser, RegistrationError } from './peer.ts';
import type { HttpFigures } from './prekey-ledger.ts';
import type { Assignment, Go, WorkerContext } from './scenario.ts';
import { SCENARIOS } from './scenarios/index.ts';
import { WorkerStats, type StatsSnapshot } from './stats.ts';
import { StatsTicker } from './timeline.ts';

/** Registrations one worker keeps in flight. */
const REGISTRATION_CONCURRENCY = 16;

export interface WorkerResult {
  worker: number;
  stats: StatsSnapshot;
  histograms: { sendToAck: string; sendToDelivery: string; connect: string; extra: Record<string, string> };
  accounting: AccountingState;
  figures: Record<string, number>;
  /** The HTTP load of the prekeys scenario (load/prekey-ledger.ts), when the scenario drove one. */
  http?: HttpFigures;
}

export type ToWorker = { type: 'assign'; assignment: Assignment; statsEpoch: number } | { type: 'go'; name: string; atEpoch: number; imports: Record<string, unknown> } | { type: 'abort' };
export type FromWorker =
  | { type: 'barrier'; name: string; exports: Record<string, unknown> }
  | { type: 'stats'; stats: StatsSnapshot }
  | { type: 'result'; result: WorkerResult }
  | { type: 'fatal'; message: string };

function send(message: FromWorker): void {
  process.send?.(message);
}

/** The body of `tickwire load --worker`: resolves with the exit code once the result is sent. */
export async function runWorkerProcess(): Promise<number> {
  if (!process.send) {
    console.error('tickwire load --worker runs only as a child of `tickwire load` (it needs an IPC channel)');
    return 2;
  }
  const waiting = new Map<string, (go: Go) => void>();
  let aborted = false;
  let statsEpoch = performance.timeOrigin;
  const assignment = await new Promise<Assignment>((resolve) => {
    process.on('message', (message: ToWorker) => {
      if (message.type === 'assign') {
        statsEpoch = message.statsEpoch;
        resolve(message.assignment);
      } else if (message.type === 'go') waiting.get(message.name)?.({ at: message.atEpoch - performance.timeOrigin, imports: message.imports });
      else if (message.type === 'abort') {
        aborted = true;
        // Release every barrier, so that the scenario runs to its end quickly and reports.
        for (const [name, wake] of waiting) wake({ at: performance.now(), imports: { aborted: name } });
      }
    });
  });
  const stats = new WorkerStats();
  const accounting = new Accounting();
  const http = new HttpApi(assignment.url);
  const keys = new KeyMaterial();
  const figures: Record<string, number> = {};
  const setupDeadline = performance.now() + assignment.options.setupTimeoutMs;
  let nextAddress = 0;
  let usernames = 0;
  const bare = assignment.options.target === 'baseline';
  const peerContext = { url: assignment.url, run: assignment.run, accounting, stats, bodyBytes: assignment.options.bodyBytes, bare };
  const usernameOf = (label: string) => `l${assignment.run}${label}${assignment.worker.toString(36)}_${(usernames++).toString(36)}`;
  const ctx: WorkerContext = {
    assignment,
    stats,
    accounting,
    http,
    keys,
    setupDeadline,
    figures,
    get aborted() {
      return aborted;
    },
    barrier(name, exports = {}) {
      return new Promise<Go>((resolve) => {
        if (aborted) return resolve({ at: performance.now(), imports: {} });
        waiting.set(name, (go) => {
          waiting.delete(name);
          resolve(go);
        });
        send({ type: 'barrier', name, exports });
      });
    },
    async registerUsers(count, label) {
      // The bare relay has no accounts: a session is its connection, named by the userId alone.
      if (bare) return Array.from({ length: count }, () => ({ userId: usernameOf(label), deviceId: 1, secret: '' }));
      const out: Array<Credentials | undefined> = new Array(count);
      await inPool(Array.from({ length: count }, (_, i) => i), REGISTRATION_CONCURRENCY, async (i) => {
        if (aborted || performance.now() > setupDeadline) {
          stats.error('register:SETUP_TIMEOUT');
          return;
        }
        const username = usernameOf(label);
        try {
          out[i] = await registerUser(http, keys, username, setupDeadline, () => stats.error('register:RATE_LIMITED'));
          stats.registered++;
        } catch (error) {
          stats.error(`register:${error instanceof RegistrationError ? error.code : (error as Error).name}`);
        }
      });
      return out.filter((c): c is Credentials => c !== undefined);
    },
    peer(credentials) {
      const addresses = assignment.localAddresses;
      const address = addresses.length > 0 ? addresses[nextAddress++ % addresses.length] : undefined;
      return new Peer(credentials, address, peerContext);
    },
  };
  const ticker = new StatsTicker(statsEpoch, (tick) => send({ type: 'stats', stats: stats.snapshot(tick) }));
  ticker.start();
  try {
    await SCENARIOS[assignment.scenario].worker(ctx);
  } catch (error) {
    ticker.stop();
    send({ type: 'fatal', message: `worker ${assignment.worker}: ${(error as Error).stack ?? String(error)}` });
    process.disconnect();
    return 1;
  }
  ticker.stop();
  const extra: Record<string, string> = {};
  for (const [name, h] of stats.extra) extra[name] = h.encode();
  send({
    type: 'result',
    result: {
      worker: assignment.worker,
      // The last snapshot closes the second in progress, so the timeline adds up to the totals.
      stats: stats.snapshot(ticker.finalTick()),
      histograms: { sendToAck: stats.sendToAck.encode(), sendToDelivery: stats.sendToDelivery.encode(), connect: stats.connect.encode(), extra },
      accounting: accounting.serialize(),
      figures,
      ...(ctx.httpFigures ? { http: ctx.httpFigures } : {}),
    },
  });
  // Let the result leave before the channel closes.
  await new Promise((resolve) => setTimeout(resolve, 50));
  process.disconnect();
  return 0;
}
