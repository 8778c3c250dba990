// Corpus files: every failing input is saved as a readable JSON file (the steps of fuzz/input.ts, with placeholders,
// so it replays against any server), shrunk first to a minimal reproduction by delta debugging: drop steps, then
// simplify each step (members and elements of a frame, bytes of a raw payload, headers and body of a request) while
// the same failure still shows. fuzz/corpus/ holds the regression inputs that the tests replay.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INPUT_CLASSES, cloneJson, type FuzzInput, type Json, type Step } from './input.ts';
import type { Finding } from './oracles/finding.ts';
import { nodes, setAt } from './generators/mutate.ts';

export const CORPUS_FORMAT = 'tickwire-fuzz/1';

export interface CorpusFile {
  format: typeof CORPUS_FORMAT;
  /** One line: what the file reproduces. */
  title: string;
  /** The run seed and input index that produced it (absent for hand-written files). */
  seed?: number;
  index?: number;
  /** What the oracles reported when the file was saved. */
  findings: Finding[];
  /** Usually one input; several when a batch-level failure could not be pinned on one. */
  inputs: FuzzInput[];
  shrunk?: { trials: number; from: Size; to: Size };
  /** For the regression corpus: what was wrong and how it was fixed. */
  note?: string;
}

export interface Size {
  steps: number;
  bytes: number;
}

export function sizeOf(inputs: FuzzInput[]): Size {
  return { steps: inputs.reduce((n, i) => n + i.steps.length, 0), bytes: inputs.reduce((n, i) => n + JSON.stringify(i.steps).length, 0) };
}

export class CorpusError extends Error {
  readonly code = 'CORPUS';
  constructor(message: string) {
    super(message);
    this.name = 'CorpusError';
  }
}

/** Reads and checks a corpus file. */
export function loadCorpusFile(path: string): CorpusFile {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CorpusError(`${path}: ${(error as Error).message}`);
  }
  const file = data as Partial<CorpusFile>;
  if (file.format !== CORPUS_FORMAT) throw new CorpusError(`${path}: not a ${CORPUS_FORMAT} file`);
  if (!Array.isArray(file.inputs) || file.inputs.length === 0) throw new CorpusError(`${path}: no inputs`);
  for (const input of file.inputs) {
    if (!INPUT_CLASSES.includes(input.class) || !Array.isArray(input.steps)) throw new CorpusError(`${path}: an input without a known class and steps`);
  }
  return { ...file, findings: file.findings ?? [], title: file.title ?? path } as CorpusFile;
}

/** Every corpus file in a folder, sorted by name. */
export function listCorpus(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((name) => name.endsWith('.json'))
      .sort()
      .map((name) => join(dir, name));
  } catch {
    return [];
  }
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
}

/** Writes `file` into `dir` under a name saying what it found; returns the path. */
export function saveCorpusFile(dir: string, file: CorpusFile): string {
  mkdirSync(dir, { recursive: true });
  const first = file.findings[0];
  const hash = createHash('sha256').update(JSON.stringify(file.inputs)).digest('hex').slice(0, 8);
  const name = `${file.inputs[0]!.class}-${slug(first ? `${first.requirement} ${first.summary} ${first.subject ?? ''}` : file.title)}-${hash}.json`;
  const path = join(dir, name);
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  return path;
}

// ---------------------------------------------------------------------------------------------------------------
// Shrinking

export interface ShrinkBudget {
  trials: number;
  ms: number;
}

/** Whether a candidate still shows the failure. */
export type Predicate<T> = (candidate: T) => Promise<boolean>;

class Budget {
  trials = 0;
  private readonly deadline: number;
  constructor(private readonly budget: ShrinkBudget) {
    this.deadline = performance.now() + budget.ms;
  }
  get spent(): boolean {
    return this.trials >= this.budget.trials || performance.now() > this.deadline;
  }
}

