// The conformance suite against the reference server, as a user runs it: `tickwire conformance --strict` starts the
// server as a child process, every case passes, and every reporter writes a well-formed report of the same run.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cases } from '../../conformance/cases/index.ts';
import { run, select, type RunReport } from '../../conformance/runner.ts';
import { ReferenceServer } from '../../conformance/server-process.ts';
import { conformance, parseXml } from './helpers.ts';

/**
 * The run takes about a minute and a half: a few cases wait out timers of the spec (the 60 s window of typingPerMinute,
 * PRS-13; idleTimeoutMs, KAL-5), started first so that the others run beside them, and the restart cases run alone
 * after them.
 */
const RUN_TIMEOUT_MS = 180_000;
/** Needs a registration limit low enough to reach; the suite raises the built-in server's, so it runs apart below. */
const RATE_LIMIT_CASE = '2.2/registration-rate-limit';
t.setTimeout(RUN_TIMEOUT_MS + 60_000);

t.test('every case passes against the reference server, in strict mode, with every reporter', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-conformance-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = (name: string) => join(dir, name);
  const result = await conformance(['--strict', '--seed', '12345', '--reporter', `json=${out('r.json')},junit=${out('r.xml')},html=${out('r.html')},tap=${out('r.tap')}`, '--reporter', 'terminal'], RUN_TIMEOUT_MS);
  const report = JSON.parse(readFileSync(out('r.json'), 'utf8')) as RunReport;
  const notOk = report.results.filter((r) => r.verdict !== 'OK' && !(r.id === RATE_LIMIT_CASE && r.verdict === 'UNSUPPORTED')).map((r) => `${r.verdict} ${r.id}: ${r.failure?.message ?? r.reason ?? ''}`);
  t.same(notOk, [], `every case OK (${RATE_LIMIT_CASE} UNSUPPORTED: the built-in server's registration limit is raised)`);
  t.equal(result.code, 0, result.stdout.slice(-3000) + result.stderr.slice(-2000));
  t.match(result.stdout, /conformance: PASS/);

  t.test('json report shape', async (t) => {
    t.equal(report.tool, 'tickwire-conformance');
    t.equal(report.formatVersion, 1);
    t.equal(report.exitCode, 0);
    t.equal(report.options.seed, 12345);
    t.equal(report.options.strict, true);
    t.equal(report.summary.total, cases.length);
    t.equal(report.results.length, cases.length);
    for (const r of report.results) {
      t.match(r, { id: String, section: String, title: String, level: /^(must|should)$/, requirements: Array, verdict: String, durationMs: Number });
    }
    t.ok(report.coverage.rows.length > 100, 'coverage lists every server requirement');
    const row = report.coverage.rows.find((x) => x.id === 'DLV-12');
    t.equal(row?.status, 'passed');
    t.ok(row!.cases.some((c) => c.id === '4.6/invalid-ack'));
    t.same(report.coverage.uncovered, report.coverage.rows.filter((x) => x.status === 'uncovered').map((x) => x.id), 'uncovered requirements are listed');
    t.equal(report.coverage.rows.find((x) => x.id === 'AUT-2')?.status, 'internal');
  });

  t.test('junit report is well-formed with one testcase per case', async (t) => {
    const root = parseXml(readFileSync(out('r.xml'), 'utf8'));
    t.equal(root.name, 'testsuites');
    t.equal(root.attributes['tests'], String(cases.length));
    t.equal(root.attributes['failures'], '0');
    const testcases = root.children.flatMap((suite) => {
      t.equal(suite.name, 'testsuite');
      return suite.children;
    });
    t.equal(testcases.length, cases.length);
    t.ok(testcases.every((c) => c.name === 'testcase' && c.attributes['name'] && c.attributes['classname']));
  });

  t.test('tap and html reports', async (t) => {
    const tap = readFileSync(out('r.tap'), 'utf8');
    t.match(tap, /^TAP version 14\n1\.\.\d+\n/);
    t.equal((tap.match(/^ok \d+ /gm) ?? []).length, cases.length);
    const html = readFileSync(out('r.html'), 'utf8');
    t.match(html, /^<!DOCTYPE html>/);
    t.match(html, /Tickwire conformance: <span class="OK">PASS<\/span>/);
    t.match(html, /Coverage per spec section/);
    t.notMatch(html, /<script|<link|src="http/, 'self-contained');
  });
});

t.test('the registration rate-limit case passes against a server with the default-sized limit', async (t) => {
  const server = await ReferenceServer.start(['--registrations-per-minute', '10']);
  t.teardown(() => server.stop());
  const report = await run(select(cases, { grep: [`^${RATE_LIMIT_CASE}$`] }), { url: server.url, concurrency: 1, timeoutMs: 10_000, strict: true, seed: 12345 });
  t.equal(report.results[0]?.verdict, 'OK', report.results[0]?.failure?.message ?? report.results[0]?.reason ?? '');
});
