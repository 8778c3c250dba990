// The HTML report of a load run (`tickwire load … --html FILE`, `tickwire load report --html FILE results.json`):
// one self-contained file that opens offline (inline CSS, inline SVG charts drawn here, no script, no font, no
// link to anything), rendered from the JSON report alone, so the same JSON always gives the same page.
//
// Charts: messages per second (sent, accepted, delivered; errors when any), latency per second (p50 and p99 of
// send → ACK and send → delivery), the latency distribution as HdrHistogram's plotter draws it (latency against
// percentile on a log scale, 1/(1 − p): 90 %, 99 %, 99.9 % … equally spaced), open sessions per second, and the
// server's memory and CPU when they were sampled. Then the tables: run, sessions, messages and their accounting,
// latencies, errors by kind, server, verdict. Every text taken from the report is escaped.
import { LatencyHistogram, type Percentiles } from './histogram.ts';
import type { LoadReport } from './report.ts';
import { compact, escapeHtml, PALETTE, renderLineChart, type LineChart, type Series, type Tick } from './svg-chart.ts';
import type { TimelineEntry } from './timeline.ts';

/** The deepest percentile the distribution plots: 99.999 % (x = 5 on the 1/(1 − p) log scale). */
const MAX_NINES = 5;
/** Points per decade of the percentile axis. */
const POINTS_PER_NINE = 20;

const HISTOGRAM_NAMES: Record<string, string> = {
  sendToAck: 'send → ACK',
  sendToDelivery: 'send → delivery',
  connect: 'connect',
  drain: 'drain (connect → queue_empty)',
  http: 'HTTP (written → answered)',
  httpFromSchedule: 'HTTP (from schedule)',
};

const STYLE = `
:root { color-scheme: light; --fg: #1d1f21; --muted: #5f6368; --line: #d8dadd; --pass: #0a7d33; --fail: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 24px; max-width: 1180px; color: var(--fg); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 0 0 6px; }
.sub { color: var(--muted); margin: 0 0 16px; word-break: break-all; }
.verdict { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin: 12px 0; }
.verdict.pass { background: #e6f4ea; color: var(--pass); }
.verdict.fail { background: #fce8e6; color: var(--fail); }
.verdict ul { margin: 6px 0 0; font-weight: 400; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px 24px; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 2px; }
svg.chart { width: 100%; height: auto; font-size: 12px; fill: var(--fg); }
svg.chart .grid line { stroke: #eceef0; }
svg.chart .axis line { stroke: #80868b; }
svg.chart .label { fill: var(--muted); }
svg.chart .marker-line line { stroke: #9aa0a6; stroke-dasharray: 2 3; }
svg.chart .marker-line text { fill: var(--muted); font-size: 11px; }
svg.chart .empty { fill: var(--muted); }
.tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 8px 24px; align-items: start; }
table { border-collapse: collapse; width: 100%; margin-bottom: 12px; }
th, td { text-align: left; padding: 3px 8px 3px 0; border-bottom: 1px solid #f0f1f2; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
th { color: var(--muted); font-weight: 500; }
.bad { color: var(--fail); font-weight: 600; }
code { font-size: 12px; word-break: break-all; }
`;

const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });

/** A number for a table cell; anything else (a report edited by hand) is shown as text. */
function num(value: unknown): string {
  return typeof value === 'number' && Number.isFinite(value) ? numberFormat.format(value) : escapeHtml(String(value ?? '–'));
}

function text(value: unknown): string {
  return escapeHtml(String(value ?? ''));
}

