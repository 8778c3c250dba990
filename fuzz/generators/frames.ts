// Generators that know the protocol's frames. They start from valid client frames (built from the schemas' shapes
// with the campaign's identities as placeholders, or taken from spec/examples) and mutate them with the operators of
// mutate.ts. Four classes come from here:
//
// - `frame`: one frame on an authenticated session, mutated 0 to 3 times (a tenth go unmutated, so that success
//   paths are exercised too);
// - `sequence`: frames that are valid alone but sent out of sequence (an ack of nothing, a second hello, an
//   unsubscribe before the subscribe, a repeated request id, a resend with other envelopes);
// - `preauth`: frames before authentication: mutated hellos with other users' ids and wrong secrets, other frames
//   first, frames pipelined behind the hello (AUT-19);
// - `fatal`: what ends a connection, on a fresh session: binary and non-JSON messages, invalid UTF-8, oversized and
//   fragmented messages, and raw WebSocket frames that RFC 6455 forbids.
import { join } from 'node:path';
import { EXAMPLE_DIR, listJsonFiles, readJson } from '../../spec/schema-files.ts';
import { cloneJson, templateText, type FuzzInput, type Json, type Step } from '../input.ts';
import type { Rng } from '../random.ts';
import { breakUtf8, mutateText, mutateTree } from './mutate.ts';

interface ExampleFile {
  valid: Array<{ value: Json }>;
  invalid: Array<{ value: Json }>;
}

function loadExamples(dir: string): Map<string, ExampleFile> {
  const out = new Map<string, ExampleFile>();
  for (const file of listJsonFiles(join(EXAMPLE_DIR, dir))) {
    const name = file.slice(file.lastIndexOf('/') + 1, -'.json'.length);
    const data = readJson(file) as ExampleFile;
    // Examples the size of a whole batch (hundreds of envelopes) would dominate the run's time; keep the small ones.
    const small = (list: Array<{ value: Json }>) => list.filter((e) => JSON.stringify(e.value).length <= 8192);
    out.set(name, { valid: small(data.valid ?? []), invalid: small(data.invalid ?? []) });
  }
  return out;
}

let clientExamples: Map<string, ExampleFile> | undefined;
let serverExamples: Map<string, ExampleFile> | undefined;

/** spec/examples/ws/client, loaded once. */
export function examples(): Map<string, ExampleFile> {
  return (clientExamples ??= loadExamples('ws/client'));
}

