// The `tickwire` command as a user runs it: a real child process, real exit codes.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tickwire.js', import.meta.url));

function tickwire(...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

t.test('--help lists the commands; no arguments is a usage error', async (t) => {
  const help = tickwire('--help');
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: tickwire <command>/);
  for (const name of ['requirements', 'validate', 'serve', 'chat', 'conformance', 'fuzz', 'host-check', 'load']) {
    t.match(help.stdout, new RegExp(`^  ${name} +\\S`, 'm'), `--help lists ${name} with its summary`);
  }
  t.equal(tickwire().code, 2);
  t.match(tickwire('--version').stdout, /^\d+\.\d+\.\d+/);
});

t.test('unknown command and bad options exit 2', async (t) => {
  const unknown = tickwire('teleport');
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command 'teleport'/);
  const bad = tickwire('requirements', '--level', 'sometimes');
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--level must be/);
  t.equal(tickwire('requirements', '--no-such-flag').code, 2);
});

t.test('every command has its own --help', async (t) => {
  // The parts' commands are loaded only when named: each must load and print its own help.
  for (const command of ['requirements', 'validate', 'serve', 'chat', 'conformance', 'fuzz', 'host-check', 'load']) {
    const result = tickwire(command, '--help');
    t.equal(result.code, 0, `${command} --help exits 0`);
    t.match(result.stdout, new RegExp(`Usage: tickwire ${command}`));
  }
});

t.test('requirements looks up by ID and prefix', async (t) => {
  const one = tickwire('requirements', 'TRN-1');
  t.equal(one.code, 0);
  t.match(one.stdout, /^TRN-1 /m);
  t.match(one.stdout, /1 of \d+ requirements/);
  const json = tickwire('requirements', 'DLV', '--json');
  const parsed = JSON.parse(json.stdout) as Array<{ id: string }>;
  t.ok(parsed.length > 1 && parsed.every((r) => r.id.startsWith('DLV-')));
  t.equal(tickwire('requirements', 'NOPE-1').code, 1);
});

t.test('validate checks frames and bodies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-cli-'));
  const transcript = join(dir, 'frames.jsonl');
  writeFileSync(transcript, ['{"type":"ping","id":"p1"}', '', '{"type":"send","id":"s1"}', 'not json', '{"type":"warp"}'].join('\n'));
  const result = tickwire('validate', '--client', '--lines', transcript);
  t.equal(result.code, 1);
  t.match(result.stdout, /:1: valid ping/);
  t.match(result.stdout, /:3: INVALID invalid \(send\)/);
  t.match(result.stdout, /:4: not JSON/);
  t.match(result.stdout, /:5: INVALID unknown-type \(warp\)/);
  t.match(result.stdout, /1 valid, 3 invalid/);

  const body = join(dir, 'error.json');
  writeFileSync(body, JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such route' } }));
  t.equal(tickwire('validate', '--schema', 'http/error.json', body).code, 0);
  t.equal(tickwire('validate', '--schema', 'http/nope.json', body).code, 2, 'unknown schema is a usage error');
  t.equal(tickwire('validate', '--client', join(dir, 'missing.json')).code, 2, 'unreadable input exits 2');
  t.equal(tickwire('validate', body).code, 2, 'a mode is required');
});
