// The client fuzzer at a modest number of runs with fixed seeds (fuzz/client/; `npm run fuzz:client:long` runs the
// same properties a hundred times longer), and the replay of its regression corpus, fuzz/corpus/client/*.json.
// A failure prints fast-check's seed, replay path and shrunk counterexample.
import t from 'tap';
import * as e2e from '../../reference-client/e2e/index.ts';
import { loadCorpus, replay } from '../../fuzz/client/corpus.ts';
import { conversationProperty, decoderProperty, mutationProperty, QUICK_RUNS, QUICK_SEED as SEED, type PropertyReport } from '../../fuzz/client/properties.ts';
import { SPEC_LIMITS } from '../../fuzz/client/session-model.ts';

const summary = (r: PropertyReport): string =>
  `${r.runs} runs, seed ${r.seed}, ${r.ms} ms; outcomes ${Object.entries(r.outcomes).sort().map(([k, v]) => `${k}=${v}`).join(' ')}`;

t.test('the model reads the limits of table 8.8 as the client does', async (t) => {
  t.same(
    SPEC_LIMITS,
    {
      MAX_FORWARD_JUMPS: e2e.MAX_FORWARD_JUMPS,
      MAX_MESSAGE_KEYS: e2e.MAX_MESSAGE_KEYS,
      MAX_RECEIVER_CHAINS: e2e.MAX_RECEIVER_CHAINS,
      ARCHIVED_STATES_MAX_LENGTH: e2e.ARCHIVED_STATES_MAX_LENGTH,
      MAX_UNACKNOWLEDGED_SESSION_AGE_MS: e2e.MAX_UNACKNOWLEDGED_SESSION_AGE_MS,
    },
  );
});

t.test('decoders: any bytes decode as the spec says or are rejected with an allowed E2E code, changing nothing', async (t) => {
  const report = decoderProperty({ runs: QUICK_RUNS.decoders, seed: SEED });
  t.comment(summary(report));
  // The inputs reach every decoder outcome, and real sessions beyond the decoder.
  for (const key of ['signal:ok', 'prekey:ok', 'signal:E2E_MALFORMED_MESSAGE', 'prekey:E2E_UNSUPPORTED_VERSION', 'prekey:E2E_INVALID_KEY', 'decrypt:E2E_BAD_MAC']) {
    t.ok((report.outcomes[key] ?? 0) > 0, `reached ${key}`);
  }
});

t.test('mutations: a changed envelope is rejected without a state change (or is the original), then the original decrypts', async (t) => {
  const report = mutationProperty({ runs: QUICK_RUNS.mutations, seed: SEED });
  t.comment(summary(report));
  for (const key of ['mutated:E2E_BAD_MAC', 'mutated:E2E_MALFORMED_MESSAGE', 'mutated:E2E_INVALID_KEY', 'mutated:E2E_UNTRUSTED_IDENTITY', 'genuine:ok']) {
    t.ok((report.outcomes[key] ?? 0) > 0, `reached ${key}`);
  }
});

t.test('conversations: any sequence of Alice/Bob actions matches the spec model, delivery by delivery', async (t) => {
  const report = conversationProperty({ runs: QUICK_RUNS.conversations, seed: SEED });
  t.comment(summary(report));
  for (const key of ['ok', 'E2E_DUPLICATE_MESSAGE', 'E2E_BAD_MAC', 'E2E_NO_SESSION', 'E2E_UNKNOWN_PREKEY']) {
    t.ok((report.outcomes[key] ?? 0) > 0, `reached ${key}`);
  }
});

t.test('regression corpus: fuzz/corpus/client/*.json', async (t) => {
  const corpus = loadCorpus();
  t.ok(corpus.length > 0, `${corpus.length} entries`);
  for (const { file, entry } of corpus) {
    t.test(`${file}: ${entry.comment}`, async (t) => {
      t.equal(entry.id, file.replace(/\.json$/, ''), 'the id names the file');
      t.pass(`${entry.target}: ${replay(entry)}`);
    });
  }
});
