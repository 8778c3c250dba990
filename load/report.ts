// The report of a load run: built from the workers' results, written as JSON (--output) and printed as text. The
// JSON shape (version 1) is documented in load/README.md; every latency is a Percentiles object in milliseconds,
// measured from the scheduled time of the action (open loop, corrected for coordinated omission).
import { Accounting, type AccountingSummary } from './accounting.ts';
import type { RunOutcome } from './coordinator.ts';
import { formatPercentiles, LatencyHistogram, type Percentiles } from './histogram.ts';
import { httpFailures, mergeHttpFigures, type HttpFigures, type HttpReport } from './prekey-ledger.ts';
import type { RunOptions, ScenarioName } from './scenario.ts';
import type { ServerSample } from './server-sampler.ts';
import type { TimelineEntry } from './timeline.ts';

export interface LoadReport {
  tool: 'tickwire-load';
  version: 1;
  scenario: ScenarioName;
  url: string;
  run: string;
  startedAt: string;
  options: RunOptions & { workers: number; maxErrors: number };
  /** Source addresses used, per worker. */
  localAddresses: string[][];
  elapsedMs: number;
  /** Milliseconds from the start at which each phase barrier was passed. */
  phases: Record<string, number>;
  sessions: { registered: number; attempted: number; accepted: number; held?: number; peakOpen: number; connectLatency: Percentiles };
  messages: AccountingSummary & { achievedRate: number; sendToAck: Percentiles; sendToDelivery: Percentiles };
  /** Scenario-specific figures (offline: drain; connections: held). */
  figures: Record<string, number>;
  drain?: Percentiles;
  /** prekeys: the HTTP load (autocannon) and the account of one-time prekeys (load/prekey-ledger.ts). */
  http?: HttpReport;
  errors: Record<string, number>;
  server: { samples: ServerSample[]; baselineRssBytes?: number; peakRssBytes?: number; memoryPerSessionBytes?: number } | null;
  /** One entry per second of the run: counts in that second, open sessions at its end, its latency percentiles. */
  timeline: TimelineEntry[];
  /** Encoded HDR histograms (compressed base64), for later merging or plotting. */
  histograms: Record<string, string>;
  verdict: { pass: boolean; failures: string[]; aborted?: string };
}

export interface ReportInput {
  scenario: ScenarioName;
  url: string;
  run: string;
  startedAt: Date;
  options: RunOptions;
  workers: number;
  maxErrors: number;
  localAddresses: string[][];
  outcome: RunOutcome;
  serverSamples?: ServerSample[];
  baselineRssBytes?: number;
}

