// startServer itself: configuration refusal, TLS, and logs that never carry secrets or keys [SEC-1] [SEC-2].
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, defaultLimitValues } from '../../reference-server/config.ts';
import { createLogger } from '../../reference-server/logger.ts';
import { ConfigError, startServer } from '../../reference-server/server.ts';
import { call, Keys } from './http/harness.ts';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tickwire-server-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a bad configuration is refused with every problem listed', async (t) => {
  const config = defaultConfig({ port: 70000, dataDir: tempDir(t), limits: { ...defaultLimitValues(), window: 0, maxHttpBodyBytes: 1 } });
  await t.rejects(startServer(config), ConfigError);
  const error: unknown = await startServer(config).then(
    (server) => server.close(),
    (e: unknown) => e,
  );
  t.ok(error instanceof ConfigError && error.problems.length >= 3, error instanceof ConfigError ? error.problems.join('; ') : 'not a ConfigError');
});

t.test('TLS: https URL, and the API answers over it', async (t) => {
  const dir = tempDir(t);
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  } catch {
    t.comment('skipped: openssl is not available');
    return;
  }
  const server = await startServer(defaultConfig({ port: 0, dataDir: join(dir, 'data'), logLevel: 'silent', tls: { certFile, keyFile } }));
  t.teardown(() => server.close());
  t.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const body = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(`${server.url}/healthz`, { ca: readFileSync(certFile) }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
  t.same(JSON.parse(body), { status: 'ok' });
});

t.test('logs carry no secrets, keys or bodies [SEC-1] [SEC-2]', async (t) => {
  const lines: string[] = [];
  const log = createLogger('debug', (line) => lines.push(line));
  const server = await startServer(defaultConfig({ port: 0, dataDir: tempDir(t), logLevel: 'debug' }), { log });
  const keys = new Keys(7);
  const device = keys.device('phone', keys.preKeys(1, 2));
  const registered = await call(server.url, 'POST', '/v1/accounts', { body: { username: keys.username('log'), device } });
  t.equal(registered.status, 201);
  const me = { ...(registered.body as { userId: string; deviceId: number }), secret: device.secret };
  await call(server.url, 'GET', '/v1/devices', { auth: me });
  await call(server.url, 'GET', '/v1/devices', { auth: { ...me, secret: keys.secret() } });
  await call(server.url, 'PUT', '/v1/keys/signed', { auth: me, raw: '{"broken' });
  await server.close();
  const all = lines.join('');
  t.ok(lines.length > 3, 'the server logged');
  for (const secretish of [device.secret, device.identityKey, device.signedPreKey.publicKey, device.signedPreKey.signature, device.oneTimePreKeys[0]!.publicKey]) {
    t.notOk(all.includes(secretish), 'no secret or key material in the logs');
  }
  t.notMatch(all, /Basic /);
  t.notMatch(all, /broken/);
});