function serverFrameExamples(): Map<string, ExampleFile> {
  return (serverExamples ??= loadExamples('ws/server'));
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** A messageId: half from a small pool (resends are duplicates, so accepted sends stay few), half fresh. */
function messageId(rng: Rng): string {
  return rng.chance(0.5) ? `dup-msg-${rng.int(0, 7)}` : `m-${rng.string(16, 'abcdefghijklmnopqrstuvwxyz0123456789')}`;
}

function body(rng: Rng): string {
  return rng.bytes(rng.int(1, 180)).toString('base64');
}

export const CLIENT_TYPES = ['hello', 'send', 'ack', 'receipt', 'subscribe_presence', 'unsubscribe_presence', 'typing', 'ping', 'pong'] as const;
export type ClientType = (typeof CLIENT_TYPES)[number];

/** A valid frame of `type` with the worker's identities as placeholders: `self` on a session, `herald` before it. */
export function validFrame(type: ClientType, rng: Rng, who: 'self' | 'herald' = 'self'): Json {
  switch (type) {
    case 'hello':
      return {
        type: 'hello',
        id: '@{id}',
        userId: `@{${who}.userId}`,
        deviceId: `@{#${who}.deviceId}`,
        secret: `@{${who}.secret}`,
        ...(rng.chance(0.5) ? { receiveMax: rng.pick([1, 8, 64, 1000]) } : {}),
        ...(rng.chance(0.3) ? { client: { name: 'tickwire-fuzz', version: '1' } } : {}),
      };
    case 'send': {
      const target = rng.weighted<string[]>([
        [8, ['@{peer.userId}', '@{#peer.deviceId}']],
        [1, ['@{victim.userId}', '@{#victim.deviceId}']],
        [1, ['@{self.userId}', '@{#spare.deviceId}']],
      ]);
      return {
        type: 'send',
        id: '@{id}',
        messageId: messageId(rng),
        to: target[0]!,
        envelopes: [{ deviceId: target[1]!, type: rng.pick(['prekey', 'ratchet']), body: body(rng) }],
      };
    }
    case 'ack':
      return {
        type: 'ack',
        ...(rng.chance(0.5) ? { id: '@{id}' } : {}),
        ...(rng.chance(0.6) ? { upTo: rng.pick([1, 2, 10, 1000, 9007199254740991]) } : { seqs: Array.from({ length: rng.int(1, 4) }, () => rng.int(1, 50)) }),
      };
    case 'receipt':
      return {
        type: 'receipt',
        id: '@{id}',
        to: rng.chance(0.8) ? { userId: '@{peer.userId}', deviceId: '@{#peer.deviceId}' } : { userId: '@{victim.userId}', deviceId: '@{#victim.deviceId}' },
        status: 'read',
        messageIds: Array.from({ length: rng.int(1, 3) }, () => messageId(rng)),
      };
    case 'subscribe_presence':
    case 'unsubscribe_presence':
      return { type, id: '@{id}', userIds: rng.chance(0.7) ? ['@{peer.userId}'] : ['@{peer.userId}', '@{victim.userId}', '@{friend.userId}'] };
    case 'typing':
      return { type: 'typing', ...(rng.chance(0.5) ? { id: '@{id}' } : {}), to: rng.chance(0.8) ? '@{peer.userId}' : '@{victim.userId}', state: rng.pick(['started', 'stopped']) };
    case 'ping':
    case 'pong':
      return { type, id: '@{id}' };
  }
}

const f = (frame: Json): Step => ({ frame });

/**
 * A base frame for mutation: mostly one built from the schemas, sometimes a spec example (valid or invalid). Its
 * hellos name `who`: a hello with a lane's own credentials on another connection would replace the lane's session.
 */
function baseFrame(rng: Rng, who: 'self' | 'herald' = 'self'): { value: Json; origin: string } {
  const r = rng.next();
  if (r < 0.8) {
    const type = rng.weighted<ClientType>([[1, 'hello'], [6, 'send'], [3, 'ack'], [3, 'receipt'], [2, 'subscribe_presence'], [2, 'unsubscribe_presence'], [2, 'typing'], [2, 'ping'], [1, 'pong']]);
    return { value: validFrame(type, rng, type === 'hello' ? who : 'self'), origin: type };
  }
  if (r < 0.95) {
    const [type, file] = rng.pick([...examples()]);
    const valid = rng.chance(0.5) || file.invalid.length === 0;
    const list = valid ? file.valid : file.invalid;
    if (list.length === 0) return { value: validFrame('ping', rng), origin: 'ping' };
    const value = cloneJson(rng.pick(list).value);
    // The example's id would repeat across inputs; give it this step's unique one.
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && typeof value['id'] === 'string' && rng.chance(0.8)) value['id'] = '@{id}';
    return { value, origin: `example ${valid ? 'valid' : 'invalid'} ${type}` };
  }
  // A server frame sent by the client: a type the server does not accept (TRN-27).
  const [type, file] = rng.pick([...serverFrameExamples()]);
  const value = cloneJson(rng.pick(file.valid.length > 0 ? file.valid : file.invalid).value);
  return { value, origin: `server frame ${type}` };
}

/** Applies 1..3 mutations; sometimes none. Returns the step and a title part. */
function mutatedStep(value: Json, rng: Rng, allowNone: boolean): { step: Step; what: string } {
  if (allowNone && rng.chance(0.1)) return { step: { frame: value }, what: 'unmutated' };
  const names: string[] = [];
  let current = value;
  const count = rng.weighted([[6, 1], [3, 2], [1, 3]]);
  for (let i = 0; i < count; i++) {
    const m = mutateTree(current, rng);
    current = m.value;
    names.push(m.name);
  }
  if (rng.chance(0.1)) {
    const m = mutateText(templateText(current), rng);
    names.push(m.name);
    return { step: { text: m.value }, what: names.join(', ') };
  }
  return { step: { frame: current }, what: names.join(', ') };
}

/** `frame`: one (usually mutated) frame on an authenticated session. */
export function frameInput(rng: Rng): FuzzInput {
  const base = baseFrame(rng);
  const { step, what } = mutatedStep(base.value, rng, true);
  return { class: 'frame', title: `${base.origin}: ${what}`, steps: [step] };
}

