// The terminal layer on fake streams: line mode prints plain lines; the TTY face rewrites a line only while it can
// find it on screen.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { openScreen, rowsOf } from '../../../reference-client/chat/screen.ts';

function streams(tty: boolean) {
  const input = new PassThrough();
  const output = Object.assign(new PassThrough(), { isTTY: tty, columns: 40, rows: 10 });
  let written = '';
  output.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
  return { input, output, written: () => written };
}

t.test('rowsOf counts wrapped rows, ignoring colour codes', async (t) => {
  t.equal(rowsOf('', 40), 1);
  t.equal(rowsOf('x'.repeat(40), 40), 1);
  t.equal(rowsOf('x'.repeat(41), 40), 2);
  t.equal(rowsOf(`\x1b[34m${'✓'.repeat(40)}\x1b[0m`, 40), 1);
});

t.test('line mode: one line per event, no prompt, no rewrites; input lines and end of input', async (t) => {
  const s = streams(false);
  const screen = openScreen(s, false);
  const lines: string[] = [];
  let ended = false;
  screen.on('line', (line) => lines.push(line));
  screen.on('end', () => (ended = true));
  screen.setPrompt('bob> ');
  const handle = screen.print('hello');
  t.equal(screen.rewrite(handle, 'changed'), false);
  s.input.end('/to bob\nhi\n');
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(s.written(), 'hello\n');
  t.same(lines, ['/to bob', 'hi']);
  t.ok(ended);
  screen.close();
});

t.test('TTY: a line on screen is rewritten in place; scrolled away, too long or after a resize it is not', async (t) => {
  const s = streams(true);
  const screen = openScreen(s, true);
  screen.setPrompt('bob> ');
  const first = screen.print('first …');
  screen.print('second');
  t.equal(screen.rewrite(first, 'first ✓✓'), true);
  t.match(s.written(), /\x1b\[2Kfirst ✓✓/);
  t.equal(screen.rewrite(first, 'x'.repeat(41)), false, 'would wrap');
  for (let i = 0; i < 10; i++) screen.print(`line ${i}`);
  t.equal(screen.rewrite(first, 'first read'), false, 'scrolled off a 10-row screen');
  const late = screen.print('late');
  s.output.emit('resize');
  t.equal(screen.rewrite(late, 'late ✓'), false, 'after a resize');
  screen.close();
});
