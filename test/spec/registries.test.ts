// The registries agree with each other, with the schemas and with the prose.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA_DIR, SPEC_DIR } from '../../spec/schema-files.ts';
import { defaultLimits, errors, errorSpec, limits, routes, validate } from '../../spec/index.ts';

const protocol = readFileSync(join(SPEC_DIR, 'PROTOCOL.md'), 'utf8');

t.test('error registry', async (t) => {
  const codes = errors.map((e) => e.code);
  t.equal(new Set(codes).size, codes.length, 'codes are unique');
  for (const e of errors) {
    t.match(e.code, /^[A-Z][A-Z0-9_]{1,63}$/, `${e.code} is UPPER_SNAKE`);
    t.ok(protocol.includes(e.code), `${e.code} is described in PROTOCOL.md`);
    t.ok(e.transports.length > 0, `${e.code} names its transport`);
    if (e.transports.includes('http')) t.ok(e.httpStatus! >= 400 && e.httpStatus! <= 599, `${e.code} has an HTTP error status`);
    if (e.transports.includes('ws')) t.type(e.fatal, 'boolean', `${e.code} says whether it closes the session`);
    if (e.fatal) t.ok(e.closeCode! >= 1000 && e.closeCode! <= 4999, `${e.code} has a close code`);
    if (e.fatal === false) t.equal(e.closeCode, undefined, `${e.code} is non-fatal and has no close code`);
  }
  for (const code of ['INVALID_FRAME', 'UNKNOWN_FRAME_TYPE', 'MALFORMED_FRAME', 'AUTH_FAILED', 'STALE_DEVICES', 'INVALID_ACK', 'RATE_LIMITED']) {
    t.ok(errorSpec(code), `${code} is registered`);
  }
});

t.test('limits', async (t) => {
  for (const limit of limits) {
    t.ok(limit.default >= limit.minimum, `${limit.name}: default ${limit.default} >= minimum ${limit.minimum}`);
    if (limit.maximum !== undefined) t.ok(limit.default <= limit.maximum, `${limit.name}: default <= maximum`);
    if (limit.errorCode !== undefined) t.ok(errorSpec(limit.errorCode), `${limit.name}: error ${limit.errorCode} is registered`);
    t.ok(protocol.includes(limit.name), `${limit.name} is described in PROTOCOL.md`);
  }
  const result = validate('common.json#/$defs/limits', defaultLimits());
  t.ok(result.ok, `the defaults form a valid Limits object ${result.ok ? '' : JSON.stringify(result.issues)}`);
  const common = JSON.parse(readFileSync(join(SCHEMA_DIR, 'common.json'), 'utf8')) as { $defs: { limits: { required: string[] } } };
  t.same(
    [...common.$defs.limits.required].sort(),
    limits.filter((l) => l.advertised).map((l) => l.name).sort(),
    'the Limits schema requires exactly the advertised limits',
  );
});

t.test('routes', async (t) => {
  const seen = new Set<string>();
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    t.notOk(seen.has(key), `${key} is listed once`);
    seen.add(key);
    t.ok(route.path === '/healthz' || route.path.startsWith('/v1/'), `${key} is versioned`);
    if (route.request) t.ok(existsSync(join(SCHEMA_DIR, route.request)), `${key}: request schema ${route.request} exists`);
    if (route.success.schema) t.ok(existsSync(join(SCHEMA_DIR, route.success.schema)), `${key}: response schema exists`);
    for (const code of route.errors) t.ok(errorSpec(code)?.transports.includes('http'), `${key}: ${code} is an HTTP error`);
    if (route.path !== '/healthz') t.ok(protocol.includes(route.path), `${key} is described in PROTOCOL.md`);
  }
});
