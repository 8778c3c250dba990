// Section 4 of PROTOCOL.md as a whole: the model-based delivery property (conformance/model/). Random scenarios of
// users connecting, disconnecting, sending, resending, acknowledging, withholding acknowledgements and reconnecting
// (and, where the server can be restarted, crashing it), each judged by the history checker. --model-runs sets the
// number of scenarios; the restart variant runs a quarter of them, since every restart costs a server start.
import type { ConformanceCase } from '../case.ts';
import type { SuiteEnv } from '../context.ts';
import { ANOMALIES } from '../model/checker.ts';
import { DEFAULT_MODEL_RUNS, runModel } from '../model/property.ts';

/** Requirements only a crash can put to the test. */
const CRASH_ONLY = new Set(['DLV-39', 'RCP-5']);
/** What the anomalies cite, and the queue_empty the final drain waits for on every session. */
const cited = [...new Set([...Object.values(ANOMALIES).flatMap((a) => a.requirements), 'DLV-25'])];

function runsOf(env: SuiteEnv, restarts: boolean): number {
  const runs = env.modelRuns ?? DEFAULT_MODEL_RUNS;
  return restarts ? Math.max(1, Math.ceil(runs / 4)) : runs;
}

export const cases: ConformanceCase[] = [
  {
    id: '4.5/model-delivery-history',
    requirements: cited.filter((id) => !CRASH_ONLY.has(id)),
    level: 'must',
    title: 'random send/ack/withhold/reconnect scenarios: nothing lost, phantom, duplicated after ack or reordered; every applied ack gets its receipt',
    async run(ctx) {
      await runModel(ctx, { runs: runsOf(ctx.env, false), restarts: false });
    },
  },
  {
    id: '4.5/model-delivery-history-restarts',
    requirements: cited,
    level: 'must',
    title: 'the same scenarios with server crashes among them: every durability promise holds across each crash',
    needs: ['restart'],
    async run(ctx) {
      await runModel(ctx, { runs: runsOf(ctx.env, true), restarts: true });
    },
  },
];
