// `tickwire requirements` and `tickwire validate`: the spec's index and schemas from the command line.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, type Command } from './command.ts';
import { requirements, type RequirementEntry } from '../spec/registries.ts';
import { checkClientFrame, checkServerFrame, describeIssues, validate, type ValidationIssue } from '../spec/validators.ts';

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

const requirementsCommand: Command = {
  name: 'requirements',
  summary: 'list or look up the protocol requirements by ID, section, level or text',
  help: `Usage: tickwire requirements [ID ...] [options]

Prints requirements of spec/PROTOCOL.md from the generated index (spec/requirements.json).

  ID ...              requirement IDs to show in full (e.g. DLV-4 PKY-2); prefixes such as DLV also work
  --grep TEXT         only requirements whose text contains TEXT (case-insensitive)
  --section N         only requirements of top-level section N (e.g. 4)
  --level LEVEL       must, should or may
  --party PARTY       server or client
  --json              print the matching entries as JSON
  -h, --help          this text

Exit codes: 0 at least one requirement matched, 1 none matched, 2 bad usage.`,
  async run(args) {
    const { values, positionals } = parse(args, {
      grep: { type: 'string' },
      section: { type: 'string' },
      level: { type: 'string' },
      party: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const level = values['level'];
    if (level !== undefined && !['must', 'should', 'may'].includes(String(level))) {
      throw new UsageError(`--level must be must, should or may (got '${String(level)}')`);
    }
    const party = values['party'];
    if (party !== undefined && !['server', 'client'].includes(String(party))) {
      throw new UsageError(`--party must be server or client (got '${String(party)}')`);
    }
    const grep = typeof values['grep'] === 'string' ? values['grep'].toLowerCase() : undefined;
    const wanted = positionals.map((p) => p.toUpperCase());
    const matches = requirements.filter((r) => {
      if (wanted.length > 0 && !wanted.some((w) => r.id === w || r.id.startsWith(`${w}-`))) return false;
      if (grep !== undefined && !r.text.toLowerCase().includes(grep)) return false;
      if (values['section'] !== undefined && r.chapter !== String(values['section'])) return false;
      if (level !== undefined && r.level !== level) return false;
      if (party !== undefined && !r.parties.includes(party as RequirementEntry['parties'][number])) return false;
      return true;
    });
    if (values['json']) {
      console.log(JSON.stringify(matches, null, 2));
    } else {
      for (const r of matches) {
        const tags = `${r.level.toUpperCase()} ${r.parties.join('+')}${r.observable ? '' : ' (internal)'}`;
        console.log(`${r.id.padEnd(8)} ${tags.padEnd(22)} ${r.section}\n         ${r.text}\n`);
      }
      console.log(`${matches.length} of ${requirements.length} requirements`);
    }
    return matches.length > 0 ? 0 : 1;
  },
};

const validateCommand: Command = {
  name: 'validate',
  summary: 'check JSON frames or HTTP bodies against the protocol schemas',
  help: `Usage: tickwire validate (--client | --server | --schema PATH) [--lines] FILE|-

Validates JSON against the schemas in spec/schemas. Useful on frames captured from your own server or client.

  --client            the input is a frame a client sends (dispatch on its "type")
  --server            the input is a frame a server sends (dispatch on its "type")
  --schema PATH       validate against one schema, by its path under spec/schemas (e.g. http/register-request.json)
  --lines             the input holds one JSON value per line (a transcript); blank lines are skipped
  -h, --help          this text

Exit codes: 0 everything valid, 1 something invalid, 2 bad usage or unreadable input.`,
  async run(args) {
    const { values, positionals } = parse(args, {
      client: { type: 'boolean', default: false },
      server: { type: 'boolean', default: false },
      schema: { type: 'string' },
      lines: { type: 'boolean', default: false },
    });
    const modes = [values['client'], values['server'], values['schema'] !== undefined].filter(Boolean).length;
    if (modes !== 1) throw new UsageError('give exactly one of --client, --server or --schema PATH');
    if (positionals.length !== 1) throw new UsageError('give one input file, or - for standard input');
    const source = positionals[0]!;
    let text: string;
    try {
      text = readFileSync(source === '-' ? 0 : source, 'utf8');
    } catch (error) {
      console.error(`tickwire validate: cannot read ${source}: ${(error as Error).message}`);
      return 2;
    }
    const chunks = values['lines']
      ? text.split('\n').map((line, i) => ({ where: `${source}:${i + 1}`, text: line })).filter((c) => c.text.trim() !== '')
      : [{ where: source, text }];
    let invalid = 0;
    for (const chunk of chunks) {
      let value: unknown;
      try {
        value = JSON.parse(chunk.text);
      } catch (error) {
        console.log(`${chunk.where}: not JSON: ${(error as Error).message}`);
        invalid++;
        continue;
      }
      let issues: ValidationIssue[] = [];
      let label = '';
      if (typeof values['schema'] === 'string') {
        const result = (() => {
          try {
            return validate(values['schema'], value);
          } catch (error) {
            throw new UsageError((error as Error).message);
          }
        })();
        if (!result.ok) issues = result.issues;
        label = values['schema'];
      } else {
        const check = values['client'] ? checkClientFrame(value) : checkServerFrame(value);
        if (!check.ok) {
          issues = check.issues;
          label = `${check.reason}${check.type ? ` (${check.type})` : ''}`;
        } else {
          label = check.frame.type;
        }
      }
      if (issues.length === 0) {
        console.log(`${chunk.where}: valid ${label}`);
      } else {
        invalid++;
        console.log(`${chunk.where}: INVALID ${label}: ${describeIssues(issues, 10)}`);
      }
    }
    console.log(`${chunks.length - invalid} valid, ${invalid} invalid`);
    return invalid === 0 ? 0 : 1;
  },
};

export const specCommands: Command[] = [requirementsCommand, validateCommand];
