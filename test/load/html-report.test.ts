// The HTML report of `tickwire load` (load/html-report.ts) and the per-second timeline behind it, from one short
// real run (`pairs`, 2 workers, 2 s) against a reference server the test starts: the timeline has one entry per
// second and adds up to the totals; the HTML is self-contained, has a chart per view with the series' points,
// `tickwire load report` renders the same page from the saved JSON, and hostile strings in a report are escaped.
// No assertion about speed.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LatencyHistogram } from '../../load/histogram.ts';
import { distributionPoints, percentileX, renderHtml } from '../../load/html-report.ts';
import type { LoadReport } from '../../load/report.ts';
import { LoadServer, TICKWIRE_BIN } from '../../load/server-process.ts';
import { escapeHtml, niceTicks, renderLineChart } from '../../load/svg-chart.ts';
import { runNode } from '../lib/run-node.ts';

const dir = mkdtempSync(join(tmpdir(), 'tickwire-load-html-'));
const server = await LoadServer.start();
t.teardown(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const load = (args: string[]) => runNode([TICKWIRE_BIN, 'load', ...args]);

/** The <svg> element with data-chart="id", or undefined. */
function chart(html: string, id: string): string | undefined {
  return new RegExp(`<svg [^>]*data-chart="${id}"[\\s\\S]*?</svg>`).exec(html)?.[0];
}

/** The points of every polyline of series `name` in `svg`. */
function seriesPoints(svg: string, name: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const match of svg.matchAll(new RegExp(`<polyline data-series="${name}"[^>]* points="([^"]*)"`, 'g'))) {
    for (const pair of match[1]!.split(' ')) {
      const [x, y] = pair.split(',').map(Number);
      out.push([x!, y!]);
    }
  }
  return out;
}

