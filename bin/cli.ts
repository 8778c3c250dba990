// Dispatches `tickwire <command> [options]` to the part of the project that implements the command.
import { readFileSync } from 'node:fs';
import { UsageError, type Command } from './command.ts';
import { specCommands } from './spec-commands.ts';
import { serveCommand } from '../reference-server/cli.ts';
import { conformanceCommand } from '../conformance/cli.ts';
import { chatCommand } from '../reference-client/chat/cli.ts';
import { fuzzCommand } from '../fuzz/cli.ts';
import { hostCheckCommand } from '../load/host-check-command.ts';
import { loadCommand } from '../load/cli.ts';

const COMMANDS: Command[] = [...specCommands, serveCommand, chatCommand, conformanceCommand, fuzzCommand, hostCheckCommand, loadCommand];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: tickwire <command> [options]',
    '',
    'Tickwire: wire protocol, reference implementations and conformance kit for end-to-end-encrypted',
    'store-and-forward messaging.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show help (also: tickwire <command> --help)',
    '  -v, --version  print the version',
    '',
    'Exit codes: 0 success, 1 the command ran and found a failure, 2 bad usage or the command could not run.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    const command = topic === undefined ? undefined : COMMANDS.find((c) => c.name === topic);
    console.log(command ? command.help : usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '-v' || name === '--version') {
    console.log(version());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`tickwire: unknown command '${name}'. Run 'tickwire --help' for the list.`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    console.log(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`tickwire ${name}: ${error.message}\nRun 'tickwire ${name} --help' for usage.`);
      return 2;
    }
    throw error;
  }
}
