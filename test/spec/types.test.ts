// spec/types.gen.ts is what the generator makes from the schemas today: types cannot drift from schemas.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { buildTypes, TYPES_FILE } from '../../spec/tools/generate.ts';

t.test('spec/types.gen.ts is in sync with spec/schemas (run npm run gen)', async (t) => {
  const expected = await buildTypes();
  t.equal(readFileSync(TYPES_FILE, 'utf8'), expected);
});