/** What a self-contained page must not have: anything fetched from elsewhere. */
function assertSelfContained(t: Test, html: string): void {
  t.notMatch(html, /<link\b/i, 'no <link>');
  t.notMatch(html, /<script\b/i, 'no script at all');
  t.notMatch(html, /<(?:img|iframe|object|embed|audio|video|source)\b/i, 'no embedded resources');
  t.notMatch(html, /<[^>]*\s(?:src|href|xlink:href|action)\s*=/i, 'no src or href attribute in any tag');
  t.notMatch(html, /(?:https?:)?\/\/[^\s"'<]*\.(?:js|css|woff2?|ttf|png|svg)\b/i, 'no URL of a resource');
  t.notMatch(html, /@import|url\(/i, 'no CSS import or url()');
}

const output = join(dir, 'pairs.json');
const htmlFile = join(dir, 'pairs.html');
const run = await load(['pairs', '--url', server.url, '--pid', String(server.pid), '--quiet', '--count', '10', '--rate', '200', '--duration', '2s', '--workers', '2', '--output', output, '--html', htmlFile]);
const report = JSON.parse(readFileSync(output, 'utf8')) as LoadReport;
const html = readFileSync(htmlFile, 'utf8');

t.test('the run passes and its timeline has one entry per second, adding up to the totals', async (t) => {
  t.equal(run.code, 0, `exit 0\n${run.stdout}\n${run.stderr}`);
  t.ok(report.verdict.pass, report.verdict.failures.join('; '));
  const timeline = report.timeline;
  t.ok(Array.isArray(timeline) && timeline.length > 0);
  t.same(timeline.map((e) => e.t), timeline.map((_, i) => (i + 1) * 1000), 'an entry per second, t the end of the second');
  // The last entry closes with the workers' results: after the last barrier, before the workers have exited.
  const lastBarrier = Math.max(...Object.values(report.phases));
  t.ok(timeline.at(-1)!.t > lastBarrier && timeline.at(-1)!.t < report.elapsedMs + 1000, `the seconds cover the run (${timeline.length} entries, ${report.elapsedMs} ms)`);
  const sum = (key: 'sent' | 'accepted' | 'delivered' | 'errors') => timeline.reduce((n, e) => n + e[key], 0);
  t.equal(sum('sent'), report.messages.sent, 'sent over the timeline == messages.sent');
  t.equal(report.messages.sent, 400);
  t.equal(sum('accepted'), report.messages.accepted, 'accepted over the timeline == messages.accepted');
  t.equal(sum('delivered'), report.messages.delivered, 'delivered over the timeline == messages.delivered');
  t.equal(sum('errors'), 0);
  t.equal(Math.max(...timeline.map((e) => e.open)), 20, 'all 20 sessions open while sending');
  t.equal(timeline.at(-1)!.open, 0, 'closed at the end');
  for (const e of timeline) {
    t.equal(e.ackP50 !== null, e.accepted > 0, `t=${e.t}: ack percentiles exactly when acks were counted`);
    t.equal(e.deliveryP99 !== null, e.delivered > 0, `t=${e.t}: delivery percentiles exactly when deliveries were counted`);
    if (e.ackP50 !== null) t.ok(e.ackP50 <= e.ackP99!, 'p50 ≤ p99');
  }
});

t.test('the HTML is self-contained and has a chart per view with the series points', async (t) => {
  t.match(html, /^<!doctype html>/);
  assertSelfContained(t, html);
  const timeline = report.timeline;
  const throughput = chart(html, 'throughput');
  t.ok(throughput, 'throughput chart');
  t.equal(seriesPoints(throughput!, 'sent').length, timeline.length, 'a point per second of sent messages');
  t.equal(seriesPoints(throughput!, 'delivered').length, timeline.length);
  t.equal(seriesPoints(throughput!, 'accepted \\(send_ok\\)').length, timeline.length);
  const latency = chart(html, 'latency');
  t.ok(latency, 'latency chart');
  const withAcks = timeline.filter((e) => e.ackP99 !== null).length;
  t.equal(seriesPoints(latency!, 'send → ACK p99').length + (latency!.match(/<circle data-series="send → ACK p99"/g)?.length ?? 0), withAcks, 'a point per second with acks');
  const connections = chart(html, 'connections');
  t.equal(seriesPoints(connections!, 'open sessions').length, timeline.length);
  const distribution = chart(html, 'distribution');
  t.ok(distribution, 'distribution chart');
  t.match(distribution!, /send → ACK \(n=400\)/);
  t.match(distribution!, /send → delivery \(n=400\)/);
  t.match(distribution!, />99%</, 'the percentile axis is labelled in nines');
  const ackCurve = seriesPoints(distribution!, 'send → ACK \\(n=400\\)');
  t.ok(ackCurve.length > 10, 'the ACK percentile curve has points');
  for (let i = 1; i < ackCurve.length; i++) t.ok(ackCurve[i]![1] <= ackCurve[i - 1]![1], 'latency never falls as the percentile rises (SVG y grows downward)');
  t.ok(chart(html, 'server-memory'), 'server memory chart (--pid)');
  t.ok(chart(html, 'server-cpu'), 'server cpu chart');
  t.equal(html.match(/<svg /g)?.length, 6, 'six charts');
  t.match(html, /PASS/);
  for (const m of ['lost', 'duplicated', 'reordered', 'without receipt']) t.match(html, new RegExp(`<th>${m}</th>`), `accounting row ${m}`);
});

t.test('`tickwire load report` renders the same page from the saved JSON', async (t) => {
  const again = join(dir, 'again.html');
  const result = await load(['report', '--html', again, output]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, /PASS/);
  t.equal(readFileSync(again, 'utf8'), html);
  const notReport = join(dir, 'not-report.json');
  writeFileSync(notReport, '{"tool":"something-else"}');
  const refused = await load(['report', '--html', join(dir, 'x.html'), notReport]);
  t.equal(refused.code, 2);
  t.match(refused.stderr, /not a tickwire load report/);
});

t.test('hostile strings in a report are escaped', async (t) => {
  const ack = new LatencyHistogram();
  ack.record(1);
  // A report edited by hand: its scenario may be any string.
  const hostile: Omit<LoadReport, 'scenario'> & { scenario: string } = structuredClone(report);
  hostile.scenario = '</title><script>alert(1)</script>';
  hostile.url = 'http://127.0.0.1:1/"><img src=x onerror=alert(2)>';
  hostile.run = "'><svg onload=alert(3)>";
  hostile.errors = { '<b>closed</b>:"1006"': 1 };
  hostile.verdict = { pass: false, failures: ['<script>alert(4)</script>'] };
  hostile.histograms = { ...hostile.histograms, '"><svg onload=alert(5)>': ack.encode() };
  hostile.phases = { '<i>phase</i>': 100 };
  const page = renderHtml(hostile as LoadReport);
  assertSelfContained(t, page);
  t.notMatch(page, /<img|<b>|<i>|<svg onload/i);
  t.match(page, '&#60;/title&#62;&#60;script&#62;alert(1)&#60;/script&#62;');
  t.match(page, '&#34;&#62;&#60;img src=x onerror=alert(2)&#62;');
  t.match(page, '&#60;b&#62;closed&#60;/b&#62;:&#34;1006&#34;');
  t.match(page, 'data-series="&#34;&#62;&#60;svg onload=alert(5)&#62; (n=1)"');
});

t.test('chart parts: escaping, ticks, gaps, the percentile axis', async (t) => {
  t.equal(escapeHtml(`<a href="x">'&'</a>`), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  t.same(niceTicks(0, 9.3).values, [0, 2, 4, 6, 8, 10]);
  t.same(niceTicks(0, 480).values, [0, 100, 200, 300, 400, 500]);
  t.same(niceTicks(5, 5).values.length > 1, true, 'an empty range still gets an axis');
  const svg = renderLineChart({ id: 'gaps', title: 'gaps', x: { label: 'x' }, y: { label: 'y' }, series: [{ name: 's', color: '#000', points: [[0, 1], [1, 2], [2, null], [3, 4], [4, null], [5, 1], [6, 2]] }] });
  t.equal(svg.match(/<polyline data-series="s"/g)?.length, 2, 'a null breaks the line');
  t.equal(svg.match(/<circle data-series="s"/g)?.length, 1, 'a lone point is a dot');
  t.match(renderLineChart({ id: 'none', title: 'none', x: { label: 'x' }, y: { label: 'y' }, series: [] }), /no data/);
  t.equal(percentileX(0), 0);
  t.ok(Math.abs(percentileX(99) - 2) < 1e-9);
  t.ok(Math.abs(percentileX(99.999) - 5) < 1e-6);
  const h = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) h.record(i);
  const points = distributionPoints(h);
  t.equal(points[0]![0], 0);
  t.ok(Math.abs(points.at(-1)![0] - 3) < 1e-9, 'down to one sample in a thousand: 99.9 %');
  t.ok(Math.abs(points.at(-1)![1] - 999) <= 1, 'p99.9 of 1..1000 ms');
  t.same(distributionPoints(new LatencyHistogram()), []);
});
