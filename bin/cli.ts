// Dispatches `tickwire <command> [options]` to the part of the project that implements the command.
import { readFileSync } from 'node:fs';
import { UsageError, type Command } from './command.ts';
import { specCommands } from './spec-commands.ts';

// Each part's command module is imported only when its command runs: a worker of `serve --workers N` or a test's
// server must not pay for loading the conformance suite, the fuzzer and the load tool (about a second of imports on
// a quiet machine, several on a busy one). The list keeps the order `tickwire --help` prints.
const LOADERS: Array<{ name: string; load: () => Promise<Command> }> = [
  ...specCommands.map((command) => ({ name: command.name, load: async () => command })),
  { name: 'serve', load: async () => (await import('../reference-server/cli.ts')).serveCommand },
  { name: 'chat', load: async () => (await import('../reference-client/chat/cli.ts')).chatCommand },
  { name: 'conformance', load: async () => (await import('../conformance/cli.ts')).conformanceCommand },
  { name: 'fuzz', load: async () => (await import('../fuzz/cli.ts')).fuzzCommand },
  { name: 'host-check', load: async () => (await import('../load/host-check-command.ts')).hostCheckCommand },
  { name: 'load', load: async () => (await import('../load/cli.ts')).loadCommand },
];

async function loadChecked(entry: (typeof LOADERS)[number]): Promise<Command> {
  const command = await entry.load();
  if (command.name !== entry.name) throw new Error(`bin/cli.ts: the module for '${entry.name}' exports the command '${command.name}'`);
  return command;
}

async function loadCommand(name: string): Promise<Command | undefined> {
  const entry = LOADERS.find((l) => l.name === name);
  return entry ? loadChecked(entry) : undefined;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function usage(): Promise<string> {
  const commands = await Promise.all(LOADERS.map(loadChecked));
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: tickwire <command> [options]',
    '',
    'Tickwire: wire protocol, reference implementations and conformance kit for end-to-end-encrypted',
    'store-and-forward messaging.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
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
    const command = topic === undefined ? undefined : await loadCommand(topic);
    console.log(command ? command.help : await usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '-v' || name === '--version') {
    console.log(version());
    return 0;
  }
  const command = await loadCommand(name);
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
