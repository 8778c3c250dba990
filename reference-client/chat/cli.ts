// `tickwire chat`: the interactive terminal client. Opens (or first registers, or links) one device with the messaging
// library, connects, and hands the terminal to a ChatSession until /quit, Ctrl-D, SIGINT or SIGTERM.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseValueFlags, UsageError, type Command } from '../../bin/command.ts';
import type { ClientOptions, ReceivedMessage } from '../client-api.ts';
import { TickwireClient } from '../client.ts';
import { CLOSE_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_DEVICE_NAME, EXIT_GRACE_MS } from './constants.ts';
import { isUsername } from './contacts.ts';
import { commandHelp } from './format.ts';
import { openScreen } from './screen.ts';
import { ChatSession, type ChatClient } from './session.ts';

const OPTIONS: Array<[flag: string, value: string, help: string]> = [
  ['url', '<url>', 'the server, http://host:port or https://host:port (required)'],
  ['name', '<username>', 'your username: registered on first run (3 to 32 of a-z, 0-9, _)'],
  ['state-dir', '<dir>', 'keys, sessions and outbox of this device (default ~/.tickwire/<name>)'],
  ['device-name', '<name>', `label of this device in your device list (default "${DEFAULT_DEVICE_NAME}")`],
  ['link-code', '<code>', 'join an existing account as a new device, with a code from /link on one of its devices'],
  ['connect-timeout', '<sec>', `give up when the first connection takes longer (default ${DEFAULT_CONNECT_TIMEOUT_MS / 1000})`],
];

function helpText(): string {
  return [
    'Usage: tickwire chat --url <url> --name <username> [options]',
    '',
    'End-to-end-encrypted chat in the terminal. The first run with a new state directory registers <username> (or,',
    'with --link-code, adds this device to an existing account); later runs reopen the state directory.',
    '',
    'Options:',
    ...OPTIONS.map(([flag, value, help]) => `  --${flag} ${value}`.padEnd(28) + help),
    '',
    'Commands at the prompt:',
    ...commandHelp(),
    '',
    'Your messages show ticks: ✓ sent (the server has it), ✓✓ delivered (a device of the peer has it), ✓✓ read.',
    'When stdin or stdout is not a terminal, the chat reads one command per line and prints one event per line,',
    'with no prompt: your message as "[12:01] you → bob: text (id <messageId>)", then "tick <messageId> sent",',
    '"tick <messageId> delivered", "tick <messageId> read"; incoming "[12:01] bob: text"; "bob is online",',
    '"bob was last seen 12:03", "bob is typing…", "bob stopped typing".',
    '',
    'Exit codes: 0 after /quit, end of input, SIGINT or SIGTERM; 1 the server ended the session for good (device',
    'removed, replaced); 2 bad options, or the account could not be opened, registered or connected.',
  ].join('\n');
}

interface ChatArgs {
  url: string;
  name: string | undefined;
  stateDir: string;
  deviceName: string;
  linkCode: string | undefined;
  connectTimeoutMs: number;
}

export function parseChatArgs(args: string[]): ChatArgs {
  const flags = parseValueFlags(args, new Set(OPTIONS.map(([flag]) => flag)));
  const url = flags.get('url');
  if (url === undefined) throw new UsageError('--url is required');
  if (!/^https?:\/\/[^/\s]+\/?$/.test(url)) throw new UsageError(`--url must look like http://host:port (got '${url}')`);
  const name = flags.get('name');
  if (name !== undefined && !isUsername(name)) throw new UsageError(`--name must be 3 to 32 of a-z, 0-9 and _ (got '${name}')`);
  const stateDir = flags.get('state-dir');
  if (name === undefined && stateDir === undefined) throw new UsageError('--name is required (or --state-dir of an existing device)');
  const timeout = flags.get('connect-timeout') ?? String(DEFAULT_CONNECT_TIMEOUT_MS / 1000);
  if (!/^[1-9][0-9]{0,5}$/.test(timeout)) throw new UsageError(`--connect-timeout must be a whole number of seconds (got '${timeout}')`);
  return {
    url: url.replace(/\/$/, ''),
    name,
    stateDir: resolve(stateDir ?? join(homedir(), '.tickwire', name!)),
    deviceName: flags.get('device-name') ?? DEFAULT_DEVICE_NAME,
    linkCode: flags.get('link-code'),
    connectTimeoutMs: Number(timeout) * 1000,
  };
}