/** `sequence`: frames valid on their own, sent in an order the protocol does not expect. */
export function sequenceInput(rng: Rng): FuzzInput {
  const scenarios: Array<readonly [number, () => { title: string; steps: Step[] }]> = [
    [2, () => ({ title: 'ack of items never delivered', steps: [f({ type: 'ack', id: '@{id}', upTo: 9007199254740991 }), f({ type: 'ack', id: '@{id}', seqs: [1, 2, 3, rng.int(4, 1_000_000)] })] })],
    [2, () => ({ title: 'a second hello on the session', steps: [f(validFrame('hello', rng)), f({ type: 'ping', id: '@{id}' })] })],
    [2, () => ({ title: 'a second hello as another device', steps: [f(validFrame('hello', rng, 'herald')), f({ type: 'ping', id: '@{id}' })] })],
    [2, () => {
      const users = rng.pick([['@{peer.userId}'], ['@{victim.userId}', '@{friend.userId}'], ['nobody_at_all_0']]);
      return {
        title: 'unsubscribe before subscribe, then twice each',
        steps: [
          f({ type: 'unsubscribe_presence', id: '@{id}', userIds: users }),
          f({ type: 'subscribe_presence', id: '@{id}', userIds: users }),
          f({ type: 'subscribe_presence', id: '@{id}', userIds: users }),
          f({ type: 'unsubscribe_presence', id: '@{id}', userIds: users }),
        ],
      };
    }],
    [2, () => {
      const m = messageId(rng);
      const first = validFrame('send', rng) as Record<string, Json>;
      first['messageId'] = m;
      const mutated = mutateTree(cloneJson({ ...first, id: '@{id}' }), rng).value;
      const second: Record<string, Json> = mutated !== null && typeof mutated === 'object' && !Array.isArray(mutated) ? mutated : { ...first, envelopes: mutated };
      second['messageId'] = m;
      return { title: `a resend of one messageId with other content (${m})`, steps: [f(first), f(second)] };
    }],
    [2, () => ({ title: 'read receipts for messages never received', steps: [f(validFrame('receipt', rng)), f({ type: 'receipt', id: '@{id}', to: { userId: '@{victim.userId}', deviceId: '@{#victim.deviceId}' }, status: 'read', messageIds: ['never-sent-0'] })] })],
    [2, () => {
      const id = rng.pick(['same', 'a', 'x.y:z-1']);
      return { title: `a pong without a ping, then one request id three times (${id})`, steps: [f({ type: 'pong', id }), f({ type: 'ping', id }), f({ type: 'ping', id }), f({ type: 'subscribe_presence', id, userIds: ['@{peer.userId}'] })] };
    }],
    [1, () => ({ title: 'typing to every identity', steps: ['@{peer.userId}', '@{victim.userId}', '@{friend.userId}', '@{self.userId}', 'nobody_at_all_0'].map((to) => f({ type: 'typing', id: '@{id}', to, state: 'started' })) })],
    [1, () => ({ title: 'a send to one\'s own other device, then an ack of it', steps: [f({ type: 'send', id: '@{id}', messageId: messageId(rng), to: '@{self.userId}', envelopes: [{ deviceId: '@{#spare.deviceId}', type: 'ratchet', body: body(rng) }] }), f({ type: 'ack', seqs: [1] })] })],
    [1, () => ({ title: 'a send to the victim naming only one of its devices', steps: [f({ type: 'send', id: '@{id}', messageId: messageId(rng), to: '@{victim.userId}', envelopes: [{ deviceId: '@{#victim.deviceId}', type: 'ratchet', body: body(rng) }] })] })],
    [1, () => ({ title: 'a burst of mutated frames', steps: Array.from({ length: rng.int(3, 6) }, () => mutatedStep(baseFrame(rng).value, rng, true).step) })],
  ];
  const { title, steps } = rng.weighted(scenarios)();
  return { class: 'sequence', title, steps };
}

/** `preauth`: the first frames of a new connection, before `hello` has succeeded. */
export function preauthInput(rng: Rng): FuzzInput {
  const r = rng.next();
  let first: Step;
  let title: string;
  if (r < 0.6) {
    const { step, what } = mutatedStep(validFrame('hello', rng, 'herald'), rng, true);
    first = step;
    title = `hello: ${what}`;
  } else if (r < 0.85) {
    const base = baseFrame(rng, 'herald');
    const { step, what } = mutatedStep(base.value, rng, true);
    first = step;
    title = `${base.origin} before hello: ${what}`;
  } else {
    first = { text: rng.pick(['', 'hello', '{}', '[]', 'null', '{"type":"hello"}', '{"type":"hello","id":"@{id}"}', ' '.repeat(rng.int(1, 100))]) };
    title = 'garbage before hello';
  }
  const steps: Step[] = [first];
  // [AUT-19] Frames pipelined behind the hello wait for its outcome.
  const behind = rng.weighted([[5, 0], [3, 1], [2, 2]]);
  for (let i = 0; i < behind; i++) steps.push({ frame: validFrame(rng.pick(['ping', 'send', 'subscribe_presence', 'hello'] as const), rng, 'herald') });
  return { class: 'preauth', title, steps };
}

