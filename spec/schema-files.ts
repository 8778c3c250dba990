// Finds and loads the JSON Schema files under spec/schemas. Shared by the validators and the type generator so
// both see exactly the same set of schemas.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SPEC_DIR = fileURLToPath(new URL('.', import.meta.url));
export const SCHEMA_DIR = join(SPEC_DIR, 'schemas');
export const EXAMPLE_DIR = join(SPEC_DIR, 'examples');
/** Every schema's `$id` is this base followed by its path under spec/schemas. */
export const SCHEMA_BASE = 'https://schemas.tickwire.dev/v1/';

export interface JsonSchema {
  $id?: string;
  title?: string;
  [keyword: string]: unknown;
}

export interface SchemaFile {
  /** Path under spec/schemas with forward slashes, e.g. `ws/client/send.json`. */
  path: string;
  schema: JsonSchema;
}

export function listJsonFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.json')) out.push(full);
    }
  };
  walk(dir);
  return out.sort();
}

export function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}

export function loadSchemaFiles(): SchemaFile[] {
  return listJsonFiles(SCHEMA_DIR).map((file) => {
    const path = relative(SCHEMA_DIR, file).split(sep).join('/');
    const schema = readJson(file) as JsonSchema;
    return { path, schema };
  });
}

/** `ws/client/send.json` → `https://schemas.tickwire.dev/v1/ws/client/send.json`. */
export function schemaId(path: string): string {
  return SCHEMA_BASE + path;
}
