// Every schema compiles under ajv's strict mode, follows the house rules, and agrees with its examples.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLE_DIR, listJsonFiles, loadSchemaFiles, readJson, schemaId, type JsonSchema } from '../../spec/schema-files.ts';
import { CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES, checkClientFrame, checkServerFrame, validate } from '../../spec/index.ts';

interface ExampleFile {
  schema: string;
  valid: Array<{ comment: string; value: unknown }>;
  invalid: Array<{ why: string; value: unknown }>;
}

const schemas = loadSchemaFiles();

t.test('schema files: $id, $schema and title', async (t) => {
  const titles = new Map<string, string>();
  const noteTitle = (title: unknown, where: string) => {
    t.type(title, 'string', `${where} has a title`);
    if (typeof title !== 'string') return;
    t.match(title, /^[A-Z][A-Za-z0-9]*$/, `${where}: title ${title} is PascalCase`);
    t.notOk(titles.has(title), `${where}: title ${title} is unique (also ${titles.get(title)})`);
    titles.set(title, where);
  };
  for (const { path, schema } of schemas) {
    t.equal(schema.$id, schemaId(path), `${path}: $id matches its path`);
    t.equal(schema['$schema'], 'https://json-schema.org/draft/2020-12/schema', `${path}: draft 2020-12`);
    if (path !== 'common.json') noteTitle(schema.title, path);
    const defs = (schema['$defs'] ?? {}) as Record<string, JsonSchema>;
    for (const [name, def] of Object.entries(defs)) noteTitle(def.title, `${path}#/$defs/${name}`);
  }
});

t.test('no schema forbids unknown properties (receivers ignore them)', async (t) => {
  const offenders: string[] = [];
  const walk = (node: unknown, where: string) => {
    if (typeof node !== 'object' || node === null) return;
    if (!Array.isArray(node) && (node as Record<string, unknown>)['additionalProperties'] === false) offenders.push(where);
    for (const [key, value] of Object.entries(node)) walk(value, `${where}/${key}`);
  };
  for (const { path, schema } of schemas) walk(schema, path);
  t.same(offenders, []);
});

t.test('every frame type has a schema with a matching const type', async (t) => {
  t.ok(CLIENT_FRAME_TYPES.length >= 9, `client frame types: ${CLIENT_FRAME_TYPES.join(', ')}`);
  t.ok(SERVER_FRAME_TYPES.length >= 13, `server frame types: ${SERVER_FRAME_TYPES.join(', ')}`);
  for (const [direction, types] of [['client', CLIENT_FRAME_TYPES], ['server', SERVER_FRAME_TYPES]] as const) {
    for (const type of types) {
      const schema = schemas.find((s) => s.path === `ws/${direction}/${type}.json`)!.schema;
      const props = schema['properties'] as Record<string, { const?: unknown }>;
      t.equal(props['type']?.const, type, `ws/${direction}/${type}.json: type is const "${type}"`);
      t.ok((schema['required'] as string[]).includes('type'), `ws/${direction}/${type}.json requires type`);
    }
  }
});

for (const { path } of schemas) {
  if (path === 'common.json') continue;
  t.test(`examples for ${path}`, async (t) => {
    const file = join(EXAMPLE_DIR, path);
    t.ok(existsSync(file), `spec/examples/${path} exists`);
    if (!existsSync(file)) return;
    const examples = readJson(file) as ExampleFile;
    t.equal(examples.schema, schemaId(path), 'names its schema');
    t.ok(examples.valid.length >= 1, 'has at least one valid example');
    t.ok(examples.invalid.length >= 3, 'has several invalid examples');
    for (const [i, example] of examples.valid.entries()) {
      t.type(example.comment, 'string', `valid[${i}] has a comment`);
      const result = validate(path, example.value);
      t.ok(result.ok, `valid[${i}] passes: ${example.comment}${result.ok ? '' : ' ' + JSON.stringify(result.issues)}`);
    }
    for (const [i, example] of examples.invalid.entries()) {
      t.type(example.why, 'string', `invalid[${i}] says why`);
      t.notOk(validate(path, example.value).ok, `invalid[${i}] fails: ${example.why}`);
    }
    // Frames also go through the dispatching checker the server and client use.
    const frame = /^ws\/(client|server)\//.exec(path);
    if (frame) {
      const check = frame[1] === 'client' ? checkClientFrame : checkServerFrame;
      for (const example of examples.valid) t.ok(check(example.value).ok, `dispatch accepts: ${example.comment}`);
      for (const example of examples.invalid) t.notOk(check(example.value).ok, `dispatch refuses: ${example.why}`);
    }
  });
}

t.test('no orphan example files', async (t) => {
  const paths = new Set(schemas.map((s) => s.path));
  for (const file of listJsonFiles(EXAMPLE_DIR)) {
    const relativePath = file.slice(EXAMPLE_DIR.length).replace(/^[\\/]/, '').split(/[\\/]/).join('/');
    t.ok(paths.has(relativePath), `spec/examples/${relativePath} belongs to a schema`);
  }
});

t.test('frame dispatch: reasons for refusal', async (t) => {
  t.match(checkClientFrame([1, 2]), { ok: false, reason: 'not-object' });
  t.match(checkClientFrame(null), { ok: false, reason: 'not-object' });
  t.match(checkClientFrame({ id: 'r1' }), { ok: false, reason: 'no-type', id: 'r1' });
  t.match(checkClientFrame({ type: 'teleport', id: 'r2' }), { ok: false, reason: 'unknown-type', type: 'teleport', id: 'r2' });
  t.match(checkClientFrame({ type: 'send', id: 'r3' }), { ok: false, reason: 'invalid', type: 'send', id: 'r3' });
  const badId = checkClientFrame({ type: 'send', id: '<script>' });
  t.equal(badId.ok ? 'ok' : badId.id, undefined, 'a malformed id is never echoed');
  t.match(checkServerFrame({ type: 'hello', id: 'x' }), { ok: false, reason: 'unknown-type' }, 'hello is a client frame only');
  const polluted = JSON.parse('{"type":"ping","id":"p1","__proto__":{"polluted":true}}') as unknown;
  t.match(checkClientFrame(polluted), { ok: true }, 'a __proto__ key is just an unknown field');
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'and pollutes nothing');
});
