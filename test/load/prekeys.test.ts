// The prekeys scenario: the one-time prekey ledger on its own (a planted duplicate handout, keys not as uploaded,
// the end-of-run count range), then the real command, briefly, against reference servers started by the test: one
// with default limits, one whose tiny prekeyBatchMax and prekeyFetchesPerMinute make devices run out of one-time
// prekeys and need extra requesters, and one with the planted bug `prekey-handed-out-twice`, which the run must catch.
// No assertion about speed.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpFailures, mergeHttpFigures, PrekeyLedger, type HttpFigures } from '../../load/prekey-ledger.ts';
import { renderHtml } from '../../load/html-report.ts';
import type { LoadReport } from '../../load/report.ts';
import { LoadServer, TICKWIRE_BIN } from '../../load/server-process.ts';
import { runNode } from '../lib/run-node.ts';

// Several load runs, each with its own server and worker processes: ~100 s alone, more than the default file timeout
// when other jobs share the 2 cores. Nothing here measures speed.
t.setTimeout(600_000);

const dir = mkdtempSync(join(tmpdir(), 'tickwire-load-prekeys-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** common.json#/$defs/publicKey */
const PUBLIC_KEY = /^B[Q-Za-f][A-Za-z0-9+/]{42}$/;

function figures(ledger: PrekeyLedger, over: Partial<HttpFigures> = {}): HttpFigures {
  return { connections: 1, targets: 1, requesters: 1, offered: 10, requests: 10, answered: 10, unanswered: 0, fetches: 10, uploads: 0, uploadsDeferred: 0, byStatus: { '200': 10 }, errors: 0, elapsedMs: 1000, ledger: ledger.summary(), ...over };
}

t.test('ledger: fresh keys have unused ids and the spec encoding', async (t) => {
  const ledger = new PrekeyLedger();
  const device = ledger.device('u1', 1);
  const a = ledger.issue(device, 3);
  const b = ledger.issue(device, 2);
  t.same([...a, ...b].map((k) => k.keyId), [1, 2, 3, 4, 5], 'PKY-9: never a keyId used before');
  for (const key of [...a, ...b]) t.match(key.publicKey, PUBLIC_KEY);
  t.equal(device.upperBound, 5, 'pending keys count against maxStoredPreKeys');
  ledger.uploadAnswered(device, a, 'stored');
  ledger.uploadAnswered(device, b, 'refused');
  t.equal(device.upperBound, 3);
  t.throws(() => ledger.uploadAnswered(device, a, 'stored'), RangeError, 'an upload answers once');
  t.throws(() => ledger.issue(device, 0), RangeError);
});

t.test('ledger: a planted duplicate handout is counted and fails the run (PKY-15)', async (t) => {
  const ledger = new PrekeyLedger();
  const device = ledger.device('u1', 1);
  const keys = ledger.issue(device, 3);
  ledger.uploadAnswered(device, keys, 'stored');
  t.equal(ledger.handout(device, keys[0]!.keyId, keys[0]!.publicKey), 'first');
  t.equal(ledger.handout(device, keys[1]!.keyId, keys[1]!.publicKey), 'first');
  t.equal(ledger.handout(device, keys[0]!.keyId, keys[0]!.publicKey), 'duplicate', 'the same (user, device, keyId) again');
  const s = ledger.summary();
  t.equal(s.prekeysHandedOut, 2);
  t.equal(s.duplicateHandouts, 1);
  t.same(s.duplicateExamples, ['u1.1#1']);
  const failures = httpFailures(figures(ledger));
  t.equal(failures.length, 1);
  t.match(failures[0], /1 one-time prekey\(s\) handed out more than once \(PKY-15\), e\.g\. u1\.1#1/);
  // Two workers' figures add up; the failure survives the merge.
  const clean = new PrekeyLedger();
  const merged = mergeHttpFigures([figures(ledger), figures(clean, { byStatus: { '200': 7, '429': 3 } })])!;
  t.equal(merged.ledger.duplicateHandouts, 1);
  t.same(merged.byStatus, { '200': 17, '429': 3 });
  t.match(httpFailures(merged).join('\n'), /PKY-15/);
  t.same(httpFailures(figures(clean)), [], 'no failure without one');
});

t.test('ledger: keys not as uploaded are unknown handouts (IDN-12, PKY-6, PKY-7)', async (t) => {
  const ledger = new PrekeyLedger();
  const device = ledger.device('u1', 1);
  const stored = ledger.issue(device, 2);
  ledger.uploadAnswered(device, stored, 'stored');
  const refused = ledger.issue(device, 1);
  ledger.uploadAnswered(device, refused, 'refused');
  t.equal(ledger.handout(device, stored[0]!.keyId, stored[1]!.publicKey), 'unknown', 'another publicKey');
  t.equal(ledger.handout(device, refused[0]!.keyId, refused[0]!.publicKey), 'unknown', 'from a refused batch');
  t.equal(ledger.handout(device, 999, stored[0]!.publicKey), 'unknown', 'never uploaded');
  t.equal(ledger.summary().unknownHandouts, 3);
  t.equal(ledger.summary().prekeysHandedOut, 0);
  t.match(httpFailures(figures(ledger)).join('\n'), /3 handed-out one-time prekey\(s\) not as uploaded/);
});

t.test('ledger: the end-of-run count must lie within what uploads and handouts allow', async (t) => {
  const exact = new PrekeyLedger();
  const a = exact.device('u1', 1);
  const keys = exact.issue(a, 3);
  exact.uploadAnswered(a, keys, 'stored');
  exact.handout(a, keys[0]!.keyId, keys[0]!.publicKey);
  t.same(a.countRange(), { low: 2, high: 2 });
  t.ok(exact.checkCount(a, 2));
  t.notOk(exact.checkCount(a, 3), 'a handed-out key came back (PKY-15)');
  t.notOk(exact.checkCount(a, 1), 'a stored key was lost (PKY-8)');
  t.equal(exact.summary().countMismatches, 2);
  t.match(httpFailures(figures(exact)).join('\n'), /2 device\(s\) whose GET \/v1\/keys\/count .* e\.g\. u1\.1: 3 left, expected 2; u1\.1: 1 left, expected 2/);

  // Requests without an answer widen the range: a fetch may have consumed a key, an upload may have stored its batch.
  const loose = new PrekeyLedger();
  const b = loose.device('u2', 1);
  const first = loose.issue(b, 4);
  loose.uploadAnswered(b, first, 'stored');
  loose.fetchUncertain(b);
  const second = loose.issue(b, 2);
  loose.uploadAnswered(b, second, 'uncertain');
  t.same(b.countRange(), { low: 3, high: 6 });
  // A key of the unanswered upload handed out: that batch was stored, and this key of it is gone.
  loose.handout(b, second[0]!.keyId, second[0]!.publicKey);
  t.same(b.countRange(), { low: 3, high: 5 });
  t.ok(loose.checkCount(b, 3));
  t.ok(loose.checkCount(b, 5));
  t.notOk(loose.checkCount(b, 6));
  t.notOk(loose.checkCount(b, 2));
});

t.test('the scenario fails a run that sent far less than --rate × --duration', async (t) => {
  const failures = httpFailures(figures(new PrekeyLedger(), { offered: 100, requests: 50, answered: 50 }));
  t.match(failures.join('\n'), /only 50 of 100 requests/);
  t.match(httpFailures(figures(new PrekeyLedger(), { answered: 0 })).join('\n'), /no HTTP request was answered/);
});

const load = (args: string[]) => runNode([TICKWIRE_BIN, 'load', ...args]);

async function run(t: Test, server: LoadServer, name: string, args: string[], expectCode = 0): Promise<LoadReport> {
  const output = join(dir, `${name}.json`);
  const result = await load(['prekeys', '--url', server.url, '--quiet', '--output', output, ...args]);
  t.equal(result.code, expectCode, `exit ${expectCode}\n${result.stdout}\n${result.stderr}`);
  const report = JSON.parse(readFileSync(output, 'utf8')) as LoadReport;
  t.equal(report.scenario, 'prekeys');
  t.ok(report.http, 'the report has its http section');
  t.match(result.stdout, /^http +requests \d+ of \d+ offered/m, 'the text summary has the http line');
  return report;
}

t.test('prekeys: 10 devices, 100 requests/s for 2 s, every one-time prekey accounted for', async (t) => {
  const server = await LoadServer.start();
  t.teardown(() => server.stop());
  const report = await run(t, server, 'default', ['--count', '10', '--rate', '100', '--duration', '2s', '--upload-ratio', '0.1']);
  const h = report.http!;
  t.ok(report.verdict.pass, report.verdict.failures.join('; '));
  t.same(report.errors, {});
  t.equal(h.offered, 200);
  t.equal(h.requests, 200, 'exactly --rate × --duration requests');
  t.equal(h.answered, 200);
  t.equal(h.unanswered, 0);
  t.equal(h.uploads, 20, 'one request in ten uploads');
  t.equal(h.fetches, 180);
  t.same(h.byStatus, { '200': 200 });
  t.equal(h.errors, 0);
  t.equal(h.latency.count, 200, "autocannon's latency of every answered request");
  t.equal(h.latencyFromSchedule.count, 200);
  t.ok(h.latencyFromSchedule.max >= h.latency.max * 0.99, 'from the schedule is never shorter than from the write');
  // [PKY-15] 100 keys per device and 18 fetches per device: every fetch hands out a key, none twice.
  t.equal(h.prekeysHandedOut, 180);
  t.equal(h.bundlesWithoutPrekey, 0);
  t.equal(h.duplicateHandouts, 0);
  t.equal(h.unknownHandouts, 0);
  t.equal(h.prekeysUploaded, 10 * 100 + 20 * 10);
  t.equal(h.countsChecked, 10);
  t.equal(h.countMismatches, 0);
  t.equal(h.prekeysRemaining, 1200 - 180, 'PKY-10: what is left is what was stored minus what was handed out');
  t.ok(h.throughputRps > 0);
  t.ok(report.histograms['http'] && report.histograms['httpFromSchedule'], 'the histograms travel in the report');
  // The timeline's sent/accepted count HTTP requests here: the HTML report's charts say requests, not messages.
  const html = renderHtml(report);
  t.match(html, /<h3>HTTP requests per second<\/h3>/);
  t.match(html, /data-series="requests"/);
  t.match(html, /data-series="answered"/);
  t.notMatch(html, /Messages per second|data-series="delivered"|send → delivery p99/, 'no message series');
});

t.test('prekeys: devices out of one-time prekeys still answer 200 (PKY-16); fetches spread to stay under the limit (PKY-17)', async (t) => {
  const server = await LoadServer.start(['--prekey-batch-max', '1', '--prekey-fetches-per-minute', '10']);
  t.teardown(() => server.stop());
  const report = await run(t, server, 'small', ['--count', '2', '--rate', '50', '--duration', '2s']);
  const h = report.http!;
  t.ok(report.verdict.pass, report.verdict.failures.join('; '));
  t.same(h.byStatus, { '200': 100 }, 'no 429: no requester exceeded prekeyFetchesPerMinute');
  t.ok(h.requesters > h.targets, `extra requesters registered (${h.requesters} for ${h.targets} targets)`);
  t.ok(h.bundlesWithoutPrekey > 0, 'bundles without a one-time prekey');
  t.equal(h.prekeysHandedOut + h.bundlesWithoutPrekey, h.fetches);
  t.equal(h.duplicateHandouts, 0);
  t.equal(h.countMismatches, 0);
});

t.test('prekeys: a server that hands out a one-time prekey twice fails the run (PKY-15)', async (t) => {
  const server = await LoadServer.start(['--test-mutant', 'prekey-handed-out-twice']);
  t.teardown(() => server.stop());
  const report = await run(t, server, 'mutant', ['--count', '4', '--rate', '50', '--duration', '2s'], 1);
  const h = report.http!;
  t.notOk(report.verdict.pass);
  t.ok(h.duplicateHandouts > 0, `${h.duplicateHandouts} duplicate handouts`);
  t.match(report.verdict.failures.join('\n'), /handed out more than once \(PKY-15\)/);
  t.ok(h.countMismatches > 0, 'the end-of-run counts show the keys that were never consumed');
});

t.test('usage: prekeys options are checked', async (t) => {
  const [wrongScenario, badRatio, remote] = await Promise.all([
    load(['pairs', '--upload-ratio', '0.5', '--url', 'http://127.0.0.1:1']),
    load(['prekeys', '--upload-ratio', '1.5', '--url', 'http://127.0.0.1:1']),
    load(['prekeys', '--url', 'http://192.0.2.1:8080']),
  ]);
  t.equal(wrongScenario.code, 2);
  t.match(wrongScenario.stderr, /prekeys scenario only/);
  t.equal(badRatio.code, 2);
  t.match(badRatio.stderr, /--upload-ratio needs a number in 0\.\.1/);
  t.equal(remote.code, 2);
  t.match(remote.stderr, /--allow-remote/);
});
