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
