// The coordinator of a load run: forks the worker processes (`node bin/tickwire.js load --worker`), hands each its
// share (units, rate, source addresses), releases the scenario's barriers once every worker reached them, prints a
// progress line once a second, and collects the workers' results. A hard deadline bounds the whole run: workers
// still running then are aborted, and killed if they do not report within a grace period.
import { fork, type ChildProcess } from 'node:child_process';
import { LatencyHistogram } from './histogram.ts';
import type { Assignment, RunOptions, ScenarioName } from './scenario.ts';
import type { ServerSampler } from './server-sampler.ts';
import { TICKWIRE_BIN } from './server-process.ts';
import type { StatsSnapshot } from './stats.ts';
import { Timeline, type TimelineEntry } from './timeline.ts';
import type { FromWorker, ToWorker, WorkerResult } from './worker.ts';

/** How far ahead of "now" a released barrier's start time is set, so that every worker hears of it in time. */
const GO_LEAD_MS = 100;
/** How long aborted workers get to report before they are killed. */
const ABORT_GRACE_MS = 10_000;

export interface CoordinatorOptions {
  scenario: ScenarioName;
  url: string;
  run: string;
  workers: number;
  /** Source addresses per worker (from addresses.ts splitAddresses). */
  addresses: string[][];
  options: RunOptions;
  sampler?: ServerSampler;
  /** Called once a second with the progress line. */
  onProgress?: (line: string) => void;
  /** The whole run, setup included, ends by then (ms from now). */
  hardDeadlineMs: number;
}

export interface RunOutcome {
  results: WorkerResult[];
  fatal: string[];
  aborted: string | undefined;
  /** Milliseconds from the start of the run at which each barrier was released. */
  barriers: Record<string, number>;
  elapsedMs: number;
  /** The most sessions open at once (sum over workers, sampled once a second and at every barrier). */
  peakOpen: number;
  /** performance.now() of the first barrier release after setup (the load's start), for rate figures. */
  loadStartedAt: number | undefined;
  /** One entry per second of the run, from the workers' stats snapshots (load/timeline.ts). */
  timeline?: TimelineEntry[];
}

/** Shares of `total` over `parts`, as even as integers allow. */
export function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(((i + 1) * total) / parts) - Math.floor((i * total) / parts));
}

