// The server fuzzer's generators stay within bounds: mutations compound (an element repeated inside a repeated
// element inside deep nesting), and one input of the fuzz:long campaign (seed 20261128, input 745967) once grew to
// 131 MB and took the fuzzer 23 s of CPU to build, long enough for the server to time out the fuzzer's slow-writer
// requests and for the oracles to blame the server. Inputs are deterministic per seed and index, so that input is
// checked here by size, along with a sample of the sequence.
import t from 'tap';
import { generate } from '../../fuzz/fuzzer.ts';
import { INPUT_CLASSES } from '../../fuzz/input.ts';
import { DEFAULT_WEIGHTS } from '../../fuzz/cli.ts';
import { REPEAT_BUDGET } from '../../fuzz/generators/mutate.ts';

const weights = INPUT_CLASSES.map((c) => [DEFAULT_WEIGHTS[c], c] as const);
/** At most three mutations, each adding at most REPEAT_BUDGET, on top of the largest fixed-size inputs (~1.1 MB). */
const MAX_INPUT_BYTES = 3 * REPEAT_BUDGET + 2 * 1024 * 1024;

t.test('the input that once grew to 131 MB is bounded now', async (t) => {
  const { input } = generate(20261128, 745967, weights);
  const bytes = JSON.stringify(input).length;
  t.ok(bytes <= MAX_INPUT_BYTES, `${bytes} bytes`);
});

t.test('a sample of inputs stays within the bound', async (t) => {
  let largest = 0;
  for (let i = 0; i < 3000; i++) {
    const { input } = generate(7, i, weights);
    largest = Math.max(largest, JSON.stringify(input).length);
  }
  t.ok(largest <= MAX_INPUT_BYTES, `largest of 3,000: ${largest} bytes`);
});
