// Lines of operations per acting device, for [TRN-34]: an operation takes its place when it is called, waits for the
// one ahead of it to pass, and passes as soon as it has SENT the step that applies its effect. Commands on one Redis
// connection run in the order they are sent, so those steps take effect in call order, while the steps before them
// (a claim, a read) and the waiting for answers overlap freely.

export interface Turn {
  /** The turn ahead in the line; undefined when there is none (the operation may go at once). */
  ahead: Promise<void> | undefined;
  /** Lets the next operation of the line go; safe to call more than once. */
  pass: () => void;
}

export class Turns {
  private readonly tails = new Map<string, Promise<void>>();

  take(line: string): Turn {
    const ahead = this.tails.get(line);
    let pass!: () => void;
    const mine = new Promise<void>((resolve) => (pass = resolve));
    this.tails.set(line, mine);
    void mine.then(() => {
      if (this.tails.get(line) === mine) this.tails.delete(line);
    });
    return { ahead, pass };
  }
}