/** Delta debugging (Zeller's ddmin) over a list: the smallest sublist that still fails, within the budget. */
async function ddmin<T>(items: T[], fails: Predicate<T[]>, budget: Budget, min = 1): Promise<T[]> {
  let current = items;
  let n = 2;
  while (current.length > min && !budget.spent) {
    const chunk = Math.ceil(current.length / n);
    let reduced = false;
    for (let start = 0; start < current.length && !budget.spent; start += chunk) {
      const complement = [...current.slice(0, start), ...current.slice(start + chunk)];
      if (complement.length < min) continue;
      budget.trials++;
      if (await fails(complement)) {
        current = complement;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= current.length) break;
      n = Math.min(current.length, n * 2);
    }
  }
  return current;
}

/** Simpler versions of a JSON value: each member or element removed, each subtree replaced, strings halved. */
function* simplerJson(root: Json): Generator<Json> {
  const all = nodes(root).slice(1);
  for (const node of all) yield setAt(cloneJson(root), node.path, undefined);
  for (const node of all) {
    const v = node.value;
    if (typeof v === 'string' && v.length > 1) yield setAt(cloneJson(root), node.path, v.slice(0, Math.floor(v.length / 2)));
    if (Array.isArray(v) && v.length > 1) yield setAt(cloneJson(root), node.path, v.slice(0, Math.floor(v.length / 2)));
    if (v !== null && typeof v === 'object' && Object.keys(v).length > 0) yield setAt(cloneJson(root), node.path, Array.isArray(v) ? [] : {});
    if (typeof v === 'number' && v !== 0 && v !== 1) yield setAt(cloneJson(root), node.path, 1);
  }
}

/** Greedy first-improvement search over `candidates` of a value. */
async function greedy<T>(value: T, candidates: (v: T) => Iterable<T>, fails: Predicate<T>, budget: Budget): Promise<T> {
  let current = value;
  let improved = true;
  while (improved && !budget.spent) {
    improved = false;
    for (const candidate of candidates(current)) {
      if (budget.spent) break;
      budget.trials++;
      if (await fails(candidate)) {
        current = candidate;
        improved = true;
        break;
      }
    }
  }
  return current;
}

async function shrinkBytes(bytes: Buffer, fails: Predicate<Buffer>, budget: Budget): Promise<Buffer> {
  if (bytes.length <= 1) return bytes;
  // Text made of CRLF lines (HTTP heads): whole lines first, which keeps what is left well-formed longer.
  const text = bytes.toString('latin1');
  if (text.includes('\r\n')) {
    const lines = text.split('\r\n');
    const kept = await ddmin(lines, (list) => fails(Buffer.from(list.join('\r\n'), 'latin1')), budget, 1);
    bytes = Buffer.from(kept.join('\r\n'), 'latin1');
  }
  // Chunks of the buffer as the ddmin units: at most 64 units, refined down to single bytes for small payloads.
  let unit = Math.max(1, Math.ceil(bytes.length / 64));
  let current = bytes;
  while (!budget.spent) {
    const units: Buffer[] = [];
    for (let i = 0; i < current.length; i += unit) units.push(current.subarray(i, i + unit));
    current = Buffer.concat(await ddmin(units, (list) => fails(Buffer.concat(list)), budget, 0));
    if (unit === 1) break;
    unit = Math.max(1, Math.floor(unit / 4));
  }
  return current;
}

