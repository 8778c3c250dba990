// The requirement-item parser: what it accepts, and every malformation it must report.
import t from 'tap';
import { levelOf, parseRequirements } from '../../spec/tools/requirements.ts';

const doc = (...lines: string[]) => ['## 4. Messaging', '', '### 4.1 Send', '', ...lines, ''].join('\n');

t.test('parses a well-formed item with continuation lines', async (t) => {
  const { requirements, problems } = parseRequirements(
    doc('- **[MSG-1]** _server_ The server MUST answer every `send`', '  with exactly one frame.', '', 'Prose.'),
  );
  t.same(problems, []);
  t.equal(requirements.length, 1);
  const [r] = requirements;
  t.equal(r!.id, 'MSG-1');
  t.equal(r!.section, '4.1 Send');
  t.equal(r!.chapter, '4');
  t.equal(r!.level, 'must');
  t.same(r!.parties, ['server']);
  t.equal(r!.observable, true);
  t.equal(r!.text, 'The server MUST answer every `send` with exactly one frame.');
});

t.test('levels: the strongest keyword wins; code spans do not count', async (t) => {
  t.equal(levelOf('A client SHOULD retry and MAY give up.'), 'should');
  t.equal(levelOf('It MUST NOT do that.'), 'must');
  t.equal(levelOf('This is NOT RECOMMENDED.'), 'should');
  t.equal(levelOf('This is OPTIONAL.'), 'may');
  t.equal(levelOf('The field `MUST` is a name, and it may be lower case.'), undefined);
  t.equal(levelOf('The server SHALL keep it.'), 'must');
});

t.test('tags: parties, internal, unknown', async (t) => {
  const { requirements, problems } = parseRequirements(
    doc(
      '- **[MSG-1]** _server, internal_ The server MUST hash secrets.',
      '- **[MSG-2]** _client_ A client MUST ignore unknown fields.',
      '- **[MSG-3]** _server, client_ Both MUST use UTF-8.',
      '- **[MSG-4]** _sever_ Typo MUST be caught.',
      '- **[MSG-5]** No tags MUST be caught.',
    ),
  );
  t.equal(requirements.find((r) => r.id === 'MSG-1')!.observable, false);
  t.equal(requirements.find((r) => r.id === 'MSG-2')!.observable, false, 'client duties are not server-observable');
  t.same(requirements.find((r) => r.id === 'MSG-3')!.parties, ['server', 'client']);
  t.match(problems.map((p) => p.message).join('\n'), /MSG-4: unknown tag\(s\) sever/);
  t.match(problems.map((p) => p.message).join('\n'), /MSG-5: missing the tag list/);
});

t.test('reports duplicate and malformed IDs', async (t) => {
  const { problems } = parseRequirements(
    doc(
      '- **[DLV-1]** _server_ One MUST.',
      '- **[DLV-1]** _server_ Two MUST.',
      '- **[DLV-01]** _server_ Leading zero MUST.',
      '- **[dlv-2]** _server_ Lower case MUST.',
      '- **[DELIVERY-2]** _server_ Long prefix MUST.',
      '- [DLV-3] _server_ Not bold MUST.',
    ),
  );
  const text = problems.map((p) => p.message).join('\n');
  t.match(text, /duplicate requirement ID DLV-1 \(first defined on line 5\)/);
  t.match(text, /malformed requirement ID \[DLV-01\]/);
  t.match(text, /malformed requirement ID \[dlv-2\]/);
  t.match(text, /malformed requirement ID \[DELIVERY-2\]/);
  t.match(text, /looks like a requirement but is not of the form/);
});

t.test('reports items without a keyword, stray keywords and dangling references', async (t) => {
  const { problems } = parseRequirements(
    doc(
      '- **[DLV-1]** _server_ The server delivers.',
      '',
      'The client MUST do this outside an item.',
      'As [DLV-9] says, nothing.',
      '',
      '```',
      'Code MUST be ignored, and so is [XYZ-1].',
      '```',
      '| DLV | Tables MAY mention keywords |',
    ),
  );
  const text = problems.map((p) => p.message).join('\n');
  t.match(text, /DLV-1: has no RFC 2119 keyword/);
  t.match(text, /keyword outside a requirement item: The client MUST/);
  t.match(text, /reference to undefined requirement DLV-9/);
  t.notMatch(text, /XYZ-1/);
  t.notMatch(text, /Tables/);
  t.equal(problems.length, 3);
});

t.test('E2E is a valid prefix', async (t) => {
  const { requirements, problems } = parseRequirements(doc('- **[E2E-12]** _client_ A client MUST verify.'));
  t.same(problems, []);
  t.equal(requirements[0]!.id, 'E2E-12');
});