export function buildReport(input: ReportInput): LoadReport {
  const { outcome } = input;
  const accounting = new Accounting();
  const sendToAck = new LatencyHistogram();
  const sendToDelivery = new LatencyHistogram();
  const connect = new LatencyHistogram();
  const extra = new Map<string, LatencyHistogram>();
  const errors: Record<string, number> = {};
  const figures: Record<string, number> = {};
  let registered = 0;
  let attempted = 0;
  let accepted = 0;
  const httpList: HttpFigures[] = [];
  for (const r of outcome.results) {
    if (r.http) httpList.push(r.http);
    accounting.merge(r.accounting);
    sendToAck.merge(LatencyHistogram.decode(r.histograms.sendToAck));
    sendToDelivery.merge(LatencyHistogram.decode(r.histograms.sendToDelivery));
    connect.merge(LatencyHistogram.decode(r.histograms.connect));
    for (const [name, text] of Object.entries(r.histograms.extra)) {
      let h = extra.get(name);
      if (!h) extra.set(name, (h = new LatencyHistogram()));
      h.merge(LatencyHistogram.decode(text));
    }
    for (const [kind, n] of Object.entries(r.stats.errors)) errors[kind] = (errors[kind] ?? 0) + n;
    for (const [name, value] of Object.entries(r.figures)) figures[name] = name.startsWith('max') ? Math.max(figures[name] ?? 0, value) : (figures[name] ?? 0) + value;
    registered += r.stats.registered;
    attempted += r.stats.attempted;
    accepted += r.stats.accepted;
  }
  const summary = accounting.summary();
  const loadMs = input.options.durationMs;
  const samples = input.serverSamples ?? [];
  const peakRss = samples.length ? Math.max(...samples.map((s) => s.rssBytes)) : undefined;
  const held = figures['held'];
  const sessionsForMemory = held ?? outcome.peakOpen;
  const failures: string[] = [];
  for (const [key, label] of [['lost', 'lost'], ['duplicated', 'duplicated'], ['reordered', 'reordered'], ['receiptsMissing', 'without a delivered receipt'], ['unexpected', 'unexpected deliveries']] as const) {
    if (summary[key] > 0) failures.push(`${summary[key]} message(s) ${label}`);
  }
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  if (errorCount > input.maxErrors) failures.push(`${errorCount} error(s), more than --max-errors ${input.maxErrors}`);
  if (figures['notAttempted']) failures.push(`${figures['notAttempted']} session(s) not attempted within --duration (raise --rate or --duration)`);
  if (figures['drainTimedOut']) failures.push(`the drain did not complete within --drain-timeout in ${figures['drainTimedOut']} worker(s)`);
  if (input.scenario === 'connections' && held !== undefined && held < input.options.count) failures.push(`${input.options.count - held} of ${input.options.count} sessions not held to the end`);
  const http = mergeHttpFigures(httpList);
  if (http) failures.push(...httpFailures(http));
  for (const f of outcome.fatal) failures.push(f.split('\n')[0]!);
  if (outcome.aborted) failures.push(`run aborted: ${outcome.aborted}`);
  const histograms: Record<string, string> = { sendToAck: sendToAck.encode(), sendToDelivery: sendToDelivery.encode(), connect: connect.encode() };
  for (const [name, h] of extra) histograms[name] = h.encode();
  const drain = extra.get('drain');
  return {
    tool: 'tickwire-load',
    version: 1,
    scenario: input.scenario,
    url: input.url,
    run: input.run,
    startedAt: input.startedAt.toISOString(),
    options: { ...input.options, workers: input.workers, maxErrors: input.maxErrors },
    localAddresses: input.localAddresses,
    elapsedMs: outcome.elapsedMs,
    phases: outcome.barriers,
    sessions: { registered, attempted, accepted, ...(held !== undefined ? { held } : {}), peakOpen: outcome.peakOpen, connectLatency: connect.percentiles() },
    messages: { ...summary, achievedRate: loadMs > 0 ? Math.round((summary.sent * 1000) / loadMs) : 0, sendToAck: sendToAck.percentiles(), sendToDelivery: sendToDelivery.percentiles() },
    figures,
    ...(drain ? { drain: drain.percentiles() } : {}),
    ...(http ? { http: httpReport(http, input.options.durationMs, extra) } : {}),
    errors,
    server: samples.length
      ? {
          samples,
          ...(input.baselineRssBytes !== undefined ? { baselineRssBytes: input.baselineRssBytes } : {}),
          ...(peakRss !== undefined ? { peakRssBytes: peakRss } : {}),
          ...(peakRss !== undefined && input.baselineRssBytes !== undefined && sessionsForMemory > 0 ? { memoryPerSessionBytes: Math.round((peakRss - input.baselineRssBytes) / sessionsForMemory) } : {}),
        }
      : null,
    timeline: outcome.timeline ?? [],
    histograms,
    verdict: { pass: failures.length === 0, failures, ...(outcome.aborted ? { aborted: outcome.aborted } : {}) },
  };
}

/** The report's `http` section: the merged figures, the ledger flattened, throughput and the latencies. */
function httpReport(h: HttpFigures, durationMs: number, extra: Map<string, LatencyHistogram>): HttpReport {
  const { ledger, ...counts } = h;
  const seconds = Math.max(durationMs, h.elapsedMs) / 1000;
  const percentiles = (name: string) => (extra.get(name) ?? new LatencyHistogram()).percentiles();
  return { ...counts, ...ledger, throughputRps: seconds > 0 ? Math.round(h.answered / seconds) : 0, latency: percentiles('http'), latencyFromSchedule: percentiles('httpFromSchedule') };
}

