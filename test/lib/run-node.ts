// Runs `node ARGS` as a child process to its end and resolves its exit code, stdout and stderr: the tests of the
// command-line tools and benchmarks run them exactly as a user would.
import { spawn } from 'node:child_process';

export interface NodeRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runNode(args: string[], options: { cwd?: string } = {}): Promise<NodeRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { ...(options.cwd === undefined ? {} : { cwd: options.cwd }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
