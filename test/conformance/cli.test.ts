// `tickwire conformance` as a user runs it: help, listing, bad arguments, an unreachable server, and the failure path
// against a deliberately wrong fake server (test/conformance/fake-server.ts): the requirement sentence, Expected vs
// Actual and the transcript in every report, NON-STRICT vs --strict, per-case timeouts, NOT-RUN without a restart.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requirement } from '../../spec/index.ts';
import { UsageError } from '../../bin/command.ts';
import { conformanceCommand, parseArgs } from '../../conformance/cli.ts';
import { cases } from '../../conformance/cases/index.ts';
import { renderTerminal } from '../../conformance/reporters/terminal.ts';
import { run, select } from '../../conformance/runner.ts';
import type { RunReport } from '../../conformance/runner.ts';
import { startFakeServer } from './fake-server.ts';
import { conformance, parseXml } from './helpers.ts';

t.test('help and list', async (t) => {
  t.match(conformanceCommand.help, /Usage: tickwire conformance/);
  t.match(conformanceCommand.help, /--restart-cmd/);
  const list = await conformance(['--list', '--section', '2.9,4.6', '--requirement', 'AUT-12,DLV-12']);
  t.equal(list.code, 0);
  t.match(list.stdout, /^4\.6\/invalid-ack\s+must\s+DLV-12/m);
  t.match(list.stdout, /^2\.9\/auth-failed/m);
  t.notMatch(list.stdout, /^4\.2/m);
  t.match(list.stdout, /\d+ of \d+ cases/);
  t.same(select(cases, { grep: ['invalid-ack$'] }).map((c) => c.id), ['4.6/invalid-ack']);
});

t.test('bad arguments are usage errors; an unreachable server exits 2', async (t) => {
  for (const args of [['--concurrency', '0'], ['--reporter', 'xml'], ['--frobnicate'], ['--url', 'ftp://x'], ['--requirement', 'dlv12'], ['--reporter', 'json,tap'], ['--ready-url', 'http://x/'], ['--timeout'], ['--model-runs', '0']]) {
    t.throws(() => parseArgs(args), UsageError, args.join(' '));
  }
  const parsed = parseArgs(['--section', '4.6,4.7', '--reporter', 'junit', '--output', 'x.xml', '--seed', '7']);
  t.same(parsed.selection.section, ['4.6', '4.7']);
  t.same(parsed.reporters, [{ name: 'junit', file: 'x.xml' }, { name: 'terminal' }]);
  t.equal(parsed.seed, 7);
  t.equal(parseArgs(['--model-runs', '50']).modelRuns, 50);
  const bad = await conformance(['--grep', 'no-case-has-this-name']);
  t.equal(bad.code, 2, bad.stderr);
  const dead = await conformance(['--url', 'http://127.0.0.1:9', '--grep', '1.1/health']);
  t.equal(dead.code, 2);
  t.match(dead.stdout + dead.stderr, /unreachable/);
});

