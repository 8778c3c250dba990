// Parses the requirement items of spec/PROTOCOL.md into a machine-readable index.
//
// A requirement is a markdown list item of the form
//   - **[DLV-4]** _server_ The server MUST ...
// whose continuation lines are indented by at least two spaces. The tag list in underscores names who the
// requirement binds (`server`, `client`, or both) and may add `internal` when the requirement cannot be observed
// from outside the server. The strongest RFC 2119 keyword in the text sets the level.
//
// The parser reports problems instead of throwing so that the test suite can print all of them at once.

export type RequirementLevel = 'must' | 'should' | 'may';
export type Party = 'server' | 'client';

export interface Requirement {
  /** Stable identifier, e.g. `DLV-4`. */
  id: string;
  /** The section heading the requirement sits under, e.g. `4.3 Delivery`. */
  section: string;
  /** The top-level section number, e.g. `4`. */
  chapter: string;
  level: RequirementLevel;
  parties: Party[];
  /** True when the requirement is visible to a peer of the server (so a conformance case can check it). */
  observable: boolean;
  /** The requirement's text, markdown emphasis kept, joined onto one line. */
  text: string;
  /** 1-based line of PROTOCOL.md where the item starts. */
  line: number;
}

export interface ParseProblem {
  line: number;
  message: string;
}

export interface ParseResult {
  requirements: Requirement[];
  problems: ParseProblem[];
}

/** `PFX-n`: two to four capital letters (E2E allowed), a dash, a positive integer without leading zeros. */
export const REQUIREMENT_ID = /^(?:[A-Z]{2,4}|E2E)-[1-9][0-9]*$/;