/** Simplifies one step while the input still fails. */
async function shrinkStep(input: FuzzInput, at: number, fails: Predicate<FuzzInput>, budget: Budget): Promise<FuzzInput> {
  const withStep = (step: Step): FuzzInput => ({ ...input, steps: input.steps.map((s, i) => (i === at ? step : s)) });
  const step = input.steps[at]!;
  if ('frame' in step) {
    const frame = await greedy(step.frame, simplerJson, (f) => fails(withStep({ frame: f })), budget);
    return withStep({ frame });
  }
  if ('text' in step) {
    // A text that parses as JSON shrinks as a tree first, then as bytes.
    let text = step.text;
    try {
      const tree = JSON.parse(text) as Json;
      const smaller = await greedy(tree, simplerJson, (f) => fails(withStep({ text: JSON.stringify(f) })), budget);
      if (smaller !== tree) text = JSON.stringify(smaller);
    } catch {
      // not JSON: bytes only
    }
    const bytes = await shrinkBytes(Buffer.from(text, 'utf8'), (b) => fails(withStep({ text: b.toString('utf8') })), budget);
    return withStep({ text: bytes.toString('utf8') });
  }
  const b64Field = (['textBytes', 'binary', 'tcp'] as const).find((k) => k in step);
  if (b64Field) {
    const value = (step as Record<string, string>)[b64Field]!;
    const bytes = await shrinkBytes(Buffer.from(value, 'base64'), (b) => fails(withStep({ ...step, [b64Field]: b.toString('base64') } as Step)), budget);
    return withStep({ ...step, [b64Field]: bytes.toString('base64') } as Step);
  }
  if ('slow' in step) {
    const bytes = await shrinkBytes(Buffer.from(step.slow, 'base64'), (b) => fails(withStep({ ...step, slow: b.toString('base64') })), budget);
    return withStep({ ...step, slow: bytes.toString('base64') });
  }
  if ('http' in step) {
    let http = step.http;
    // Headers one by one, then the body as a tree or as bytes.
    http = { ...http, headers: await ddmin(http.headers, (headers) => fails(withStep({ http: { ...http, headers } })), budget, 0) };
    const body = http.body;
    if (body !== undefined) {
      try {
        const tree = JSON.parse(body) as Json;
        const smaller = await greedy(tree, simplerJson, (f) => fails(withStep({ http: { ...http, body: JSON.stringify(f) } })), budget);
        http = { ...http, body: JSON.stringify(smaller) };
      } catch {
        const bytes = await shrinkBytes(Buffer.from(body, 'utf8'), (b) => fails(withStep({ http: { ...http, body: b.toString('utf8') } })), budget);
        http = { ...http, body: bytes.toString('utf8') };
      }
    }
    return withStep({ http });
  }
  if ('wsFrame' in step) {
    const bytes = await shrinkBytes(Buffer.from(step.wsFrame.payload, 'base64'), (b) => fails(withStep({ wsFrame: { ...step.wsFrame, payload: b.toString('base64') } })), budget);
    return withStep({ wsFrame: { ...step.wsFrame, payload: bytes.toString('base64') } });
  }
  if ('fragments' in step) {
    const sizes = await ddmin(step.sizes, (s) => fails(withStep({ ...step, sizes: s })), budget, 0);
    return withStep({ ...step, sizes });
  }
  return input;
}

/** Shrinks one failing input: fewer steps, then simpler steps. `fails` must hold for `input` itself. */
export async function shrinkInput(input: FuzzInput, fails: Predicate<FuzzInput>, limits: ShrinkBudget): Promise<{ input: FuzzInput; trials: number }> {
  const budget = new Budget(limits);
  let current = input;
  const steps = await ddmin(current.steps, (s) => fails({ ...current, steps: s }), budget, 1);
  current = { ...current, steps };
  for (let i = 0; i < current.steps.length && !budget.spent; i++) current = await shrinkStep(current, i, fails, budget);
  return { input: { ...current, title: `${input.title} (shrunk)` }, trials: budget.trials };
}

/** Shrinks a list of inputs to the fewest that still fail together (a batch-level failure). */
export async function shrinkInputs(inputs: FuzzInput[], fails: Predicate<FuzzInput[]>, limits: ShrinkBudget): Promise<{ inputs: FuzzInput[]; trials: number }> {
  const budget = new Budget(limits);
  const out = await ddmin(inputs, fails, budget, 1);
  return { inputs: out, trials: budget.trials };
}