t.test('a failing case reports the requirement sentence, Expected vs Actual and the transcript', async (t) => {
  const fake = await startFakeServer();
  t.teardown(() => fake.close());
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-conformance-fail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = await conformance(['--url', fake.url, '--grep', '^4.2/send-ok-and-online-push', '--reporter', `terminal,json=${join(dir, 'r.json')},junit=${join(dir, 'r.xml')},html=${join(dir, 'r.html')},tap=${join(dir, 'r.tap')}`]);
  t.equal(result.code, 1, result.stderr);
  const sentence = requirement('MSG-12')!.text;
  t.match(result.stdout, /FAILED 4\.2\/send-ok-and-online-push \[MUST\]/);
  t.match(result.stdout, /failed requirement MSG-12/);
  t.match(result.stdout.replace(/\s+/g, ' '), sentence.slice(0, 60).replace(/\s+/g, ' '));
  t.match(result.stdout, /Expected: .*"messageId":"m-/);
  t.match(result.stdout, /Actual: {3}.*wrong-message-id/);
  t.match(result.stdout, /→ \{"type":"send"/, 'the transcript shows the send');
  t.match(result.stdout, /← \{"type":"send_ok".*wrong-message-id/, 'and the wrong answer');

  const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as RunReport;
  const failed = report.results[0]!;
  t.equal(failed.verdict, 'FAILED');
  t.equal(failed.failure?.requirementId, 'MSG-12');
  t.equal(failed.failure?.requirementText, sentence);
  t.ok(failed.transcript?.some((line) => JSON.stringify(line.data).includes('wrong-message-id')));
  t.equal(report.coverage.rows.find((r) => r.id === 'MSG-12')?.status, 'failed');

  const xml = parseXml(readFileSync(join(dir, 'r.xml'), 'utf8'));
  t.equal(xml.attributes['failures'], '1');
  const testcase = xml.children[0]!.children[0]!;
  t.equal(testcase.children[0]?.name, 'failure');
  t.match(testcase.children[0]!.text, /wrong-message-id/);
  const html = readFileSync(join(dir, 'r.html'), 'utf8');
  t.match(html, /<span class="FAILED">FAIL<\/span>/);
  t.match(html, /4\.2\/send-ok-and-online-push/);
  t.match(html, /wrong-message-id/);
  t.match(readFileSync(join(dir, 'r.tap'), 'utf8'), /^not ok 1 4\.2\/send-ok-and-online-push/m);
});

t.test('should-level failures are NON-STRICT unless --strict; timeouts fail; restart cases are NOT-RUN', async (t) => {
  const fake = await startFakeServer();
  t.teardown(() => fake.close());
  const picked = select(cases, { grep: ['^1.1/health-probe', '^4.14/deleted-device', '^1.5/repeated-request-ids'] });
  t.equal(picked.length, 3);
  const options = { url: fake.url, concurrency: 3, timeoutMs: 1500, seed: 1 };
  const started = Date.now();
  const lenient = await run(picked, { ...options, strict: false });
  t.ok(Date.now() - started < 10_000, 'the timeout bounds the case');
  const verdicts = Object.fromEntries(lenient.results.map((r) => [r.id, r.verdict]));
  t.same(verdicts, { '1.1/health-probe': 'NON-STRICT', '1.5/repeated-request-ids': 'FAILED', '4.14/deleted-device-stays-revoked-after-restart': 'NOT-RUN' });
  t.match(lenient.results.find((r) => r.id.startsWith('4.14'))?.reason, /--restart-cmd/);
  t.equal(lenient.results.find((r) => r.id.startsWith('1.5'))?.failure?.requirementId, 'TRN-30');
  t.equal(lenient.exitCode, 1);
  t.match(renderTerminal(lenient), /NON-STRICT\s+1\.1\/health-probe/);
  const onlyShould = await run(picked.filter((c) => c.level === 'should'), { ...options, strict: false });
  t.equal(onlyShould.exitCode, 0, 'a NON-STRICT failure alone passes the run');
  const strict = await run(picked.filter((c) => c.level === 'should'), { ...options, strict: true });
  t.equal(strict.results[0]?.verdict, 'FAILED');
  t.equal(strict.exitCode, 1);
});

t.test('restart commands: one per kind, each run on demand, then the ready URL is polled', async (t) => {
  t.throws(() => parseArgs(['--graceful-restart-cmd', 'true']), UsageError, 'needs --url');
  t.throws(() => parseArgs(['--url', 'http://127.0.0.1:1', '--fault-cmd', 'true']), UsageError, '--fault-cmd goes with --heal-cmd');
  t.throws(() => parseArgs(['--fault-cmd', 'true', '--heal-cmd', 'true']), UsageError, '--fault-cmd needs --url');
  t.equal(parseArgs(['--url', 'http://127.0.0.1:1', '--graceful-restart-cmd', 'true', '--ready-url', 'http://127.0.0.1:1/up']).gracefulRestartCmd, 'true');
  const { createServer } = await import('node:http');
  let ready = 0;
  const probe = createServer((req, res) => {
    ready++;
    res.writeHead(req.url === '/up' ? 200 : 404).end();
  });
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  t.teardown(() => probe.close());
  const port = (probe.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-conformance-restart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { CommandRestarter } = await import('../../conformance/server-process.ts');
  const graceful = new CommandRestarter({ graceful: `echo graceful >> ${join(dir, 'log')}` }, `http://127.0.0.1:${port}/up`);
  t.same([...graceful.kinds], ['graceful']);
  await graceful.restart('graceful');
  t.equal(readFileSync(join(dir, 'log'), 'utf8'), 'graceful\n');
  t.ok(ready >= 1, 'the ready URL was polled');
  await t.rejects(graceful.restart('crash'), RangeError, 'no crash command');
  const failing = new CommandRestarter({ crash: 'exit 3' }, `http://127.0.0.1:${port}/up`);
  await t.rejects(failing.restart('crash'), /--restart-cmd exited with 3/);

  // A crash-restart case is NOT-RUN when only a graceful restart is available, and says which option it needs.
  const fake = await startFakeServer();
  t.teardown(() => fake.close());
  const report = await run(select(cases, { grep: ['^4.14/deleted-device'] }), { url: fake.url, concurrency: 1, timeoutMs: 1500, seed: 1, strict: false, restarter: graceful });
  t.equal(report.results[0]?.verdict, 'NOT-RUN');
  t.match(report.results[0]?.reason, /--restart-cmd/);
});
