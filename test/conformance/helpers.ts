// Helpers for the conformance suite's own tests: run `tickwire conformance` as a child process, and check that a
// JUnit report is well-formed XML with the expected structure (a small tag-balancing parser; no XML dependency).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/tickwire.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function conformance(args: string[], timeoutMs = 80_000): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'conformance', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** Parses well-formed XML (elements, attributes, text, the declaration); throws on anything malformed. */
export function parseXml(text: string): XmlElement {
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, '');
  const root: XmlElement = { name: '#root', attributes: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let match: RegExpExecArray | null;
  let consumed = 0;
  while ((match = token.exec(body)) !== null) {
    consumed = token.lastIndex;
    const [, closing, name, attrs, selfClosing, chars] = match;
    const top = stack.at(-1)!;
    if (chars !== undefined) {
      if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(chars)) throw new SyntaxError(`bare & in text near ${chars.slice(0, 40)}`);
      top.text += chars;
      continue;
    }
    if (closing) {
      if (top.name !== name) throw new SyntaxError(`</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const a of (attrs ?? '').matchAll(/([\w.-]+)="([^"]*)"/g)) attributes[a[1]!] = a[2]!;
    const element: XmlElement = { name: name!, attributes, children: [], text: '' };
    top.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (consumed !== body.length) throw new SyntaxError(`unparsable XML at offset ${consumed}: ${body.slice(consumed, consumed + 40)}`);
  if (stack.length !== 1) throw new SyntaxError(`unclosed <${stack.at(-1)!.name}>`);
  if (root.children.length !== 1) throw new SyntaxError('expected exactly one root element');
  return root.children[0]!;
}
