// PROTOCOL.md is well-formed and spec/requirements.json is its current index.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { buildRequirementIndex, PROTOCOL_FILE, REQUIREMENTS_FILE } from '../../spec/tools/generate.ts';

const markdown = readFileSync(PROTOCOL_FILE, 'utf8');
const { index, problems } = buildRequirementIndex(markdown);

t.test('PROTOCOL.md has no malformed, duplicate or keyword-less requirement', async (t) => {
  t.same(problems, [], problems.join('\n'));
});

t.test('spec/requirements.json is in sync with PROTOCOL.md (run npm run gen)', async (t) => {
  const onDisk = JSON.parse(readFileSync(REQUIREMENTS_FILE, 'utf8')) as unknown;
  t.same(onDisk, JSON.parse(JSON.stringify(index)));
});

t.test('every section of the protocol carries requirements', async (t) => {
  const byChapter = new Map<string, number>();
  for (const r of index.requirements) byChapter.set(r.chapter, (byChapter.get(r.chapter) ?? 0) + 1);
  for (const chapter of ['1', '2', '3', '4', '5', '6', '7', '8', '9']) {
    t.ok((byChapter.get(chapter) ?? 0) > 0, `section ${chapter} has requirements`);
  }
  const prefixes = new Set(index.requirements.map((r) => r.id.split('-')[0]));
  for (const prefix of ['TRN', 'IDN', 'AUT', 'PKY', 'MSG', 'DLV', 'RCP', 'PRS', 'KAL', 'LIM', 'ERR', 'E2E', 'SEC', 'VER']) {
    t.ok(prefixes.has(prefix), `prefix ${prefix} is used`);
  }
});

t.test('the sequence diagrams the spec promises are present', async (t) => {
  const diagrams = markdown.match(/```mermaid\s+sequenceDiagram/g) ?? [];
  t.ok(diagrams.length >= 4, `at least four sequence diagrams (found ${diagrams.length})`);
});
