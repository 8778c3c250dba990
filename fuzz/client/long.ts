// The client fuzzer's long run: the properties of the quick test (test/fuzz/client.test.ts) at `--factor` times its
// runs (default 100), with a fresh seed unless `--seed` is given, conversations including the heavy losses (more than
// MAX_MESSAGE_KEYS and up to MAX_FORWARD_JUMPS + 1 messages at once). Every property runs even after one fails; the
// exit code is 1 if any failed. A failure prints the seed, the replay path and the shrunk counterexample:
//   npm run fuzz:client:long -- --only decoders --seed 123 --path "45:2:0"
// replays it. Usage: npm run fuzz:client:long -- [--factor N] [--seed N] [--only decoders|mutations|conversations]
//   [--path P] [--light]
import { parseArgs } from 'node:util';
import { conversationProperty, decoderProperty, mutationProperty, QUICK_RUNS, type PropertyOptions, type PropertyReport } from './properties.ts';

const PROPERTIES: Record<keyof typeof QUICK_RUNS, (options: PropertyOptions) => PropertyReport> = {
  decoders: decoderProperty,
  mutations: mutationProperty,
  conversations: conversationProperty,
};

const { values } = parseArgs({
  options: {
    factor: { type: 'string', default: '100' },
    seed: { type: 'string' },
    only: { type: 'string' },
    path: { type: 'string' },
    light: { type: 'boolean', default: false },
  },
});

const factor = Number(values.factor);
if (!Number.isInteger(factor) || factor < 1) throw new RangeError('--factor must be a positive integer');
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
if (!Number.isSafeInteger(seed)) throw new RangeError('--seed must be an integer');
const names = (values.only === undefined ? Object.keys(PROPERTIES) : values.only.split(',')) as Array<keyof typeof QUICK_RUNS>;
for (const name of names) if (!(name in PROPERTIES)) throw new RangeError(`unknown property ${name}; known: ${Object.keys(PROPERTIES).join(', ')}`);

console.log(`client fuzzer: seed ${seed}, ${factor}× the quick runs${values.light ? ', no heavy losses' : ''}`);
let failed = 0;
for (const name of names) {
  const runs = QUICK_RUNS[name] * factor;
  const start = performance.now();
  try {
    const report = PROPERTIES[name]({ runs, seed, path: values.path, heavy: !values.light });
    const outcomes = Object.entries(report.outcomes).sort().map(([k, v]) => `${k}=${v}`).join(' ');
    console.log(`ok   ${name}: ${runs} runs in ${(report.ms / 1000).toFixed(1)} s; ${outcomes}`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${name} after ${((performance.now() - start) / 1000).toFixed(1)} s (replay: --only ${name} --seed ${seed} and the path below)`);
    console.log(error instanceof Error ? error.message : String(error));
  }
}
console.log(failed === 0 ? 'no findings' : `${failed} propert${failed === 1 ? 'y' : 'ies'} failed: add the shrunk input to fuzz/corpus/client/ once fixed`);
process.exitCode = failed === 0 ? 0 : 1;