const ITEM_START = /^- \*\*\[([^\]]*)\]\*\*(.*)$/;
// Anything that looks like an attempt at a requirement item, to catch malformed ones.
const ITEM_LIKE = /^\s*[-*]\s+\*{0,2}\[[A-Za-z0-9]{1,6}-[^\]]*\]/;
const HEADING = /^(#{2,4})\s+(.*)$/;
const TAGS = /^\s*_([a-z, ]+)_\s+(.*)$/;
const KNOWN_TAGS = new Set(['server', 'client', 'internal']);

// RFC 2119 / RFC 8174: only the capitalised forms are normative. Longest alternatives first.
const KEYWORDS: Array<[RegExp, RequirementLevel]> = [
  [/\bNOT RECOMMENDED\b/, 'should'],
  [/\b(?:MUST(?: NOT)?|REQUIRED|SHALL(?: NOT)?)\b/, 'must'],
  [/\b(?:SHOULD(?: NOT)?|RECOMMENDED)\b/, 'should'],
  [/\b(?:MAY|OPTIONAL)\b/, 'may'],
];
const ANY_KEYWORD = /\b(?:MUST|REQUIRED|SHALL|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b/;

/** The strongest RFC 2119 level in `text`, or undefined when it has no keyword. */
export function levelOf(text: string): RequirementLevel | undefined {
  // Remove inline code so that field names such as `MAY_X` or quoted examples do not count.
  const prose = stripCode(text);
  const found = new Set<RequirementLevel>();
  let rest = prose;
  for (const [pattern, level] of KEYWORDS) {
    const global = new RegExp(pattern.source, 'g');
    if (global.test(rest)) {
      found.add(level);
      rest = rest.replace(global, ' ');
    }
  }
  if (found.has('must')) return 'must';
  if (found.has('should')) return 'should';
  if (found.has('may')) return 'may';
  return undefined;
}

function stripCode(text: string): string {
  return text.replace(/`[^`]*`/g, ' ');
}

export function parseRequirements(markdown: string): ParseResult {
  const lines = markdown.split(/\r?\n/);
  const requirements: Requirement[] = [];
  const problems: ParseProblem[] = [];
  const seen = new Map<string, number>();
  let section = '';
  let inFence = false;

  let current: { id: string; line: number; parts: string[]; section: string } | undefined;
  const finish = () => {
    if (!current) return;
    const item = current;
    current = undefined;
    const body = item.parts.join(' ').replace(/\s+/g, ' ').trim();
    const tagMatch = TAGS.exec(body);
    if (!tagMatch) {
      problems.push({ line: item.line, message: `${item.id}: missing the tag list (_server_, _client_, ...) after the ID` });
      return;
    }
    const tags = tagMatch[1]!.split(',').map((tag) => tag.trim()).filter(Boolean);
    const unknown = tags.filter((tag) => !KNOWN_TAGS.has(tag));
    if (unknown.length > 0) {
      problems.push({ line: item.line, message: `${item.id}: unknown tag(s) ${unknown.join(', ')}` });
    }
    const parties = tags.filter((tag): tag is Party => tag === 'server' || tag === 'client');
    if (parties.length === 0) {
      problems.push({ line: item.line, message: `${item.id}: names neither server nor client` });
    }
    const text = tagMatch[2]!.trim();
    const level = levelOf(text);
    if (!level) {
      problems.push({ line: item.line, message: `${item.id}: has no RFC 2119 keyword in capitals` });
      return;
    }
    requirements.push({
      id: item.id,
      section: item.section,
      chapter: chapterOf(item.section),
      level,
      parties,
      observable: parties.includes('server') && !tags.includes('internal'),
      text,
      line: item.line,
    });
  };

  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    if (/^\s*(```|~~~)/.test(raw)) {
      finish();
      inFence = !inFence;
      return;
    }
    if (inFence) return;

    const heading = HEADING.exec(raw);
    if (heading) {
      finish();
      section = heading[2]!.trim();
      return;
    }
    const start = ITEM_START.exec(raw);
    if (start) {
      finish();
      const id = start[1]!;
      if (!REQUIREMENT_ID.test(id)) {
        problems.push({ line: lineNo, message: `malformed requirement ID [${id}]` });
        return;
      }
      const first = seen.get(id);
      if (first !== undefined) {
        problems.push({ line: lineNo, message: `duplicate requirement ID ${id} (first defined on line ${first})` });
        return;
      }
      seen.set(id, lineNo);
      current = { id, line: lineNo, parts: [start[2]!], section };
      return;
    }
    if (ITEM_LIKE.test(raw)) {
      finish();
      problems.push({ line: lineNo, message: `list item looks like a requirement but is not of the form "- **[PFX-n]** _tags_ text": ${raw.trim().slice(0, 60)}` });
      return;
    }
    if (current) {
      if (/^ {2,}\S/.test(raw)) {
        current.parts.push(raw.trim());
        return;
      }
      finish();
    }
  });
  finish();

  // Cross-references such as "see [DLV-4]" must point at a defined requirement.
  const defined = new Set(requirements.map((r) => r.id));
  inFence = false;
  lines.forEach((raw, index) => {
    if (/^\s*(```|~~~)/.test(raw)) inFence = !inFence;
    if (inFence) return;
    for (const match of raw.matchAll(/\[((?:[A-Z]{2,4}|E2E)-[0-9]+)\]/g)) {
      const id = match[1]!;
      if (REQUIREMENT_ID.test(id) && !defined.has(id) && !seen.has(id)) {
        problems.push({ line: index + 1, message: `reference to undefined requirement ${id}` });
      }
    }
  });

  // Normative keywords outside requirement items are ambiguous: nobody can cite them.
  inFence = false;
  let inItem = false;
  lines.forEach((raw, index) => {
    if (/^\s*(```|~~~)/.test(raw)) inFence = !inFence;
    if (inFence) return;
    if (ITEM_START.test(raw)) {
      inItem = true;
      return;
    }
    if (inItem && /^ {2,}\S/.test(raw)) return;
    inItem = false;
    if (HEADING.test(raw) || /^\s*\|/.test(raw)) return; // headings and table cells may name keywords
    if (ANY_KEYWORD.test(stripCode(raw)) && !/RFC ?2119|RFC ?8174|BCP ?14/.test(raw) && !isKeywordGlossary(raw)) {
      problems.push({ line: index + 1, message: `RFC 2119 keyword outside a requirement item: ${raw.trim().slice(0, 80)}` });
    }
  });

  return { requirements, problems };
}

// The conventions section lists the keywords themselves; such a line quotes them rather than using them.
function isKeywordGlossary(raw: string): boolean {
  const words = stripCode(raw).match(/\b(?:MUST|NOT|REQUIRED|SHALL|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b/g) ?? [];
  return words.length >= 4 || /"(?:MUST|SHOULD|MAY)"/.test(raw);
}

function chapterOf(section: string): string {
  const match = /^(\d+)/.exec(section);
  return match ? match[1]! : '';
}
