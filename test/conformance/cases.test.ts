// The cases as data: IDs derived from spec sections, every cited requirement exists in spec/requirements.json,
// binds the server and is observable, and each case's level matches what it cites.
import t from 'tap';
import { requirement, requirements } from '../../spec/index.ts';
import { checkCases, sectionOf, type ConformanceCase } from '../../conformance/case.ts';
import { cases } from '../../conformance/cases/index.ts';
import { select } from '../../conformance/runner.ts';

t.test('every requirement ID cited by a case exists, binds the server and is observable', async (t) => {
  const problems: string[] = [];
  for (const c of cases) {
    for (const id of c.requirements) {
      const entry = requirement(id);
      if (!entry) problems.push(`${c.id}: ${id} is not in spec/requirements.json`);
      else if (!entry.parties.includes('server')) problems.push(`${c.id}: ${id} does not bind the server`);
      else if (!entry.observable) problems.push(`${c.id}: ${id} is internal, not observable`);
    }
  }
  t.same(problems, []);
});

t.test('case IDs are unique and derived from a spec section', async (t) => {
  t.equal(new Set(cases.map((c) => c.id)).size, cases.length);
  for (const c of cases) t.match(sectionOf(c.id), /^\d+(\.\d+)*$/, c.id);
  t.throws(() => checkCases([{ ...cases[0]!, requirements: ['NOPE-1'] }]), /unknown requirement NOPE-1/);
  t.throws(() => checkCases([{ ...cases[0]!, id: 'Bad Id' }]), /not <section>/);
});

t.test('a must case cites a MUST requirement, a should case a SHOULD one', async (t) => {
  for (const c of cases) {
    const levels = c.requirements.map((id) => requirement(id)?.level);
    t.ok(levels.includes(c.level), `${c.id} (${c.level}) cites ${c.requirements.join(', ')}`);
  }
});

t.test('selection by grep, section, requirement and exclude', async (t) => {
  const ids = (list: ConformanceCase[]) => list.map((c) => c.id);
  t.ok(select(cases, { section: ['4'] }).every((c) => c.id.startsWith('4.')));
  t.ok(select(cases, { section: ['4.6'] }).every((c) => c.id.startsWith('4.6/')));
  t.same(ids(select(cases, { section: ['1.1'] })), ids(cases.filter((c) => c.id.startsWith('1.1/'))));
  t.ok(select(cases, { requirement: ['DLV-12'] }).every((c) => c.requirements.includes('DLV-12')));
  t.same(ids(select(cases, { grep: ['invalid-ack'] })), ['4.6/invalid-ack']);
  t.notOk(select(cases, { section: ['4'], exclude: ['redeliver'] }).some((c) => /redeliver/.test(c.id)));
  t.ok(cases.filter((c) => c.level === 'should').length >= 1);
});

// The bar: the suite checks every observable MUST and SHOULD of the spec. A requirement no case cites is a
// hole an implementer's server can fall through unnoticed, so adding one to PROTOCOL.md without a case fails here.
// MAY requirements describe what clients must tolerate; a case cites one only where it checks that tolerance.
t.test('every observable MUST and SHOULD requirement binding the server is cited by a case', async (t) => {
  const cited = new Set(cases.flatMap((c) => c.requirements));
  const uncovered = requirements
    .filter((r) => r.parties.includes('server') && r.observable && r.level !== 'may' && !cited.has(r.id))
    .map((r) => `${r.id} (${r.level}): ${r.text.slice(0, 100)}`);
  t.same(uncovered, [], 'observable server requirements with no case');
});
