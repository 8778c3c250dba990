// Regenerates the derived files of the spec from their sources:
//   spec/PROTOCOL.md              → spec/requirements.json (the requirement index)
//   spec/schemas/**, errors.json,
//   limits.json                   → spec/types.gen.ts (TypeScript types for every schema)
//
// `npm run gen` writes them; `npm run gen -- --check` exits 1 when a derived file is stale (the tests run this).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile } from 'json-schema-to-typescript';
import { parseRequirements, type Requirement } from './requirements.ts';
import { loadSchemaFiles, readJson, SCHEMA_BASE, SPEC_DIR, type JsonSchema } from '../schema-files.ts';

export const REQUIREMENTS_FILE = join(SPEC_DIR, 'requirements.json');
export const TYPES_FILE = join(SPEC_DIR, 'types.gen.ts');
export const PROTOCOL_FILE = join(SPEC_DIR, 'PROTOCOL.md');

export interface RequirementIndex {
  $comment: string;
  requirements: Array<Omit<Requirement, 'line'>>;
}

export function buildRequirementIndex(markdown: string): { index: RequirementIndex; problems: string[] } {
  const { requirements, problems } = parseRequirements(markdown);
  return {
    index: {
      $comment: 'Generated from spec/PROTOCOL.md by `npm run gen`; do not edit by hand.',
      requirements: requirements.map(({ line: _line, ...rest }) => rest),
    },
    problems: problems.map((p) => `PROTOCOL.md:${p.line}: ${p.message}`),
  };
}

// json-schema-to-typescript resolves references itself, but not our absolute `$id` URIs without network access.
// We hand it one document whose `$defs` hold every schema file, with every cross-file `$ref` rewritten to a local
// JSON Pointer into that document.
function defKey(path: string): string {
  return path.replace(/\.json$/, '').replace(/[^A-Za-z0-9]+/g, '_');
}

function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$id' || key === '$schema') continue;
    if (key === '$ref' && typeof value === 'string') {
      out[key] = localRef(value);
      continue;
    }
    out[key] = rewriteRefs(value);
  }
  return out;
}

let currentFile = '';
function localRef(ref: string): string {
  let target = ref;
  if (target.startsWith('#')) target = SCHEMA_BASE + currentFile + target;
  if (!target.startsWith(SCHEMA_BASE)) throw new Error(`unsupported $ref ${ref} in ${currentFile}`);
  const [file, pointer = ''] = target.slice(SCHEMA_BASE.length).split('#');
  return `#/$defs/${defKey(file!)}${pointer}`;
}

export async function buildTypes(): Promise<string> {
  const files = loadSchemaFiles();
  const defs: Record<string, unknown> = {};
  for (const file of files) {
    currentFile = file.path;
    defs[defKey(file.path)] = rewriteRefs(file.schema);
  }
  const root = { title: 'TickwireSchemas', type: 'object', additionalProperties: false, properties: {}, $defs: defs };
  let body = await compile(root as never, 'TickwireSchemas', {
    bannerComment: '',
    additionalProperties: false, // receivers ignore unknown fields; the types describe the known ones
    unreachableDefinitions: true,
    unknownAny: true,
    strictIndexSignatures: true,
    format: true,
    maxItems: -1,
    style: { singleQuote: true, printWidth: 120 },
  });
  // The bundling root is an artefact of the generation, not a protocol type.
  body = body.replace(/export interface TickwireSchemas \{\s*\}\n?/, '');

  const frameUnion = (direction: 'client' | 'server') => {
    const prefix = `ws/${direction}/`;
    const frames = files.filter((f) => f.path.startsWith(prefix)).map((f) => ({
      type: f.path.slice(prefix.length, -'.json'.length),
      title: requireTitle(f.schema, f.path),
    }));
    const name = direction === 'client' ? 'Client' : 'Server';
    return [
      `/** Every frame a ${direction} may send, discriminated by \`type\`. */`,
      `export type ${name}Frame = ${frames.map((f) => f.title).join(' | ')};`,
      `/** ${name} frame types by their \`type\` value. */`,
      `export interface ${name}FrameMap {`,
      ...frames.map((f) => `  ${f.type}: ${f.title};`),
      `}`,
    ].join('\n');
  };
  const errorCodes = (readJson(join(SPEC_DIR, 'errors.json')) as { errors: Array<{ code: string }> }).errors.map((e) => e.code);
  const limitNames = (readJson(join(SPEC_DIR, 'limits.json')) as { limits: Array<{ name: string }> }).limits.map((l) => l.name);

  return [
    '// Generated from spec/schemas, spec/errors.json and spec/limits.json by `npm run gen`; do not edit by hand.',
    '/* eslint-disable */',
    '',
    body.trim(),
    '',
    frameUnion('client'),
    '',
    frameUnion('server'),
    '',
    '/** Every error code in the registry (spec/errors.json). Peers must still accept codes not listed here. */',
    `export type ErrorCode = ${errorCodes.map((c) => `'${c}'`).join(' | ')};`,
    '',
    '/** Every limit in spec/limits.json. */',
    `export type LimitName = ${limitNames.map((n) => `'${n}'`).join(' | ')};`,
    '',
  ].join('\n');
}

function requireTitle(schema: JsonSchema, path: string): string {
  if (typeof schema.title !== 'string') throw new Error(`spec/schemas/${path} has no title`);
  return schema.title;
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const markdown = readFileSync(PROTOCOL_FILE, 'utf8');
  const { index, problems } = buildRequirementIndex(markdown);
  if (problems.length > 0) {
    for (const problem of problems) console.error(problem);
    console.error(`${problems.length} problem(s) in PROTOCOL.md`);
    process.exitCode = 1;
    return;
  }
  const outputs: Array<[string, string]> = [
    [REQUIREMENTS_FILE, JSON.stringify(index, null, 2) + '\n'],
    [TYPES_FILE, await buildTypes()],
  ];
  let stale = 0;
  for (const [file, content] of outputs) {
    let existing = '';
    try {
      existing = readFileSync(file, 'utf8');
    } catch {
      existing = '';
    }
    if (existing === content) continue;
    if (check) {
      console.error(`${file} is out of date: run npm run gen`);
      stale++;
    } else {
      writeFileSync(file, content);
      console.log(`wrote ${file}`);
    }
  }
  if (stale > 0) process.exitCode = 1;
  else if (!check) console.log(`${index.requirements.length} requirements indexed`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
