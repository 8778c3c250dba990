// The shape every `tickwire` subcommand has, so the dispatcher can list, describe and run them alike.

export interface Command {
  name: string;
  /** One line for `tickwire --help`. */
  summary: string;
  /** The full text of `tickwire <name> --help`. */
  help: string;
  /** Runs the command; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

/** Raised for bad command-line arguments: the dispatcher prints the message and the usage hint, exit code 2. */
export class UsageError extends Error {
  readonly code = 'USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Parses `--name value` and `--name=value` pairs where every option takes a value: unknown options, missing values,
 * repeated options and positional arguments are UsageErrors. Commands with boolean flags use node:util's parseArgs.
 */
export function parseValueFlags(args: string[], known: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (!known.has(name)) throw new UsageError(`unknown option --${name}`);
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = args[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      i++;
    }
    if (out.has(name)) throw new UsageError(`--${name} is given more than once`);
    out.set(name, value);
  }
  return out;
}
