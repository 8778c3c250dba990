// The `tickwire` command as a user runs it: a real child process, real exit codes.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tickwire.js', import.meta.url));
const COMMANDS = ['requirements', 'validate', 'serve', 'chat', 'conformance', 'fuzz', 'host-check', 'load'];

/** Runs `tickwire ARGS` to its end. Independent runs go side by side: each is a fresh Node process. */
function tickwire(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('--help lists the commands; no arguments is a usage error', async (t) => {
  const [help, none, version] = await Promise.all([tickwire('--help'), tickwire(), tickwire('--version')]);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: tickwire <command>/);
  for (const name of COMMANDS) t.match(help.stdout, new RegExp(`^  ${name} +\\S`, 'm'), `--help lists ${name} with its summary`);
  t.equal(none.code, 2);
  t.match(version.stdout, /^\d+\.\d+\.\d+/);
});

t.test('unknown command and bad options exit 2', async (t) => {
  const [unknown, bad, noSuchFlag] = await Promise.all([tickwire('teleport'), tickwire('requirements', '--level', 'sometimes'), tickwire('requirements', '--no-such-flag')]);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command 'teleport'/);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--level must be/);
  t.equal(noSuchFlag.code, 2);
});

t.test('every command has its own --help', async (t) => {
  // The parts' commands are loaded only when named: each must load and print its own help.
  const results = await Promise.all(COMMANDS.map((command) => tickwire(command, '--help')));
  for (const [i, command] of COMMANDS.entries()) {
    t.equal(results[i]!.code, 0, `${command} --help exits 0`);
    t.match(results[i]!.stdout, new RegExp(`Usage: tickwire ${command}`));
  }
});

t.test('requirements looks up by ID and prefix', async (t) => {
  const [one, json, missing] = await Promise.all([tickwire('requirements', 'TRN-1'), tickwire('requirements', 'DLV', '--json'), tickwire('requirements', 'NOPE-1')]);
  t.equal(one.code, 0);
  t.match(one.stdout, /^TRN-1 /m);
  t.match(one.stdout, /1 of \d+ requirements/);
  const parsed = JSON.parse(json.stdout) as Array<{ id: string }>;
  t.ok(parsed.length > 1 && parsed.every((r) => r.id.startsWith('DLV-')));
  t.equal(missing.code, 1);
});

t.test('validate checks frames and bodies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-cli-'));
  const transcript = join(dir, 'frames.jsonl');
  writeFileSync(transcript, ['{"type":"ping","id":"p1"}', '', '{"type":"send","id":"s1"}', 'not json', '{"type":"warp"}'].join('\n'));
  const body = join(dir, 'error.json');
  writeFileSync(body, JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such route' } }));
  const [result, schema, unknownSchema, unreadable, noMode] = await Promise.all([
    tickwire('validate', '--client', '--lines', transcript),
    tickwire('validate', '--schema', 'http/error.json', body),
    tickwire('validate', '--schema', 'http/nope.json', body),
    tickwire('validate', '--client', join(dir, 'missing.json')),
    tickwire('validate', body),
  ]);
  t.equal(result.code, 1);
  t.match(result.stdout, /:1: valid ping/);
  t.match(result.stdout, /:3: INVALID invalid \(send\)/);
  t.match(result.stdout, /:4: not JSON/);
  t.match(result.stdout, /:5: INVALID unknown-type \(warp\)/);
  t.match(result.stdout, /1 valid, 3 invalid/);
  t.equal(schema.code, 0);
  t.equal(unknownSchema.code, 2, 'unknown schema is a usage error');
  t.equal(unreadable.code, 2, 'unreadable input exits 2');
  t.equal(noMode.code, 2, 'a mode is required');
});