/** The text summary printed at the end of a run. */
export function renderText(report: LoadReport): string {
  const m = report.messages;
  const s = report.sessions;
  const lines = [
    `tickwire load ${report.scenario} against ${report.url}${report.options.target === 'baseline' ? ' (the bare ws relay baseline)' : ''}: ${report.options.workers} worker(s), ${new Set(report.localAddresses.flat()).size || 'default'} source address(es), ${(report.elapsedMs / 1000).toFixed(1)} s`,
    `sessions   registered ${s.registered}  attempted ${s.attempted}  accepted ${s.accepted}${s.held !== undefined ? `  held ${s.held}` : ''}  peak open ${s.peakOpen}`,
    `connect    ${formatPercentiles(s.connectLatency)}`,
  ];
  if (report.http) {
    const h = report.http;
    const statuses = Object.entries(h.byStatus).map(([status, n]) => `${status} ${n}`).join(', ') || 'none';
    lines.push(
      `http       requests ${h.requests} of ${h.offered} offered  answered ${h.answered} (${h.throughputRps}/s)  unanswered ${h.unanswered}  fetches ${h.fetches}  uploads ${h.uploads}${h.uploadsDeferred ? ` (${h.uploadsDeferred} deferred)` : ''}  by status ${statuses}  errors ${h.errors}`,
      `latency    ${formatPercentiles(h.latency)}  (autocannon: written → answered)`,
      `from sched ${formatPercentiles(h.latencyFromSchedule)}`,
      `prekeys    uploaded ${h.prekeysUploaded}  handed out ${h.prekeysHandedOut}  bundles without one ${h.bundlesWithoutPrekey}  duplicate handouts ${h.duplicateHandouts}  unknown ${h.unknownHandouts}  counts checked ${h.countsChecked} (mismatched ${h.countMismatches})`,
    );
  } else if (report.scenario !== 'connections') {
    lines.push(
      `messages   sent ${m.sent} (${m.achievedRate}/s over --duration)  accepted ${m.accepted}  delivered ${m.delivered}  receipts ${m.receipts}  refused ${m.refused} (TEMPORARILY_UNAVAILABLE ${m.indeterminate})  unanswered ${m.unanswered}`,
      `accounting lost ${m.lost}  duplicated ${m.duplicated}  reordered ${m.reordered}  without receipt ${m.receiptsMissing}  unexpected ${m.unexpected}  (redelivered ${m.redelivered})`,
      `send→ack   ${formatPercentiles(m.sendToAck)}`,
      `send→dlv   ${formatPercentiles(m.sendToDelivery)}`,
    );
  }
  if (report.drain) lines.push(`drain      ${formatPercentiles(report.drain)}  (connect to queue_empty per device; all done in ${report.figures['maxDrainMs']} ms)`);
  const errors = Object.entries(report.errors);
  lines.push(`errors     ${errors.length ? errors.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  if (report.server) {
    const mib = (b: number | undefined) => (b === undefined ? '?' : `${(b / 1048576).toFixed(1)} MiB`);
    const cpu = report.server.samples.map((x) => x.cpuPercent).filter((x): x is number => x !== undefined);
    lines.push(`server     rss baseline ${mib(report.server.baselineRssBytes)} peak ${mib(report.server.peakRssBytes)}${report.server.memoryPerSessionBytes !== undefined ? `  ≈${(report.server.memoryPerSessionBytes / 1024).toFixed(1)} KiB per session` : ''}${cpu.length ? `  cpu peak ${Math.max(...cpu)}%` : ''}`);
  }
  lines.push(report.verdict.pass ? 'PASS' : `FAIL: ${report.verdict.failures.join('; ')}`);
  return `${lines.join('\n')}\n`;
}