/** `fatal`: messages and raw frames that end the connection, sent on a fresh session. */
export function fatalInput(rng: Rng): FuzzInput {
  const valid = () => templateText(validFrame(rng.pick(CLIENT_TYPES.filter((t) => t !== 'hello')), rng));
  const b64 = (bytes: Buffer) => bytes.toString('base64');
  const scenarios: Array<readonly [number, () => { title: string; steps: Step[] }]> = [
    [3, () => {
      const data = rng.chance(0.5) ? Buffer.from(valid()) : rng.bytes(rng.size(4096));
      return { title: `binary message of ${data.length} bytes`, steps: [{ binary: b64(data) }] };
    }],
    [3, () => {
      const broken = breakUtf8(Buffer.from(valid()), rng);
      return { title: `text message with ${broken.name}`, steps: [{ textBytes: b64(broken.value) }] };
    }],
    [2, () => ({ title: 'random bytes as a text message', steps: [{ textBytes: b64(rng.bytes(rng.int(1, 512))) }] })],
    [3, () => {
      const text = rng.pick(['', 'null', '[]', '1', '"s"', 'true', '{', '}', '{"type":"ping","id":"x"', '[{"type":"ping","id":"x"}]', 'ping', '\u00e9', rng.string(rng.int(1, 64), B64)]);
      return { title: `text that is not a JSON object: ${JSON.stringify(text).slice(0, 40)}`, steps: [{ text }] };
    }],
    [2, () => {
      const size = rng.pick([65_537, 262_145, 300_000, 1_100_000]);
      const text = rng.chance(0.5) ? `{"type":"ping","id":"@{id}","pad":"${'p'.repeat(size)}"}` : 'x'.repeat(size);
      return { title: `a ${size}-byte message (over maxFrameBytes at most values)`, steps: [{ text }] };
    }],
    [2, () => ({ title: 'a 64-bit length far over maxFrameBytes', steps: [{ wsFrame: { fin: true, rsv: 0, opcode: 1, masked: true, payload: b64(Buffer.from('{"type":"ping"')), declaredLength: 2 ** 40 } }] })],
    [3, () => {
      const text = valid();
      const sizes = Array.from({ length: rng.int(1, 6) }, () => rng.int(0, Math.max(1, Math.floor(text.length / 2))));
      return { title: `a valid frame in ${sizes.length + 1} fragments`, steps: [{ fragments: text, sizes, pingBetween: rng.chance(0.5) }] };
    }],
    [2, () => ({ title: 'reserved bits set', steps: [{ wsFrame: { fin: true, rsv: rng.int(1, 7), opcode: 1, masked: true, payload: b64(Buffer.from(valid())) } }] })],
    [2, () => {
      const opcode = rng.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]);
      return { title: `reserved opcode ${opcode}`, steps: [{ wsFrame: { fin: true, rsv: 0, opcode, masked: true, payload: b64(rng.bytes(rng.int(0, 20))) } }] };
    }],
    [2, () => ({ title: 'an unmasked client frame', steps: [{ wsFrame: { fin: true, rsv: 0, opcode: 1, masked: false, payload: b64(Buffer.from(valid())) } }] })],
    [1, () => ({ title: 'a control frame over 125 bytes', steps: [{ wsFrame: { fin: true, rsv: 0, opcode: 9, masked: true, payload: b64(rng.bytes(126 + rng.int(0, 200))) } }] })],
    [1, () => ({ title: 'a fragmented control frame', steps: [{ wsFrame: { fin: false, rsv: 0, opcode: 9, masked: true, payload: b64(Buffer.from('ab')) } }] })],
    [1, () => ({ title: 'a continuation frame without a start', steps: [{ wsFrame: { fin: true, rsv: 0, opcode: 0, masked: true, payload: b64(Buffer.from(valid())) } }] })],
    [1, () => ({
      title: 'a new message inside a fragmented one',
      steps: [
        { wsFrame: { fin: false, rsv: 0, opcode: 1, masked: true, payload: b64(Buffer.from('{"type":')) } },
        { wsFrame: { fin: true, rsv: 0, opcode: 1, masked: true, payload: b64(Buffer.from(valid())) } },
      ],
    })],
    [2, () => {
      const code = rng.pick([0, 999, 1000, 1001, 1004, 1005, 1006, 1015, 1016, 2999, 3000, 4999, 5000, 65535]);
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code);
      const reason = rng.chance(0.3) ? Buffer.from([0xff, 0xfe]) : Buffer.from(rng.pick(['', 'bye', 'x'.repeat(123)]));
      return { title: `a Close frame with code ${code}`, steps: [{ wsFrame: { fin: true, rsv: 0, opcode: 8, masked: true, payload: b64(Buffer.concat([payload, reason])) } }] };
    }],
    [1, () => ({ title: 'a Close frame with a one-byte payload', steps: [{ wsFrame: { fin: true, rsv: 0, opcode: 8, masked: true, payload: b64(Buffer.from([3])) } }] })],
    [2, () => {
      const { step, what } = mutatedStep(baseFrame(rng).value, rng, false);
      const text = 'frame' in step ? templateText(step.frame) : 'text' in step ? step.text : '{}';
      return { title: `mutated frame (${what}) then a binary message`, steps: [step, { binary: b64(Buffer.from(text)) }] };
    }],
  ];
  const { title, steps } = rng.weighted(scenarios)();
  return { class: 'fatal', title, steps };
}
