// The lexical rules of TRN-13 for a JSON text a server sends, checked on the bytes as received (JSON.parse cannot
// see them: it takes the last of repeated names and reads 1.0, 1e3 and 2^53 as numbers like any other): the text is
// UTF-8, no object repeats a member name, and every number is an integer written without sign, fraction or exponent,
// in 0..2^53−1 (version 1 has no other numbers: every number in spec/schemas is an integer).

/** At most this many problems are reported for one text. */
const MAX_PROBLEMS = 5;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const PLAIN_INTEGER = /^(?:0|[1-9][0-9]*)$/;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*"/y;

class Scanner {
  pos = 0;
  readonly problems: string[] = [];
  constructor(private readonly text: string) {}

  problem(message: string, at = this.pos): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(`at ${at}: ${message}`);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && ' \t\n\r'.includes(this.text[this.pos]!)) this.pos++;
  }

  /** Reads one value; false when the text is not JSON (then scanning stops). */
  value(): boolean {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string() !== undefined;
    for (const literal of ['true', 'false', 'null']) {
      if (this.text.startsWith(literal, this.pos)) {
        this.pos += literal.length;
        return true;
      }
    }
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (!match) return this.notJson();
    const token = match[0];
    if (!PLAIN_INTEGER.test(token)) this.problem(`number ${token} is not an integer without sign, fraction or exponent`);
    else if (BigInt(token) > BigInt(Number.MAX_SAFE_INTEGER)) this.problem(`integer ${token} is above 2^53−1`);
    this.pos += token.length;
    return true;
  }

  private string(): string | undefined {
    STRING.lastIndex = this.pos;
    const match = STRING.exec(this.text);
    if (!match) {
      this.notJson();
      return undefined;
    }
    this.pos += match[0].length;
    return JSON.parse(match[0]) as string;
  }

  private object(): boolean {
    this.pos++;
    const names = new Set<string>();
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return true;
    }
    for (;;) {
      this.skipSpace();
      const at = this.pos;
      const name = this.string();
      if (name === undefined) return false;
      if (names.has(name)) this.problem(`member name ${JSON.stringify(name)} repeated within one object`, at);
      names.add(name);
      this.skipSpace();
      if (this.text[this.pos] !== ':') return this.notJson();
      this.pos++;
      if (!this.value()) return false;
      this.skipSpace();
      const next = this.text[this.pos++];
      if (next === '}') return true;
      if (next !== ',') return this.notJson();
    }
  }

  private array(): boolean {
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return true;
    }
    for (;;) {
      if (!this.value()) return false;
      this.skipSpace();
      const next = this.text[this.pos++];
      if (next === ']') return true;
      if (next !== ',') return this.notJson();
    }
  }

  private notJson(): false {
    this.problem('not valid JSON');
    return false;
  }

  end(): void {
    this.skipSpace();
    if (this.pos !== this.text.length) this.notJson();
  }
}

/** What breaks TRN-13 in `bytes` (one JSON text as sent); empty when nothing does. */
export function jsonTextProblems(bytes: Uint8Array): string[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return ['not valid UTF-8'];
  }
  if (text.startsWith('\uFEFF')) return ['starts with a byte order mark, which is no part of a JSON text'];
  const scanner = new Scanner(text);
  if (scanner.value()) scanner.end();
  return scanner.problems;
}
