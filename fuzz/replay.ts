// Replaying a corpus file: set up fresh identities on the server, run the file's inputs one after the other, then the
// batch oracles; what the oracles report is the verdict. `tickwire fuzz --replay` and the regression test share it.
import { startStallWatch } from './clock.ts';
import type { CorpusFile } from './corpus.ts';
import { Fuzzer } from './fuzzer.ts';
import type { InputRun } from './oracles/answers.ts';
import type { Finding } from './oracles/finding.ts';

export interface ReplayResult {
  runs: InputRun[];
  /** Every finding: the inputs' own and the batch oracles'. */
  findings: Finding[];
}

export interface ReplayOptions {
  settleMs?: number;
  timeoutMs?: number;
  log?: (line: string) => void;
  /** Called after each input has been judged. */
  onRun?: (run: InputRun) => void;
}

export async function replayFile(url: string, file: CorpusFile, options: ReplayOptions = {}): Promise<ReplayResult> {
  startStallWatch();
  const fuzzer = await Fuzzer.start({
    url,
    seed: file.seed ?? 0,
    lanes: 1,
    settleMs: options.settleMs ?? 25,
    timeoutMs: options.timeoutMs ?? 10_000,
    maxInFlight: 32,
    memory: { limitBytes: Infinity, warmup: 0, sustain: 1 },
    log: options.log ?? (() => undefined),
  });
  try {
    const runs: InputRun[] = [];
    const findings: Finding[] = [];
    for (const input of file.inputs) {
      const run = await fuzzer.run(0, file.index ?? -1, input);
      runs.push(run);
      findings.push(...run.findings);
      options.onRun?.(run);
    }
    await fuzzer.quiesce();
    findings.push(...(await fuzzer.check({ janitor: true, memory: false })));
    return { runs, findings };
  } finally {
    await fuzzer.close().catch(() => undefined);
  }
}
