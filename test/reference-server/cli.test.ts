// `tickwire serve` as an operator runs it: a child process, the "serving on" line, /healthz, SIGTERM → exit 0, and
// exit 2 for bad options.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, Keys } from './http/harness.ts';
import { MUTANTS } from '../../reference-server/mutants.ts';

const BIN = fileURLToPath(new URL('../../bin/tickwire.js', import.meta.url));

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, TICKWIRE_WINDOW: '' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

t.test('serve: prints the URL, answers /healthz, exits 0 on SIGTERM', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickwire-serve-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', '--prekey-low-water', '5'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TICKWIRE_PREKEY_LOW_WATER: '7', TICKWIRE_LINK_CODE_TTL_SEC: '120' },
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no "serving on" line within 30 s; stderr: ${stderr}`)), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /^tickwire serving on (http:\/\/127\.0\.0\.1:\d+) \(pid \d+\)$/m.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before serving; stderr: ${stderr}`)));
  });
  const health = await fetch(`${url}/healthz`);
  t.equal(health.status, 200);
  t.same(await health.json(), { status: 'ok' });
  // A flag wins over its variable (prekeyLowWater); a variable alone sets its limit (linkCodeTtlSec).
  const keys = new Keys();
  const device = keys.device();
  const registered = await call(url, 'POST', '/v1/accounts', { body: { username: keys.username('cli'), device } });
  t.equal(registered.status, 201);
  const me = { ...(registered.body as { userId: string; deviceId: number }), secret: device.secret };
  const count = await call(url, 'GET', '/v1/keys/count', { auth: me });
  t.equal((count.body as { lowWater: number }).lowWater, 5, '--prekey-low-water beats TICKWIRE_PREKEY_LOW_WATER');
  const before = Date.now();
  const code = await call(url, 'POST', '/v1/devices/link-codes', { auth: me });
  const expiresAt = (code.body as { expiresAt: number }).expiresAt;
  t.ok(expiresAt >= before + 120_000 && expiresAt <= Date.now() + 120_000, 'TICKWIRE_LINK_CODE_TTL_SEC sets linkCodeTtlSec');
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.equal(await exit, 0, 'SIGTERM: graceful close, exit 0');
  t.notMatch(stderr, /"level":"error"/);
});

t.test('serve --help lists every option and limit with its default', async (t) => {
  const help = run('serve', '--help');
  t.equal(help.code, 0);
  for (const flag of ['--port', '--host', '--data-dir', '--tls-cert', '--tls-key', '--log-level', '--max-frame-bytes', '--registrations-per-minute', '--link-code-ttl-sec', '--prekey-low-water']) {
    t.match(help.stdout, flag);
  }
  t.match(help.stdout, /default 262144/);
  t.match(help.stdout, /TICKWIRE_MAX_FRAME_BYTES/);
});

t.test('bad options exit 2 with a message', async (t) => {
  const unknown = run('serve', '--no-such-flag', '1');
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown option --no-such-flag/);
  const notNumber = run('serve', '--port', 'eighty');
  t.equal(notNumber.code, 2);
  t.match(notNumber.stderr, /--port must be/);
  const belowMinimum = run('serve', '--max-frame-bytes', '1000', '--idle-timeout-ms', '5');
  t.equal(belowMinimum.code, 2);
  t.match(belowMinimum.stderr, /maxFrameBytes must be at least 65536/);
  t.match(belowMinimum.stderr, /idleTimeoutMs must be at least 30000/, 'every problem is listed');
  const tlsHalf = run('serve', '--tls-cert', 'cert.pem');
  t.equal(tlsHalf.code, 2);
  t.match(tlsHalf.stderr, /--tls-cert and --tls-key go together/);
  const missingValue = run('serve', '--port');
  t.equal(missingValue.code, 2);
  const badLevel = run('serve', '--log-level', 'loud');
  t.equal(badLevel.code, 2);
});

t.test('serve --test-mutant: listed for testing the conformance suite only; unknown names are a usage error', async (t) => {
  const help = run('serve', '--help');
  const section = help.stdout.slice(help.stdout.indexOf('For testing the conformance suite only'));
  t.match(section, /^For testing the conformance suite only/, 'the option sits under its own heading');
  t.match(section, /--test-mutant <name>/);
  for (const mutant of MUTANTS) t.match(section, mutant.name, `help lists ${mutant.name}`);
  const unknown = run('serve', '--test-mutant', 'no-such-mutant');
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown mutant 'no-such-mutant'/);
  t.match(unknown.stderr, MUTANTS[0].name, 'the message lists the known mutants');
});