/** One line for an error from the library or the network: codes first, then the messages down the `cause` chain. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (!(e instanceof Error)) {
      parts.push(String(e));
      break;
    }
    const code = (e as { code?: unknown }).code;
    parts.push(typeof code === 'string' && !e.message.includes(code) ? `${code}: ${e.message}` : e.message);
    e = e.cause;
  }
  return parts.join(': ').replace(/\s+/g, ' ');
}

/** A state directory that holds nothing yet means a first run. */
function isFresh(stateDir: string): boolean {
  return !existsSync(stateDir) || readdirSync(stateDir).length === 0;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Our username. The library knows it for a registered device; a linked one was never told (no endpoint maps a userId
 * to a username), so there we take --name and make sure the server's directory agrees.
 */
async function checkUsername(client: ChatClient, name: string | undefined, linked: boolean): Promise<string | { problem: string }> {
  if (client.username !== '' && !linked) {
    if (name !== undefined && name !== client.username) return { problem: `this state directory belongs to ${client.username}, not ${name}` };
    return client.username;
  }
  const claimed = client.username !== '' ? client.username : name;
  if (claimed === undefined) return { problem: 'give --name: a linked device has to be told its username' };
  let userId: string | undefined;
  try {
    userId = await client.lookup(claimed);
  } catch (error) {
    return { problem: `cannot look up ${claimed}: ${describeError(error)}` };
  }
  if (userId !== client.address.userId) return { problem: `this device belongs to user ${client.address.userId}, which is not ${claimed}` };
  return claimed;
}

function fail(message: string): number {
  console.error(`tickwire chat: ${message}`);
  return 2;
}

async function runChat(args: string[]): Promise<number> {
  const options = parseChatArgs(args);
  let session: ChatSession | undefined;
  let startSession!: (session: ChatSession) => void;
  const sessionReady = new Promise<ChatSession>((resolve) => (startSession = resolve));
  const clientOptions: ClientOptions = {
    url: options.url,
    stateDir: options.stateDir,
    onMessage: async (message: ReceivedMessage) => (session ?? (await sessionReady)).receive(message),
  };

  const fresh = isFresh(options.stateDir);
  const existed = existsSync(options.stateDir);
  let client: ChatClient;
  let opened: string;
  try {
    if (!fresh) {
      client = await TickwireClient.open(clientOptions);
      opened = 'opened';
    } else if (options.linkCode !== undefined) {
      client = await TickwireClient.link(clientOptions, options.linkCode, options.deviceName, options.name);
      opened = 'linked new device of';
    } else if (options.name !== undefined) {
      client = await TickwireClient.register(clientOptions, options.name, options.deviceName);
      opened = 'registered';
    } else {
      return fail(`${options.stateDir} holds no account; give --name to register one (or --link-code)`);
    }
  } catch (error) {
    // A failed first run must not leave a half-made state directory that later runs would try to open.
    if (fresh && !existed) rmSync(options.stateDir, { recursive: true, force: true });
    else if (fresh) for (const entry of readdirSync(options.stateDir)) rmSync(join(options.stateDir, entry), { recursive: true, force: true });
    const what = fresh ? (options.linkCode !== undefined ? 'link this device' : `register ${options.name}`) : `open ${options.stateDir}`;
    return fail(`cannot ${what} at ${options.url}: ${describeError(error)}`);
  }
  const username = await checkUsername(client, options.name, opened === 'linked new device of');
  if (typeof username !== 'string') {
    await client.close();
    return fail(username.problem);
  }

  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const screen = openScreen({ input: process.stdin, output: process.stdout }, interactive);
  session = new ChatSession(client, screen, { url: options.url, username, colour: interactive });
  startSession(session);
  const { userId, deviceId } = client.address;
  screen.print(`${opened} ${username} (user ${userId}, device ${deviceId}); state in ${options.stateDir}`);
  screen.print('type /help for the commands');

  const onSignal = (): void => session?.quit(0);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let lastFailure: string | undefined;
  client.on('warning', (warning) => {
    if (warning.code === 'CONNECT_FAILED') lastFailure = warning.message;
  });
  const connected = withTimeout(client.connect(), options.connectTimeoutMs, 'connecting');
  session.waitFor(connected);
  let code: number;
  try {
    code = await Promise.race([connected.then(() => session!.done), session.done]);
  } catch (error) {
    code = fail(`cannot connect to ${options.url}: ${describeError(error)}${lastFailure === undefined ? '' : ` (last attempt: ${lastFailure})`}`);
  }
  session.quit(code);
  screen.close();
  try {
    await withTimeout(client.close(), CLOSE_TIMEOUT_MS, 'closing');
  } catch (error) {
    console.error(`tickwire chat: ${describeError(error)}`);
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Whatever handle the library may leave open, the process ends soon after its work is done.
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
  return code;
}

export const chatCommand: Command = {
  name: 'chat',
  summary: 'end-to-end-encrypted chat in the terminal (registers, links or reopens a device)',
  help: helpText(),
  run: runChat,
};
