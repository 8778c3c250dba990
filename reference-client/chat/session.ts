// One chat session: turns what the user types into library calls, and library events into screen lines.
// It knows nothing of processes or argv (cli.ts) nor of escape sequences (screen.ts), so the tests drive it with a
// fake client and a fake screen.
import type { Address, ClientEvents, MessagingClient, PresenceEvent, ReceiptEvent, ReceivedMessage, Tick, TypingEvent } from '../client-api.ts';
import { MAX_FOLLOWED_MESSAGES, MAX_TEXT_LENGTH, TYPING_EXPIRY_MS, TYPING_IDLE_MS, TYPING_REPEAT_MS } from './constants.ts';
import { Contacts } from './contacts.ts';
import {
  clock, commandHelp, decodePayload, encodePayload, incomingLine, laterTick, outgoingLine, presenceLine, presenceState, sanitize,
  tickLine, tickMark, typingLine,
} from './format.ts';
import type { LineHandle, Screen } from './screen.ts';

/** The library as the chat uses it: the messaging calls plus its events. TickwireClient is one. */
export interface ChatClient extends MessagingClient {
  on<K extends keyof ClientEvents>(event: K, listener: (...args: ClientEvents[K]) => void): unknown;
}

export interface SessionOptions {
  /** The server URL, for the hint printed with a link code. */
  url: string;
  /** Our username (a linked device's library may not know it: no endpoint maps userId → username). */
  username: string;
  /** Colour the read tick (TTY only). */
  colour?: boolean;
  now?: () => number;
}

interface Peer {
  username: string;
  userId: string;
  presence?: PresenceEvent;
  /** Messages shown but not yet marked read, with the device that sent each [RCP-13]. */
  unread: Array<{ messageId: string; from: Address }>;
  /** Set while the peer is typing; fires PRS-15's implicit `stopped`. */
  typingExpiry?: NodeJS.Timeout;
}

interface SentMessage {
  peer: string;
  text: string;
  at: number;
  tick: Tick;
  handle: LineHandle;
}

const TICKS: readonly Tick[] = ['pending', 'sent', 'delivered', 'read'];

export class ChatSession {
  private readonly contacts: Contacts;
  private readonly peers = new Map<string, Peer>();
  private readonly sent = new Map<string, SentMessage>();
  /** Receipts that arrived before `send` resolved with their messageId. */
  private readonly early = new Map<string, Tick>();
  private sendsInFlight = 0;
  private current: Peer | undefined;
  private commands: Promise<void> = Promise.resolve();
  private outgoingTyping: { to: string; since: number; idle: NodeJS.Timeout } | undefined;
  private finished = false;
  private finish!: (code: number) => void;
  /** Resolves with the exit code once the user quits or the server ends the session for good. */
  readonly done: Promise<number>;
  private readonly now: () => number;

  constructor(
    private readonly client: ChatClient,
    private readonly screen: Screen,
    private readonly options: SessionOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.contacts = new Contacts(client, { username: options.username, userId: client.address.userId });
    this.done = new Promise((resolve) => (this.finish = resolve));
    client.on('connected', () => this.onConnected());
    client.on('disconnected', (info) => this.onDisconnected(info));
    client.on('caughtUp', () => this.screen.print('caught up'));
    client.on('receipt', (receipt) => this.onReceipt(receipt));
    client.on('presence', (presence) => this.onPresence(presence));
    client.on('typing', (typing) => this.onTyping(typing));
    client.on('warning', (warning) => this.screen.print(`warning ${warning.code}: ${sanitize(warning.message)}`));
    screen.on('line', (line) => this.enqueue(() => this.command(line)));
    screen.on('end', () => this.enqueue(async () => this.quit(0)));
    screen.on('interrupt', () => this.quit(0));
    screen.on('edit', (text) => this.onEdit(text));
    this.updatePrompt();
  }

  /** Shows a received message; meant as the library's `onMessage`, so the item is acknowledged after it is shown. */
  async receive(message: ReceivedMessage): Promise<void> {
    const payload = decodePayload(message.plaintext);
    const sender = await this.contacts.sender(message.from.userId, payload.claimed);
    const peer = sender.verified ? this.peer(sender.name, message.from.userId) : undefined;
    if (peer !== undefined) {
      this.stopTyping(peer, false);
      peer.unread.push({ messageId: message.messageId, from: message.from });
    }
    // A message from another device of our own account names that device.
    const name = message.from.userId === this.client.address.userId ? `${sender.name} (device ${message.from.deviceId})` : sender.name;
    this.screen.print(incomingLine(message.serverTime, name, payload.text));
  }

  /** Holds back the user's commands until `ready` settles (the first connection). */
  waitFor(ready: Promise<unknown>): void {
    this.commands = this.commands.then(() => ready).then(
      () => undefined,
      () => undefined,
    );
  }

  /** Ends the session with `code` (idempotent). */
  quit(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.stopOwnTyping();
    for (const peer of this.peers.values()) clearTimeout(peer.typingExpiry);
    this.finish(code);
  }