export async function coordinate(o: CoordinatorOptions): Promise<RunOutcome> {
  const startedAt = performance.now();
  const counts = shares(o.options.count, o.workers);
  const messages = shares(o.options.messages, o.workers);
  const children: ChildProcess[] = [];
  const latest: Array<StatsSnapshot | undefined> = new Array(o.workers);
  const histograms: Array<{ sendToAck?: string; sendToDelivery?: string }> = Array.from({ length: o.workers }, () => ({}));
  const results: WorkerResult[] = [];
  const timeline = new Timeline(o.workers);
  const fatal: string[] = [];
  const arrived = new Map<string, Array<Record<string, unknown>>>();
  const barriers: Record<string, number> = {};
  let aborted: string | undefined;
  let peakOpen = 0;
  let loadStartedAt: number | undefined;
  let first = 0;
  let finished = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => (allDone = resolve));

  const broadcast = (message: ToWorker) => {
    for (const child of children) if (child.connected) child.send(message);
  };
  const notePeak = () => {
    peakOpen = Math.max(peakOpen, latest.reduce((n, s) => n + (s?.open ?? 0), 0));
  };

  for (let w = 0; w < o.workers; w++) {
    const assignment: Assignment = {
      scenario: o.scenario,
      url: o.url,
      run: o.run,
      worker: w,
      workers: o.workers,
      first,
      count: counts[w]!,
      rate: (o.options.rate * counts[w]!) / Math.max(1, o.options.count),
      messages: messages[w]!,
      localAddresses: o.addresses[w] ?? [],
      options: o.options,
    };
    first += counts[w]!;
    const child = fork(TICKWIRE_BIN, ['load', '--worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    child.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'stats':
          latest[w] = message.stats;
          timeline.add(w, message.stats);
          if (message.stats.sendToAck) histograms[w]!.sendToAck = message.stats.sendToAck;
          if (message.stats.sendToDelivery) histograms[w]!.sendToDelivery = message.stats.sendToDelivery;
          break;
        case 'barrier': {
          const list = arrived.get(message.name) ?? [];
          list.push(message.exports);
          arrived.set(message.name, list);
          if (list.length === o.workers - fatal.length) {
            notePeak();
            const now = performance.now();
            barriers[message.name] = Math.round(now - startedAt);
            if (loadStartedAt === undefined && message.name !== 'prepared') loadStartedAt = now + GO_LEAD_MS;
            if (message.name === 'prepared' && o.scenario === 'connections') loadStartedAt = now + GO_LEAD_MS;
            broadcast({ type: 'go', name: message.name, atEpoch: performance.timeOrigin + now + GO_LEAD_MS, imports: Object.assign({}, ...list) });
          }
          break;
        }
        case 'result':
          latest[w] = message.result.stats;
          timeline.add(w, message.result.stats);
          results.push(message.result);
          break;
        case 'fatal':
          fatal.push(message.message);
          // A failed worker never reaches the next barrier: abort the others rather than wait for it.
          aborted ??= `worker ${w} failed`;
          broadcast({ type: 'abort' });
          break;
      }
    });
    child.once('exit', (code, signal) => {
      timeline.finish(w);
      if (!results.some((r) => r.worker === w) && !fatal.some((f) => f.startsWith(`worker ${w}:`))) fatal.push(`worker ${w}: exited (${code ?? signal}) without a result`);
      if (++finished === o.workers) allDone();
    });
    // The workers' stats ticks count whole seconds from the coordinator's start, so that the timeline lines up.
    child.send({ type: 'assign', assignment, statsEpoch: performance.timeOrigin + startedAt } satisfies ToWorker);
  }

  let lastSent = 0;
  let lastTick = performance.now();
  const progress = setInterval(() => {
    notePeak();
    if (!o.onProgress) return;
    const now = performance.now();
    const sum = (key: keyof StatsSnapshot) => latest.reduce((n, s) => n + ((s?.[key] as number | undefined) ?? 0), 0);
    const errors = latest.reduce((n, s) => n + Object.values(s?.errors ?? {}).reduce((a, b) => a + b, 0), 0);
    const sent = sum('sent');
    const rate = Math.round(((sent - lastSent) * 1000) / (now - lastTick));
    lastSent = sent;
    lastTick = now;
    const p99 = (key: 'sendToAck' | 'sendToDelivery') => {
      const merged = new LatencyHistogram();
      for (const h of histograms) if (h[key]) merged.merge(LatencyHistogram.decode(h[key]!));
      return merged.count === 0 ? '-' : `${merged.at(99).toFixed(1)}ms`;
    };
    const server = o.sampler?.latest;
    const mem = server ? ` server ${Math.round(server.rssBytes / 1048576)}MiB${server.cpuPercent !== undefined ? ` ${server.cpuPercent}%cpu` : ''}` : '';
    o.onProgress(
      `[${((now - startedAt) / 1000).toFixed(0)}s] sessions ${sum('open')} (registered ${sum('registered')}, accepted ${sum('accepted')}/${sum('attempted')})  sent ${sent} (${rate}/s) acked ${sum('acked')} delivered ${sum('delivered')} receipts ${sum('receipts')}  p99 ack ${p99('sendToAck')} dlv ${p99('sendToDelivery')}  errors ${errors}${mem}`,
    );
  }, 1000);

  const hard = setTimeout(() => {
    aborted ??= `the run passed its hard deadline of ${Math.round(o.hardDeadlineMs / 1000)} s`;
    broadcast({ type: 'abort' });
    setTimeout(() => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, ABORT_GRACE_MS).unref();
  }, o.hardDeadlineMs);
  const onSigint = () => {
    aborted ??= 'interrupted';
    broadcast({ type: 'abort' });
  };
  process.on('SIGINT', onSigint);
  try {
    await done;
  } finally {
    clearTimeout(hard);
    clearInterval(progress);
    process.off('SIGINT', onSigint);
  }
  results.sort((a, b) => a.worker - b.worker);
  return { results, fatal, aborted, barriers, elapsedMs: Math.round(performance.now() - startedAt), peakOpen, loadStartedAt, timeline: timeline.close() };
}