/** A two-column table of label → value; values are already HTML. */
function keyValues(title: string, rows: Array<[string, string] | undefined>): string {
  const body = rows
    .filter((r): r is [string, string] => r !== undefined)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td class="n">${v}</td></tr>`)
    .join('');
  return `<div><h3>${escapeHtml(title)}</h3><table>${body}</table></div>`;
}

/** A count that fails the run when non-zero, marked as such. */
function failing(value: unknown): string {
  return typeof value === 'number' && value > 0 ? `<span class="bad">${num(value)}</span>` : num(value);
}

function percentileRow(name: string, p: Percentiles | undefined): string {
  if (!p) return '';
  const cells = p.count > 0 ? [p.p50, p.p90, p.p99, p.p999, p.max, p.mean].map((v) => `<td class="n">${num(v)}</td>`).join('') : '<td colspan="6">no samples</td>';
  return `<tr><th>${escapeHtml(name)}</th><td class="n">${num(p.count)}</td>${cells}</tr>`;
}

function seconds(ms: number): number {
  return ms / 1000;
}

/** Vertical markers for the phases of the run (barrier releases), on the time charts. */
function phaseMarkers(report: LoadReport): Array<{ x: number; label: string }> {
  return Object.entries(report.phases ?? {})
    .filter(([, ms]) => typeof ms === 'number')
    .map(([name, ms]) => ({ x: seconds(ms), label: name }));
}

function timeAxis(report: LoadReport, timeline: TimelineEntry[]) {
  const end = Math.max(seconds(report.elapsedMs) || 0, ...timeline.map((e) => seconds(e.t)));
  return { label: 'time since start (s)', min: 0, ...(end > 0 ? { max: end } : {}) };
}

function timeSeries(timeline: TimelineEntry[], name: string, color: string, pick: (e: TimelineEntry) => number | null, dashed = false): Series {
  return { name, color, dashed, points: timeline.map((e) => [seconds(e.t), pick(e)] as const) };
}

/** The percentile axis of HdrHistogram's plotter: x = log10(1 / (1 − p)), so 0 %, 90 %, 99 %, 99.9 % … are 0, 1, 2, 3 … */
export function percentileX(percentile: number): number {
  return Math.log10(1 / (1 - percentile / 100));
}

/** The points of one latency distribution: latency (ms) at percentiles down to 1/count, and at most 99.999 %. */
export function distributionPoints(h: LatencyHistogram): Array<readonly [number, number]> {
  if (h.count === 0) return [];
  const deepest = Math.min(MAX_NINES, Math.max(1, Math.log10(h.count)));
  const points: Array<readonly [number, number]> = [];
  const steps = Math.round(deepest * POINTS_PER_NINE);
  for (let i = 0; i <= steps; i++) {
    const x = (deepest * i) / steps;
    points.push([x, h.at(100 * (1 - 10 ** -x))]);
  }
  return points;
}

function percentileTicks(deepest: number): Tick[] {
  const ticks: Tick[] = [];
  for (let nines = 0; nines <= Math.ceil(deepest); nines++) ticks.push({ value: nines, label: nines === 0 ? '0%' : `${(100 * (1 - 10 ** -nines)).toFixed(Math.max(0, nines - 2))}%` });
  return ticks;
}

function figure(chart: LineChart, caption: string): string {
  return `<figure><h3>${escapeHtml(chart.title)}</h3>${renderLineChart(chart)}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

function charts(report: LoadReport): string {
  const timeline = Array.isArray(report.timeline) ? report.timeline : [];
  const markers = phaseMarkers(report);
  const x = timeAxis(report, timeline);
  const out: string[] = [];
  // The prekeys scenario counts HTTP requests in the timeline's sent/accepted fields and their times in its ack
  // percentiles (load/README.md): its charts say so.
  const http = report.http !== undefined;
  if (timeline.some((e) => e.sent > 0 || e.accepted > 0 || e.delivered > 0)) {
    const series = http
      ? [timeSeries(timeline, 'requests', PALETTE[0], (e) => e.sent), timeSeries(timeline, 'answered', PALETTE[2], (e) => e.accepted)]
      : [
          timeSeries(timeline, 'sent', PALETTE[0], (e) => e.sent),
          timeSeries(timeline, 'accepted (send_ok)', PALETTE[2], (e) => e.accepted),
          timeSeries(timeline, 'delivered', PALETTE[1], (e) => e.delivered),
        ];
    if (timeline.some((e) => e.errors > 0)) series.push(timeSeries(timeline, 'errors', PALETTE[6], (e) => e.errors, true));
    const title = http ? 'HTTP requests per second' : 'Messages per second';
    out.push(figure({ id: 'throughput', title, x, y: { label: http ? 'requests / s' : 'messages / s', min: 0 }, series, markers }, 'Counted in each second of the run (the last entry may cover less than a second).'));
    out.push(
      figure(
        {
          id: 'latency',
          title: 'Latency per second',
          x,
          y: { label: 'latency (ms)', min: 0 },
          series: http
            ? [timeSeries(timeline, 'request → response p50', PALETTE[0], (e) => e.ackP50, true), timeSeries(timeline, 'request → response p99', PALETTE[0], (e) => e.ackP99)]
            : [
                timeSeries(timeline, 'send → ACK p50', PALETTE[0], (e) => e.ackP50, true),
                timeSeries(timeline, 'send → ACK p99', PALETTE[0], (e) => e.ackP99),
                timeSeries(timeline, 'send → delivery p50', PALETTE[1], (e) => e.deliveryP50, true),
                timeSeries(timeline, 'send → delivery p99', PALETTE[1], (e) => e.deliveryP99),
              ],
          markers,
        },
        'Percentiles of the latencies recorded in each second, from the scheduled send time (open loop).',
      ),
    );
  }

  const distributions: Series[] = [];
  let deepest = 1;
  const broken: string[] = [];
  Object.entries(report.histograms ?? {}).forEach(([name, encoded]) => {
    let h: LatencyHistogram;
    try {
      h = LatencyHistogram.decode(String(encoded));
    } catch {
      broken.push(name);
      return;
    }
    if (h.count === 0) return;
    const points = distributionPoints(h);
    deepest = Math.max(deepest, points.at(-1)?.[0] ?? 1);
    distributions.push({ name: `${HISTOGRAM_NAMES[name] ?? name} (n=${compact(h.count)})`, color: PALETTE[distributions.length % PALETTE.length]!, points, dots: false });
  });
  out.push(
    figure(
      { id: 'distribution', title: 'Latency distribution', x: { label: 'percentile', min: 0, max: deepest, ticks: percentileTicks(deepest) }, y: { label: 'latency (ms)', min: 0 }, series: distributions },
      `The whole run's HDR histograms: latency at each percentile, the percentile axis log-scaled as 1/(1 − p), down to one sample in the count.${broken.length ? ` Unreadable: ${broken.join(', ')}.` : ''}`,
    ),
  );

  out.push(figure({ id: 'connections', title: 'Open sessions', x, y: { label: 'sessions', min: 0 }, series: [timeSeries(timeline, 'open sessions', PALETTE[2], (e) => e.open)], markers }, 'Sessions open at the end of each second, over all workers.'));

  const samples = report.server?.samples ?? [];
  if (samples.length > 0) {
    const serverX = { ...x, max: Math.max(x.max ?? 0, ...samples.map((s) => seconds(s.t))) };
    out.push(figure({ id: 'server-memory', title: 'Server memory', x: serverX, y: { label: 'RSS (MiB)', min: 0 }, series: [{ name: 'resident set size', color: PALETTE[3], points: samples.map((s) => [seconds(s.t), s.rssBytes / 1048576] as const) }], markers }, 'Sampled once a second (/proc or the metrics endpoint).'));
    if (samples.some((s) => s.cpuPercent !== undefined)) {
      out.push(figure({ id: 'server-cpu', title: 'Server CPU', x: serverX, y: { label: '% of one core', min: 0 }, series: [{ name: 'CPU', color: PALETTE[4], points: samples.map((s) => [seconds(s.t), s.cpuPercent ?? null] as const) }], markers }, 'CPU time between samples, in percent of one core.'));
    }
  }
  return `<div class="charts">${out.join('\n')}</div>${samples.length === 0 ? '<p class="sub">The server was not sampled (give --pid or --metrics-url).</p>' : ''}`;
}

function tables(report: LoadReport): string {
  const o = report.options;
  const s = report.sessions;
  const m = report.messages;
  const addresses = new Set((report.localAddresses ?? []).flat()).size;
  const run = keyValues('Run', [
    ['scenario', text(report.scenario)],
    ['target', `<code>${text(report.url)}</code>`],
    ['run', text(report.run)],
    ['started', text(report.startedAt)],
    ['elapsed (s)', num(seconds(report.elapsedMs))],
    ['workers', num(o.workers)],
    ['source addresses', addresses > 0 ? num(addresses) : 'default'],
    ['count', num(o.count)],
    ['rate', num(o.rate)],
    ['duration (s)', num(seconds(o.durationMs))],
    report.scenario === 'offline' ? ['messages queued', num(o.messages)] : undefined,
    ['body bytes', num(o.bodyBytes)],
    ['max errors', num(o.maxErrors)],
    ...Object.entries(report.phases ?? {}).map(([name, ms]) => [`phase ${name} (s)`, num(typeof ms === 'number' ? seconds(ms) : ms)] as [string, string]),
  ]);
  const sessions = keyValues('Sessions', [
    ['registered', num(s.registered)],
    ['attempted', num(s.attempted)],
    ['accepted', num(s.accepted)],
    s.held !== undefined ? ['held to the end', num(s.held)] : undefined,
    ['peak open', num(s.peakOpen)],
  ]);
  const figureRows = Object.entries(report.figures ?? {}).map(([name, value]) => [name, num(value)] as [string, string]);
  const figures = figureRows.length ? keyValues('Figures', figureRows) : '';
  const messages = keyValues('Messages and accounting', [
    ['sent', num(m.sent)],
    ['achieved rate (/s over --duration)', num(m.achievedRate)],
    ['accepted (send_ok)', num(m.accepted)],
    ['refused', num(m.refused)],
    ['of which TEMPORARILY_UNAVAILABLE (may have been accepted)', num(m.indeterminate)],
    ['unanswered', num(m.unanswered)],
    ['delivered', num(m.delivered)],
    ['receipts', num(m.receipts)],
    ['redelivered (allowed)', num(m.redelivered)],
    ['lost', failing(m.lost)],
    ['duplicated', failing(m.duplicated)],
    ['reordered', failing(m.reordered)],
    ['without receipt', failing(m.receiptsMissing)],
    ['unexpected', failing(m.unexpected)],
    Array.isArray(m.lostExamples) && m.lostExamples.length > 0 ? ['lost, e.g.', `<code>${m.lostExamples.map(text).join(', ')}</code>`] : undefined,
  ]);
  const errors = Object.entries(report.errors ?? {});
  const errorTable = `<div><h3>Errors by kind</h3><table>${errors.length ? `<tr><th>kind</th><th class="n">count</th></tr>${errors.map(([k, v]) => `<tr><td><code>${text(k)}</code></td><td class="n">${failing(v)}</td></tr>`).join('')}` : '<tr><td>none</td></tr>'}</table></div>`;
  const latency = `<div><h3>Latency (ms, from the scheduled time)</h3><table><tr><th></th><th class="n">count</th><th class="n">p50</th><th class="n">p90</th><th class="n">p99</th><th class="n">p99.9</th><th class="n">max</th><th class="n">mean</th></tr>${[
    (report.scenario !== 'connections' && !report.http) || m.sendToAck?.count ? percentileRow('send → ACK', m.sendToAck) : '',
    (report.scenario !== 'connections' && !report.http) || m.sendToDelivery?.count ? percentileRow('send → delivery', m.sendToDelivery) : '',
    report.http ? percentileRow('HTTP (written → answered)', report.http.latency) : '',
    report.http ? percentileRow('HTTP (from schedule)', report.http.latencyFromSchedule) : '',
    percentileRow('connect', s.connectLatency),
    percentileRow('drain', report.drain),
  ].join('')}</table></div>`;
  const mib = (b: number | undefined) => (typeof b === 'number' ? num(Math.round((b / 1048576) * 10) / 10) : '–');
  const cpu = (report.server?.samples ?? []).map((x) => x.cpuPercent).filter((x): x is number => typeof x === 'number');
  const server = report.server
    ? keyValues('Server', [
        ['RSS baseline (MiB)', mib(report.server.baselineRssBytes)],
        ['RSS peak (MiB)', mib(report.server.peakRssBytes)],
        report.server.memoryPerSessionBytes !== undefined ? ['memory per session (KiB)', num(Math.round((report.server.memoryPerSessionBytes / 1024) * 10) / 10)] : undefined,
        cpu.length ? ['CPU peak (% of one core)', num(Math.max(...cpu))] : undefined,
        ['samples', num(report.server.samples.length)],
      ])
    : '';
  // prekeys: the HTTP figures as they are (numbers, and the counts by status), whatever the scenario adds to them.
  const httpRows = Object.entries(report.http ?? {}).flatMap(([name, value]): Array<[string, string]> => {
    if (typeof value === 'number') return [[name, /duplicate|unknown|Mismatch/.test(name) ? failing(value) : num(value)]];
    if (name === 'byStatus' && typeof value === 'object' && value !== null) return [['by status', Object.entries(value).map(([k, v]) => `${text(k)}: ${num(v)}`).join(', ') || 'none']];
    return [];
  });
  const http = report.http ? keyValues('HTTP', httpRows) : '';
  const showMessages = !report.http && (report.scenario !== 'connections' || m.sent > 0);
  return `<div class="tables">${run}${sessions}${figures}${http}${showMessages ? messages : ''}${latency}${errorTable}${server}</div>`;
}

/** The whole HTML document for `report`. */
export function renderHtml(report: LoadReport): string {
  const verdict = report.verdict ?? { pass: false, failures: ['no verdict in the report'] };
  const title = `tickwire load ${String(report.scenario)}: ${verdict.pass ? 'PASS' : 'FAIL'}`;
  const failures = Array.isArray(verdict.failures) && verdict.failures.length ? `<ul>${verdict.failures.map((f) => `<li>${text(f)}</li>`).join('')}</ul>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>tickwire load: ${text(report.scenario)}</h1>
<p class="sub">against <code>${text(report.url)}</code> · run ${text(report.run)} · started ${text(report.startedAt)} · ${num(seconds(report.elapsedMs))} s · ${num(report.options?.workers)} worker(s)</p>
<div class="verdict ${verdict.pass ? 'pass' : 'fail'}">${verdict.pass ? 'PASS: every message accounted for, errors within --max-errors' : 'FAIL'}${failures}</div>
<h2>Charts</h2>
${charts(report)}
<h2>Summary</h2>
${tables(report)}
</body>
</html>
`;
}
