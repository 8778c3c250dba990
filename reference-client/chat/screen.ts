// The terminal under the chat, on node:readline. Two faces of one interface:
// - interactive (stdin and stdout are TTYs): a prompt naming the current peer stays at the bottom, events are printed
//   above it without disturbing what the user is typing, a message line can be rewritten in place while it is still on
//   screen (its ticks), and every keystroke is reported (for typing indicators);
// - line mode (pipes, scripts, tests): no prompt, no escape sequences, one event per output line, one command per input
//   line, nothing is ever rewritten.
import { createInterface, clearScreenDown, cursorTo, moveCursor, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/** A printed line that may be rewritten later. */
export interface LineHandle {
  readonly row: number;
  readonly rows: number;
  readonly epoch: number;
}

export interface ScreenEvents {
  line: (text: string) => void;
  /** End of input (Ctrl-D, a closed pipe). */
  end: () => void;
  /** Ctrl-C at the prompt. */
  interrupt: () => void;
  /** The text being typed changed (interactive only). */
  edit: (text: string) => void;
}

export interface Screen {
  readonly interactive: boolean;
  /** Prints one event line (above the prompt when interactive). */
  print(line: string): LineHandle;
  /** Rewrites a printed line in place; false when that is not possible (line mode, scrolled away, resized). */
  rewrite(handle: LineHandle, line: string): boolean;
  setPrompt(prompt: string): void;
  on<K extends keyof ScreenEvents>(event: K, listener: ScreenEvents[K]): void;
  close(): void;
}

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Rows a line takes at `columns` wide (wide characters counted as one: a rewrite only trusts one-row lines). */
export function rowsOf(line: string, columns: number): number {
  const length = [...line.replace(ANSI, '')].length;
  return Math.max(1, Math.ceil(length / Math.max(1, columns)));
}

interface Streams {
  input: Readable;
  output: Writable & { isTTY?: boolean; columns?: number; rows?: number };
}

export function openScreen(streams: Streams, interactive: boolean): Screen {
  return interactive ? new TtyScreen(streams) : new LineScreen(streams);
}

abstract class BaseScreen implements Screen {
  abstract readonly interactive: boolean;
  protected readonly rl: Interface;
  private closed = false;

  constructor(
    protected readonly streams: Streams,
    terminal: boolean,
  ) {
    this.rl = createInterface({ input: streams.input, output: terminal ? streams.output : undefined, terminal });
  }

  abstract print(line: string): LineHandle;
  abstract rewrite(handle: LineHandle, line: string): boolean;
  abstract setPrompt(prompt: string): void;

  on<K extends keyof ScreenEvents>(event: K, listener: ScreenEvents[K]): void {
    if (event === 'line') this.rl.on('line', listener as ScreenEvents['line']);
    else if (event === 'end') this.rl.on('close', () => (this.closed ? undefined : (listener as ScreenEvents['end'])()));
    else if (event === 'interrupt') this.rl.on('SIGINT', listener as ScreenEvents['interrupt']);
    else this.onEdit(listener as ScreenEvents['edit']);
  }

  protected onEdit(_listener: ScreenEvents['edit']): void {
    // Line mode has no keystrokes.
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rl.close();
    this.streams.input.pause();
  }
}

class LineScreen extends BaseScreen {
  readonly interactive = false;

  constructor(streams: Streams) {
    super(streams, false);
  }

  print(line: string): LineHandle {
    this.streams.output.write(`${line}\n`);
    return { row: -1, rows: 1, epoch: -1 };
  }

  rewrite(): boolean {
    return false;
  }

  setPrompt(): void {
    // Scripts get no prompt: every output line is an event.
  }
}

/** readline keeps the row of the cursor within the prompt in `prevRows`; we redraw around it (Node >= 10). */
type RedrawableInterface = Interface & { prevRows?: number };

class TtyScreen extends BaseScreen {
  readonly interactive = true;
  /** Rows printed above the prompt since start; a handle remembers where its line began. */
  private rowsPrinted = 0;
  /** Bumped on every resize: wrapped lines reflow, so older handles can no longer be found. */
  private epoch = 0;

  constructor(streams: Streams) {
    super(streams, true);
    streams.output.on('resize', () => this.epoch++);
    this.rl.prompt();
  }

  private get columns(): number {
    // A pseudo-terminal whose size was never set reports 0.
    return this.streams.output.columns || 80;
  }

  /** Moves the cursor to the first row of the prompt, column 0. */
  private toPromptStart(): number {
    const above = this.rl.getCursorPos().rows;
    if (above > 0) moveCursor(this.streams.output, 0, -above);
    cursorTo(this.streams.output, 0);
    return above;
  }

  /** Redraws prompt and input from the cursor, which must sit at the first row of the prompt. */
  private redrawPrompt(): void {
    (this.rl as RedrawableInterface).prevRows = 0;
    this.rl.prompt(true);
  }

  print(line: string): LineHandle {
    const handle = { row: this.rowsPrinted, rows: rowsOf(line, this.columns), epoch: this.epoch };
    this.toPromptStart();
    clearScreenDown(this.streams.output);
    this.streams.output.write(`${line}\n`);
    this.rowsPrinted += handle.rows;
    this.redrawPrompt();
    return handle;
  }

  rewrite(handle: LineHandle, line: string): boolean {
    if (handle.epoch !== this.epoch || handle.rows !== 1 || rowsOf(line, this.columns) !== 1) return false;
    const up = this.rowsPrinted - handle.row;
    const promptRows = this.rl.getCursorPos().rows;
    // Only lines still on screen; the terminal's own scrollback cannot be written to.
    if (up < 1 || up + promptRows >= (this.streams.output.rows || 24)) return false;
    this.toPromptStart();
    moveCursor(this.streams.output, 0, -up);
    this.streams.output.write(`\x1b[2K${line}`);
    cursorTo(this.streams.output, 0);
    moveCursor(this.streams.output, 0, up);
    this.redrawPrompt();
    return true;
  }

  setPrompt(prompt: string): void {
    this.rl.setPrompt(prompt);
    this.toPromptStart();
    this.redrawPrompt();
  }

  protected override onEdit(listener: ScreenEvents['edit']): void {
    // readline turns the TTY into keypress events; read the line after readline has applied the key.
    this.streams.input.on('keypress', () => setImmediate(() => listener(this.rl.line)));
  }

  override close(): void {
    this.streams.output.write('\n');
    super.close();
  }
}

