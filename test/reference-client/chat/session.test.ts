// The chat session against a fake library and a fake screen: which lines a script sees for each event, and which
// library calls each command makes.
import t from 'tap';
import { EventEmitter } from 'node:events';
import type { Address, ClientEvents, ReceivedMessage, Tick } from '../../../reference-client/client-api.ts';
import { encodePayload } from '../../../reference-client/chat/format.ts';
import type { LineHandle, Screen, ScreenEvents } from '../../../reference-client/chat/screen.ts';
import { ChatSession, type ChatClient } from '../../../reference-client/chat/session.ts';

class FakeClient extends EventEmitter implements ChatClient {
  readonly address: Address = { userId: 'U-alice', deviceId: 1 };
  readonly username = 'alice';
  readonly calls: string[] = [];
  readonly users = new Map([['alice', 'U-alice'], ['bob', 'U-bob'], ['carol', 'U-carol']]);
  ticks = new Map<string, Tick>();
  private next = 0;

  override on<K extends keyof ClientEvents>(event: K, listener: (...args: ClientEvents[K]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  fire<K extends keyof ClientEvents>(event: K, ...args: ClientEvents[K]): void {
    this.emit(event, ...args);
  }
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async lookup(username: string): Promise<string | undefined> {
    this.calls.push(`lookup ${username}`);
    return this.users.get(username);
  }
  async send(to: string, plaintext: string | Uint8Array): Promise<{ messageId: string }> {
    const text = typeof plaintext === 'string' ? plaintext : new TextDecoder().decode(plaintext);
    this.calls.push(`send ${to} ${text}`);
    const messageId = `m${++this.next}`;
    this.ticks.set(messageId, 'pending');
    return { messageId };
  }
  tickOf(messageId: string): Tick | undefined {
    return this.ticks.get(messageId);
  }
  async markRead(from: Address, messageIds: string[]): Promise<void> {
    this.calls.push(`read ${from.userId}.${from.deviceId} ${messageIds.join(',')}`);
  }
  async subscribePresence(userIds: string[]): Promise<void> {
    this.calls.push(`subscribe ${userIds.join(',')}`);
  }
  typing(to: string, state: 'started' | 'stopped'): void {
    this.calls.push(`typing ${to} ${state}`);
  }
  async createLinkCode(): Promise<{ code: string; expiresAt: number }> {
    return { code: 'ABCDEFGHIJKLMNOPQRSTUVWX', expiresAt: Date.now() + 600_000 };
  }
}

class FakeScreen implements Screen {
  readonly lines: string[] = [];
  prompt = '';
  private readonly listeners: { [K in keyof ScreenEvents]?: ScreenEvents[K] } = {};
  constructor(readonly interactive: boolean) {}
  print(line: string): LineHandle {
    this.lines.push(line);
    return { row: this.lines.length - 1, rows: 1, epoch: 0 };
  }
  rewrite(handle: LineHandle, line: string): boolean {
    if (!this.interactive) return false;
    this.lines[handle.row] = line;
    return true;
  }
  setPrompt(prompt: string): void {
    this.prompt = prompt;
  }
  on<K extends keyof ScreenEvents>(event: K, listener: ScreenEvents[K]): void {
    this.listeners[event] = listener as never;
  }
  close(): void {}
  type(line: string): void {
    this.listeners.line?.(line);
  }
  edit(text: string): void {
    this.listeners.edit?.(text);
  }
  end(): void {
    this.listeners.end?.();
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

function setup(interactive = false) {
  const client = new FakeClient();
  const screen = new FakeScreen(interactive);
  const session = new ChatSession(client, screen, { url: 'http://127.0.0.1:1', username: 'alice' });
  return { client, screen, session };
}

function message(messageId: string, userId: string, plaintext: Uint8Array, deviceId = 1): ReceivedMessage {
  return { messageId, from: { userId, deviceId }, plaintext, serverTime: new Date().setHours(12, 1) };
}

t.test('/to looks the peer up, subscribes to its presence and names it in the prompt', async (t) => {
  const { client, screen } = setup();
  screen.type('/to bob');
  await settle();
  t.same(client.calls, ['lookup bob', 'subscribe U-bob']);
  t.equal(screen.prompt, 'bob> ');
  t.match(screen.lines, ['chatting with bob']);
  screen.type('/to nobody');
  await settle();
  t.match(screen.lines.at(-1), 'no user named nobody');
  screen.type('/to Not-A-Name');
  await settle();
  t.match(screen.lines.at(-1), /error: .*not a username/);
});

t.test('a message goes to the current peer and its ticks follow as status lines, every step once', async (t) => {
  const { client, screen } = setup();
  screen.type('hello?');
  await settle();
  t.match(screen.lines.at(-1), 'pick a peer first');
  screen.type('/to bob');
  screen.type('hello bob');
  await settle();
  t.match(client.calls.at(-1), /^send U-bob \{"v":1,"from":"alice","text":"hello bob"\}$/);
  t.match(screen.lines.at(-1), /^\[\d\d:\d\d\] you → bob: hello bob \(id m1\)$/);
  client.fire('receipt', { messageId: 'm1', status: 'sent' });
  client.fire('receipt', { messageId: 'm1', status: 'read', by: { userId: 'U-bob', deviceId: 1 } });
  client.fire('receipt', { messageId: 'm1', status: 'delivered', by: { userId: 'U-bob', deviceId: 1 } });
  t.same(screen.lines.slice(-3), ['tick m1 sent', 'tick m1 delivered', 'tick m1 read']);
  client.fire('receipt', { messageId: 'old', status: 'delivered' });
  t.equal(screen.lines.at(-1), 'tick old delivered', 'a message of an earlier run is still reported');
});

t.test('on a TTY the message line itself shows the tick, read distinctly', async (t) => {
  const { client, screen } = setup(true);
  screen.type('/to bob');
  screen.type('hi');
  await settle();
  const row = screen.lines.length - 1;
  t.match(screen.lines[row], /you → bob: hi …$/);
  client.fire('receipt', { messageId: 'm1', status: 'delivered' });
  t.match(screen.lines[row], /you → bob: hi ✓✓$/);
  client.fire('receipt', { messageId: 'm1', status: 'read' });
  t.match(screen.lines[row], /you → bob: hi ✓✓ read$/);
  t.equal(screen.lines.length, row + 1, 'no extra lines');
});

t.test('incoming messages: verified names, spoofed claims, foreign plaintext, escapes', async (t) => {
  const { client, screen, session } = setup();
  await session.receive(message('b1', 'U-bob', encodePayload('bob', 'hi alice')));
  t.match(screen.lines.at(-1), /^\[12:01\] bob: hi alice$/);
  await session.receive(message('c1', 'U-mallory', encodePayload('bob', 'I am bob')));
  t.match(screen.lines.at(-1), /^\[12:01\] ~U-mallory \(says bob, which is not true\): I am bob$/);
  await session.receive(message('x1', 'U-other', new TextEncoder().encode('plain\n[12:00] bob: fake\x1b[2J')));
  t.equal(screen.lines.at(-1), '[12:01] ~U-other: plain ↵ [12:00] bob: fake\ufffd[2J');
  t.equal(client.calls.filter((c) => c === 'lookup bob').length, 1, 'lookups are cached');
});

t.test('/read sends read receipts per sending device, only for the current peer', async (t) => {
  const { client, screen, session } = setup();
  await session.receive(message('b1', 'U-bob', encodePayload('bob', 'one')));
  await session.receive(message('b2', 'U-bob', encodePayload('bob', 'two'), 2));
  await session.receive(message('b3', 'U-bob', encodePayload('bob', 'three')));
  screen.type('/to bob');
  screen.type('/peers');
  screen.type('/read');
  screen.type('/read');
  await settle();
  t.ok(client.calls.includes('read U-bob.1 b1,b3'));
  t.ok(client.calls.includes('read U-bob.2 b2'));
  t.ok(screen.lines.includes('* bob (presence unknown, 3 unread)'));
  t.ok(screen.lines.includes('marked 3 messages from bob read'));
  t.equal(screen.lines.at(-1), 'nothing unread from bob');
});

t.test('presence and typing lines', async (t) => {
  const { client, screen } = setup();
  screen.type('/to bob');
  await settle();
  client.fire('presence', { userId: 'U-bob', status: 'online' });
  client.fire('presence', { userId: 'U-bob', status: 'online' });
  const lastSeen = new Date();
  lastSeen.setHours(12, 3);
  client.fire('presence', { userId: 'U-bob', status: 'offline', lastSeenAt: lastSeen.getTime() });
  client.fire('typing', { from: { userId: 'U-bob', deviceId: 1 }, state: 'started' });
  client.fire('typing', { from: { userId: 'U-bob', deviceId: 1 }, state: 'started' });
  client.fire('typing', { from: { userId: 'U-bob', deviceId: 1 }, state: 'stopped' });
  t.same(screen.lines.slice(-4), ['bob is online', 'bob was last seen 12:03', 'bob is typing…', 'bob stopped typing']);
});

t.test('typing at the prompt sends started once, and stopped when the line is sent', async (t) => {
  const { client, screen } = setup(true);
  screen.type('/to bob');
  await settle();
  screen.edit('h');
  screen.edit('he');
  screen.edit('hey');
  screen.type('hey');
  await settle();
  t.same(client.calls.filter((c) => c.startsWith('typing')), ['typing U-bob started', 'typing U-bob stopped']);
});

t.test('end of input quits after the commands before it; /quit too', async (t) => {
  const { client, screen, session } = setup();
  screen.type('/to bob');
  screen.type('bye');
  screen.end();
  t.equal(await session.done, 0);
  t.match(client.calls.at(-1), /^send U-bob/);
  const other = setup();
  other.screen.type('/quit');
  t.equal(await other.session.done, 0);
});

t.test('a session the server ends for good quits with 1', async (t) => {
  const { client, screen, session } = setup();
  client.fire('disconnected', { code: 4409, reason: 'SESSION_REPLACED', willReconnect: false });
  t.equal(await session.done, 1);
  t.equal(screen.lines.at(-1), 'disconnected (4409 SESSION_REPLACED)');
});
