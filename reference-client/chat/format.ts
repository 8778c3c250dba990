// The chat's two text formats: the plaintext it puts inside an encrypted message, and the lines it shows on screen.
// Everything here is pure, so the tests pin the exact lines a script reading `tickwire chat` relies on.
import type { PresenceEvent, Tick } from '../client-api.ts';
import { CHAT_FORMAT_VERSION } from './constants.ts';

// ---- Plaintext ----------------------------------------------------------------------------------------------------
//
// The protocol addresses users by opaque userIds and offers no way back from a userId to a username (section 2.6),
// so the chat names its sender inside the encrypted plaintext: {"v":1,"from":"alice","text":"hi"}. The claim is not
// trusted as such: the receiver looks the username up and shows it only when it resolves to the authenticated sender
// userId (contacts.ts). Plaintext that is not this JSON is shown as UTF-8 text, so other clients can talk to us.

export interface ChatPayload {
  /** The username the sender claims; undefined for plaintext from a client that does not use this format. */
  claimed: string | undefined;
  text: string;
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function encodePayload(from: string, text: string): Uint8Array {
  return encoder.encode(JSON.stringify({ v: CHAT_FORMAT_VERSION, from, text }));
}

export function decodePayload(plaintext: Uint8Array): ChatPayload {
  let text: string;
  try {
    text = utf8.decode(plaintext);
  } catch {
    return { claimed: undefined, text: `<${plaintext.length} bytes, not text>` };
  }
  if (text.startsWith('{')) {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null) {
        const { v, from, text: body } = value as Record<string, unknown>;
        if (v === CHAT_FORMAT_VERSION && typeof body === 'string') {
          return { claimed: typeof from === 'string' ? from : undefined, text: body };
        }
      }
    } catch {
      // Not our JSON: show it as it came.
    }
  }
  return { claimed: undefined, text };
}

// ---- Screen lines -------------------------------------------------------------------------------------------------

/**
 * Makes untrusted text safe for one terminal line: a peer must not be able to move the cursor, recolour the screen or
 * forge extra event lines, so line breaks become ↵ and every other control character (C0, DEL, C1, including ESC)
 * becomes U+FFFD.
 */
export function sanitize(text: string): string {
  return text.replace(/\r\n|\r|\n/g, ' ↵ ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** `12:01` for today, `2026-11-26 12:01` for another day, in local time. */
export function clock(at: number, now: number = Date.now()): string {
  const date = new Date(at);
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (new Date(now).toDateString() === date.toDateString()) return time;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

const TICK_MARKS: Record<Tick, string> = { pending: '…', sent: '✓', delivered: '✓✓', read: '✓✓ read' };
const BLUE = '\x1b[34m';
const RESET = '\x1b[0m';

/** The tick as a TTY shows it; `read` in blue when colour is on, so it stands out from `delivered` twice over. */
export function tickMark(tick: Tick, colour: boolean): string {
  const mark = TICK_MARKS[tick];
  return colour && tick === 'read' ? `${BLUE}${mark}${RESET}` : mark;
}

const TICK_ORDER: readonly Tick[] = ['pending', 'sent', 'delivered', 'read'];

/** Ticks only move forward; a late `delivered` after `read` changes nothing [RCP-15]. */
export function laterTick(current: Tick, next: Tick): Tick {
  return TICK_ORDER.indexOf(next) > TICK_ORDER.indexOf(current) ? next : current;
}

export function incomingLine(at: number, name: string, text: string): string {
  return `[${clock(at)}] ${name}: ${sanitize(text)}`;
}

/** Your own message: with its tick on a TTY, with its id when a script reads the output. */
export function outgoingLine(at: number, peer: string, text: string, suffix: string): string {
  return `[${clock(at)}] you → ${peer}: ${sanitize(text)} ${suffix}`;
}

/** One status line per tick change, for scripts: `tick <messageId> delivered`. */
export function tickLine(messageId: string, tick: Tick): string {
  return `tick ${messageId} ${tick}`;
}

export function presenceLine(name: string, presence: PresenceEvent): string {
  if (presence.status === 'online') return `${name} is online`;
  if (presence.lastSeenAt !== undefined) return `${name} was last seen ${clock(presence.lastSeenAt)}`;
  return `${name} is offline`;
}

/** Presence in a few words, for /peers: `online`, `last seen 12:03`, `offline`, `presence unknown`. */
export function presenceState(presence: PresenceEvent | undefined): string {
  if (presence === undefined) return 'presence unknown';
  if (presence.status === 'online') return 'online';
  return presence.lastSeenAt === undefined ? 'offline' : `last seen ${clock(presence.lastSeenAt)}`;
}

export function typingLine(name: string, state: 'started' | 'stopped'): string {
  return state === 'started' ? `${name} is typing…` : `${name} stopped typing`;
}

export const CHAT_COMMANDS: ReadonlyArray<[string, string]> = [
  ['/to <username>', 'chat with <username> (and follow their presence)'],
  ['/peers', 'list the people of this session, their presence and unread messages'],
  ['/read', 'mark the messages shown from the current peer as read'],
  ['/link', 'print a link code to add another device to this account'],
  ['/help', 'this list'],
  ['/quit', 'leave (also Ctrl-D, Ctrl-C)'],
];

export function commandHelp(): string[] {
  const width = Math.max(...CHAT_COMMANDS.map(([name]) => name.length));
  return [...CHAT_COMMANDS.map(([name, what]) => `  ${name.padEnd(width)}  ${what}`), '  anything else is sent to the current peer'];
}