  private enqueue(task: () => Promise<void>): void {
    this.commands = this.commands.then(task).catch((error: unknown) => {
      this.screen.print(`error: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private peer(username: string, userId: string): Peer {
    let peer = this.peers.get(userId);
    if (peer === undefined) {
      peer = { username, userId, unread: [] };
      this.peers.set(userId, peer);
    }
    return peer;
  }

  private updatePrompt(): void {
    const peer = this.current;
    if (peer === undefined) this.screen.setPrompt('(no peer)> ');
    else this.screen.setPrompt(`${peer.username}${peer.typingExpiry === undefined ? '' : ' (typing…)'}> `);
  }

  private async command(line: string): Promise<void> {
    if (this.finished) return;
    const text = line.trim();
    if (text === '') return;
    if (!text.startsWith('/')) return this.sendText(line);
    const [name, ...args] = text.split(/\s+/);
    switch (name) {
      case '/to':
        return this.to(args[0]);
      case '/peers':
        return this.listPeers();
      case '/read':
        return this.markRead();
      case '/link':
        return this.link();
      case '/help':
        for (const help of commandHelp()) this.screen.print(help);
        return;
      case '/quit':
        return this.quit(0);
      default:
        this.screen.print(`unknown command ${sanitize(name ?? '')}; /help lists the commands`);
    }
  }

  private async to(username: string | undefined): Promise<void> {
    if (username === undefined) {
      this.screen.print('usage: /to <username>');
      return;
    }
    const userId = await this.contacts.resolve(username);
    if (userId === undefined) {
      this.screen.print(`no user named ${username}`);
      return;
    }
    this.stopOwnTyping();
    this.current = this.peer(username, userId);
    this.updatePrompt();
    this.screen.print(`chatting with ${username}`);
    await this.client.subscribePresence([userId]);
  }

  private async sendText(text: string): Promise<void> {
    const peer = this.current;
    if (peer === undefined) {
      this.screen.print('pick a peer first: /to <username>');
      return;
    }
    if (text.length > MAX_TEXT_LENGTH) {
      this.screen.print(`message not sent: longer than ${MAX_TEXT_LENGTH} characters`);
      return;
    }
    this.stopOwnTyping();
    this.sendsInFlight++;
    let messageId: string;
    try {
      ({ messageId } = await this.client.send(peer.userId, encodePayload(this.options.username, text)));
    } finally {
      this.sendsInFlight--;
    }
    const at = this.now();
    const interactive = this.screen.interactive;
    const suffix = interactive ? tickMark('pending', false) : `(id ${messageId})`;
    const message: SentMessage = { peer: peer.username, text, at, tick: 'pending', handle: this.screen.print(outgoingLine(at, peer.username, text, suffix)) };
    this.sent.set(messageId, message);
    if (this.sent.size > MAX_FOLLOWED_MESSAGES) this.sent.delete(this.sent.keys().next().value as string);
    const known = laterTick(this.client.tickOf(messageId) ?? 'pending', this.early.get(messageId) ?? 'pending');
    this.early.delete(messageId);
    if (this.sendsInFlight === 0) this.early.clear();
    this.advance(messageId, message, known);
  }

  private onReceipt(receipt: ReceiptEvent): void {
    const message = this.sent.get(receipt.messageId);
    if (message !== undefined) return this.advance(receipt.messageId, message, receipt.status);
    if (this.sendsInFlight > 0) {
      this.early.set(receipt.messageId, laterTick(this.early.get(receipt.messageId) ?? 'pending', receipt.status));
      return;
    }
    // A message from an earlier run (the library keeps delivering and reporting it across restarts).
    if (this.screen.interactive) this.screen.print(`earlier message ${receipt.messageId}: ${tickMark(receipt.status, this.options.colour ?? false)}`);
    else this.screen.print(tickLine(receipt.messageId, receipt.status));
  }

  /** Moves a message's tick forward, through every step in between: delivered implies sent, read implies both. */
  private advance(messageId: string, message: SentMessage, tick: Tick): void {
    const next = laterTick(message.tick, tick);
    if (next === message.tick) return;
    const steps = TICKS.slice(TICKS.indexOf(message.tick) + 1, TICKS.indexOf(next) + 1);
    message.tick = next;
    if (!this.screen.interactive) {
      for (const step of steps) this.screen.print(tickLine(messageId, step));
      return;
    }
    const mark = tickMark(next, this.options.colour ?? false);
    if (!this.screen.rewrite(message.handle, outgoingLine(message.at, message.peer, message.text, mark))) {
      const short = message.text.length > 30 ? `${message.text.slice(0, 29)}…` : message.text;
      this.screen.print(`${mark} → ${message.peer}: ${sanitize(short)}`);
    }
  }

  private async markRead(): Promise<void> {
    const peer = this.current;
    if (peer === undefined) {
      this.screen.print('pick a peer first: /to <username>');
      return;
    }
    if (peer.unread.length === 0) {
      this.screen.print(`nothing unread from ${peer.username}`);
      return;
    }
    // [RCP-13] A read receipt goes to the device that sent the messages it lists, so group them by device.
    const byDevice = new Map<string, { from: Address; ids: string[] }>();
    for (const { messageId, from } of peer.unread) {
      const key = `${from.userId}.${from.deviceId}`;
      const group = byDevice.get(key) ?? { from, ids: [] };
      group.ids.push(messageId);
      byDevice.set(key, group);
    }
    const count = peer.unread.length;
    for (const { from, ids } of byDevice.values()) await this.client.markRead(from, ids);
    peer.unread.splice(0, count);
    this.screen.print(`marked ${count} message${count === 1 ? '' : 's'} from ${peer.username} read`);
  }

  private listPeers(): void {
    if (this.peers.size === 0) {
      this.screen.print('no peers yet; /to <username> picks one');
      return;
    }
    for (const peer of this.peers.values()) {
      const marker = peer === this.current ? '*' : ' ';
      this.screen.print(`${marker} ${peer.username} (${presenceState(peer.presence)}, ${peer.unread.length} unread)`);
    }
  }

  private async link(): Promise<void> {
    const { code, expiresAt } = await this.client.createLinkCode();
    this.screen.print(`link code ${code} (valid until ${clock(expiresAt)})`);
    this.screen.print(`on the new device: tickwire chat --url ${this.options.url} --name ${this.options.username} --link-code ${code}`);
  }

  private onConnected(): void {
    const { userId, deviceId } = this.client.address;
    this.screen.print(`connected to ${this.options.url} as ${this.options.username} (user ${userId}, device ${deviceId})`);
    // Subscriptions end with the session [PRS-10]; the library subscribes again to every user we asked for.
  }

  private onDisconnected(info: { code: number; reason: string; willReconnect: boolean }): void {
    if (this.finished) return;
    const why = `${info.code}${info.reason === '' ? '' : ` ${sanitize(info.reason)}`}`;
    this.screen.print(`disconnected (${why})${info.willReconnect ? '; reconnecting' : ''}`);
    if (!info.willReconnect) this.quit(1);
  }

  private onPresence(presence: PresenceEvent): void {
    const peer = this.peers.get(presence.userId);
    const name = peer?.username ?? this.contacts.label(presence.userId);
    if (peer !== undefined) {
      const before = peer.presence;
      peer.presence = presence;
      if (before !== undefined && before.status === presence.status && before.lastSeenAt === presence.lastSeenAt) return;
    }
    this.screen.print(presenceLine(name, presence));
  }

  private onTyping(typing: TypingEvent): void {
    const peer = this.peers.get(typing.from.userId);
    if (peer === undefined) {
      // Somebody we cannot name yet: a bare userId typing says nothing; their message will introduce them.
      const name = this.contacts.nameOf(typing.from.userId);
      if (name !== undefined) this.screen.print(typingLine(name, typing.state));
      return;
    }
    if (typing.state === 'stopped') return this.stopTyping(peer, true);
    const wasTyping = peer.typingExpiry !== undefined;
    clearTimeout(peer.typingExpiry);
    peer.typingExpiry = setTimeout(() => this.stopTyping(peer, true), TYPING_EXPIRY_MS);
    if (wasTyping) return;
    if (peer === this.current && this.screen.interactive) this.updatePrompt();
    else this.screen.print(typingLine(peer.username, 'started'));
  }

  /** Ends a peer's typing state, explicitly, by PRS-15's expiry, or because its message arrived (then silently). */
  private stopTyping(peer: Peer, show: boolean): void {
    if (peer.typingExpiry === undefined) return;
    clearTimeout(peer.typingExpiry);
    delete peer.typingExpiry;
    if (peer === this.current && this.screen.interactive) this.updatePrompt();
    else if (show) this.screen.print(typingLine(peer.username, 'stopped'));
  }

  /** [PRS-15] `started` when the user types a message, again every 10 s while they keep on, `stopped` after a pause. */
  private onEdit(text: string): void {
    const peer = this.current;
    if (this.finished || peer === undefined || text.trim() === '' || text.startsWith('/')) return this.stopOwnTyping();
    const now = this.now();
    const typing = this.outgoingTyping;
    if (typing !== undefined && typing.to === peer.userId) {
      clearTimeout(typing.idle);
      typing.idle = setTimeout(() => this.stopOwnTyping(), TYPING_IDLE_MS);
      if (now - typing.since < TYPING_REPEAT_MS) return;
      typing.since = now;
      this.client.typing(peer.userId, 'started');
      return;
    }
    this.stopOwnTyping();
    this.outgoingTyping = { to: peer.userId, since: now, idle: setTimeout(() => this.stopOwnTyping(), TYPING_IDLE_MS) };
    this.client.typing(peer.userId, 'started');
  }

  private stopOwnTyping(): void {
    const typing = this.outgoingTyping;
    if (typing === undefined) return;
    clearTimeout(typing.idle);
    this.outgoingTyping = undefined;
    this.client.typing(typing.to, 'stopped');
  }
}
