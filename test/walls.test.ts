// The walls between the parts (STYLE.md): spec/ depends on nothing of ours; the server never imports the client;
// conformance/, fuzz/ and load/ treat servers as black boxes; the E2E layer does no I/O.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function sources(dir: string): string[] {
  const full = join(ROOT, dir);
  let entries: string[] = [];
  try {
    entries = readdirSync(full);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(full, name);
    if (statSync(path).isDirectory()) return sources(relative(ROOT, path));
    return /\.(ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

/** The top-level folders of the project that a file imports from, plus its bare package imports. */
function importsOf(file: string): { parts: Set<string>; packages: Set<string>; paths: string[] } {
  const text = readFileSync(file, 'utf8');
  const parts = new Set<string>();
  const packages = new Set<string>();
  const paths: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2]!;
    if (spec.startsWith('.')) {
      const target = relative(ROOT, resolve(dirname(file), spec));
      paths.push(target);
      parts.add(target.split(sep)[0]!);
    } else {
      packages.add(spec);
    }
  }
  return { parts, packages, paths };
}

const rules: Array<{ dir: string; mayImport: string[] }> = [
  { dir: 'spec', mayImport: ['spec'] },
  { dir: 'reference-server', mayImport: ['reference-server', 'spec', 'bin'] },
  { dir: 'reference-client', mayImport: ['reference-client', 'spec', 'bin'] },
  { dir: 'conformance', mayImport: ['conformance', 'spec', 'reference-client', 'bin'] },
  { dir: 'fuzz', mayImport: ['fuzz', 'spec', 'reference-client', 'bin'] },
  { dir: 'load', mayImport: ['load', 'spec', 'reference-client', 'bin'] },
  { dir: 'bench', mayImport: ['bench', 'spec', 'reference-client'] },
];

for (const rule of rules) {
  t.test(`${rule.dir}/ imports only from ${rule.mayImport.join(', ')}`, async (t) => {
    const offenders: string[] = [];
    for (const file of sources(rule.dir)) {
      for (const part of importsOf(file).parts) {
        if (!rule.mayImport.includes(part)) offenders.push(`${relative(ROOT, file)} → ${part}/`);
      }
    }
    t.same(offenders, []);
  });
}

t.test('bin/ reaches the parts only through their command modules', async (t) => {
  for (const file of sources('bin')) {
    for (const path of importsOf(file).paths) {
      const part = path.split(sep)[0]!;
      if (part === 'bin' || part === 'spec') continue;
      t.match(path.split(sep).at(-1), /^(cli|commands?)\.ts$|-commands?\.ts$/, `${relative(ROOT, file)} imports ${path}`);
    }
  }
});

t.test('the E2E layer is bytes in, bytes out: no sockets, files or processes', async (t) => {
  const forbidden = ['node:fs', 'node:fs/promises', 'node:net', 'node:http', 'node:https', 'node:child_process', 'ws', 'node:dgram'];
  const offenders: string[] = [];
  for (const file of sources('reference-client/e2e')) {
    for (const pkg of importsOf(file).packages) if (forbidden.includes(pkg)) offenders.push(`${relative(ROOT, file)} → ${pkg}`);
  }
  t.same(offenders, []);
});
