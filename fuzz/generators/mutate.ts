// The mutation operators. Tree operators change one member of a JSON value (drop or duplicate it, give it the wrong
// type, a number out of range, a huge, empty or oddly encoded string, invalid base64, deep nesting, a
// prototype-polluting key, the id of another user or device). Text operators change the JSON text itself (repeated
// member names, number spellings, truncation, garbage); byte operators break its UTF-8. Each returns the name of what
// it did, so that an input's title and a shrunk corpus file say which mutation found a failure.
import { setMember, type Json } from '../input.ts';
import type { Rng } from '../random.ts';

export type Path = Array<string | number>;

export interface Node {
  path: Path;
  key: string | number | undefined;
  value: Json;
}

/**
 * The nodes of a JSON value, root first, breadth-first, at most `limit` of them: a value made deep or wide by an
 * earlier mutation would otherwise cost time quadratic in its depth.
 */
export function nodes(value: Json, limit = 256): Node[] {
  const out: Node[] = [{ path: [], key: undefined, value }];
  for (let i = 0; i < out.length && out.length < limit; i++) {
    const { path, value: v } = out[i]!;
    if (Array.isArray(v)) {
      for (let j = 0; j < v.length && out.length < limit; j++) out.push({ path: [...path, j], key: j, value: v[j]! });
    } else if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) {
        if (out.length >= limit) break;
        out.push({ path: [...path, k], key: k, value: v[k]! });
      }
    }
  }
  return out;
}

export function pathText(path: Path): string {
  return path.length === 0 ? '/' : `/${path.join('/')}`;
}

function parentOf(root: Json, path: Path): Json | undefined {
  let node: Json | undefined = root;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = Array.isArray(node) ? node[key as number] : (node as Record<string, Json>)[key as string];
  }
  return node;
}

/** Sets (or, with `undefined`, removes) the node at `path`; returns the new root. */
export function setAt(root: Json, path: Path, value: Json | undefined): Json {
  if (path.length === 0) return value ?? null;
  const parent = parentOf(root, path);
  const key = path[path.length - 1]!;
  if (Array.isArray(parent)) {
    if (value === undefined) parent.splice(key as number, 1);
    else parent[key as number] = value;
  } else if (parent !== null && typeof parent === 'object' && parent !== undefined) {
    if (value === undefined) delete (parent as Record<string, Json>)[key as string];
    else setMember(parent as Record<string, Json>, key as string, value);
  }
  return root;
}

/** Identities whose ids a mutation may put where the fuzzer's own belong ("ids of other users and devices"). */
const USER_PLACEHOLDERS = ['@{victim.userId}', '@{friend.userId}', '@{herald.userId}', '@{peer.userId}', '@{self.userId}', '@{clerk.userId}', '@{victim2.userId}'];
const DEVICE_PLACEHOLDERS = ['@{#victim.deviceId}', '@{#victim2.deviceId}', '@{#friend.deviceId}', '@{#peer.deviceId}', '@{#self.deviceId}', '@{#spare.deviceId}', '@{#herald.deviceId}'];
/** Secrets of identities whose sessions may be replaced at any time (never a lane's own: that would cut its pipeline). */
const SECRET_PLACEHOLDERS = ['@{herald.secret}', '@{clerk.secret}'];
/** Syntactically valid ids that name nobody. */
const UNKNOWN_USERS = ['zzzzzzzzzzzzzzzz', 'A', '_', '-', 'x'.repeat(64), 'nobody_0123456789'];

/** Strings that break parsers, normalisers and loggers. */
export const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\ud83dy',
  '\u202e\u202d',
  '\u200b\u200d\ufeff',
  '\uffff\ufffe',
  '😀'.repeat(17),
  'e\u0301\u0301\u0301\u0301',
  'Ａ',
  '\\',
  '"',
  '%00',
  '%2e%2e%2f',
  '../../etc/passwd',
  '${jndi:ldap://x}',
  '{{7*7}}',
  '<script>',
  '\r\nX-Injected: 1',
  'null',
  'undefined',
  'NaN',
  '__proto__',
  'constructor',
  'hasOwnProperty',
  '0',
  '-1',
  '1e309',
  'true',
  'SGVsbG8',
];

const BIG_NUMBERS = [-1, 0, 1, -0.5, 0.5, 1.5, 255, 256, 16380, 16381, 16777215, 16777216, 65535, 65536, 2147483647, 2147483648, 4294967295, 4294967296, 9007199254740991, 9007199254740992, 1e21, -9007199254740991, 1.7976931348623157e308, 5e-324];

/** Keys that reach Object.prototype in code that copies members naively. */
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'isPrototypeOf'];

function hugeString(rng: Rng): string {
  // Past the patterns' maxima (64, 128) mostly; past maxFrameBytes's allowed minimum now and then (those cost both
  // sides real time, and one in a few hundred inputs is enough to keep the path exercised).
  const size = rng.weighted([[4, 65], [4, 129], [3, 1025], [2, 4097], [0.3, 65_537], [0.2, 100_000]]);
  return rng.chance(0.5) ? 'A'.repeat(size) : rng.string(size, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
}

/** Bytes of JSON one 'element repeated' mutation may add. */
export const REPEAT_BUDGET = 512 * 1024;

function deepValue(rng: Rng): Json {
  const depth = rng.weighted([[4, 10], [3, 64], [2, 256], [1, 600]]);
  let value: Json = rng.chance(0.5) ? 1 : 'x';
  for (let i = 0; i < depth; i++) value = rng.chance(0.5) ? [value] : { a: value };
  return value;
}

function invalidBase64(rng: Rng, original: string): string {
  const s = original.startsWith('@{') ? 'QUFBQUFBQUFBQUFBQUFBQQ==' : original;
  switch (rng.int(0, 11)) {
    case 0: return s.replace(/=+$/, '');
    case 1: return `${s}=`;
    case 2: return s.replace(/\+/g, '-').replace(/\//g, '_') + '-_';
    case 3: return `${s.slice(0, 4)} ${s.slice(4)}`;
    case 4: return s.slice(0, Math.max(1, s.length - 1));
    case 5: return '====';
    case 6: return 'AA==';
    case 7: return 'AAAA'.repeat(rng.int(1, 30));
    case 8: return `${s.slice(0, 2)}=${s.slice(3)}`;
    case 9: return `${s}\n`;
    case 10: return Buffer.alloc(rng.pick([0, 1, 32, 33, 34, 64, 65]), rng.int(0, 255)).toString('base64');
    default: return `${s.slice(0, -2)}é=`;
  }
}

/** Which family a member belongs to, by its name: decides the semantic mutations that apply. */
function family(key: string | number | undefined, value: Json): 'user' | 'device' | 'secret' | 'base64' | 'id' | 'message' | 'seq' | 'other' {
  if (typeof key !== 'string' && typeof value === 'string' && value.startsWith('@{') && value.includes('userId')) return 'user';
  if (key === 'userId' || key === 'to' || key === 'userIds') return 'user';
  if (key === 'deviceId') return 'device';
  if (key === 'secret') return 'secret';
  if (key === 'body' || key === 'publicKey' || key === 'signature' || key === 'identityKey') return 'base64';
  if (key === 'id') return 'id';
  if (key === 'messageId' || key === 'messageIds') return 'message';
  if (key === 'seq' || key === 'upTo' || key === 'seqs' || key === 'receiveMax' || key === 'keyId' || key === 'registrationId') return 'seq';
  return 'other';
}

export interface Mutation {
  value: Json;
  name: string;
}

/** One tree mutation of `root` (a fresh copy the caller owns); returns the mutated root and what was done. */
export function mutateTree(root: Json, rng: Rng): Mutation {
  const all = nodes(root);
  const node = all.length > 1 && rng.chance(0.98) ? rng.pick(all.slice(1)) : all[0]!;
  const where = pathText(node.path);
  const fam = family(node.key, node.value);
  const isObject = node.value !== null && typeof node.value === 'object' && !Array.isArray(node.value);
  const ops: Array<readonly [number, () => Mutation]> = [
    [node.path.length > 0 ? 3 : 0, () => ({ value: setAt(root, node.path, undefined), name: `drop ${where}` })],
    [3, () => {
      const replacement = rng.pick<Json>([null, true, false, 0, -1, 1.5, '', 'x', [], {}, [node.value], { v: node.value }, String(JSON.stringify(node.value)).slice(0, 100)]);
      return { value: setAt(root, node.path, replacement), name: `${where} → ${typeName(replacement)}` };
    }],
    [typeof node.value === 'number' ? 4 : 1, () => {
      const n = rng.pick(BIG_NUMBERS);
      return { value: setAt(root, node.path, n), name: `${where} = ${n}` };
    }],
    [typeof node.value === 'string' ? 3 : 1, () => ({ value: setAt(root, node.path, hugeString(rng)), name: `${where} huge string` })],
    [typeof node.value === 'string' ? 3 : 1, () => {
      const odd = rng.pick(ODD_STRINGS);
      const base = typeof node.value === 'string' ? node.value : '';
      const value = rng.chance(0.5) ? odd : rng.chance(0.5) ? base + odd : odd + base;
      return { value: setAt(root, node.path, value), name: `${where} odd string ${JSON.stringify(odd).slice(0, 20)}` };
    }],
    [1, () => {
      const empty = Array.isArray(node.value) ? [] : isObject ? {} : '';
      return { value: setAt(root, node.path, empty), name: `${where} empty` };
    }],
    [1, () => ({ value: setAt(root, node.path, deepValue(rng)), name: `${where} deep nesting` })],
    [fam === 'base64' ? 6 : 0, () => ({ value: setAt(root, node.path, invalidBase64(rng, String(node.value))), name: `${where} invalid base64` })],
    [fam === 'user' ? 6 : 0, () => {
      const id = rng.chance(0.7) ? rng.pick(USER_PLACEHOLDERS) : rng.pick(UNKNOWN_USERS);
      const value = Array.isArray(node.value) ? [id] : id;
      return { value: setAt(root, node.path, value), name: `${where} = ${id}` };
    }],
    [fam === 'device' ? 6 : 0, () => {
      const id = rng.chance(0.7) ? rng.pick(DEVICE_PLACEHOLDERS) : rng.pick([0, 2, 3, 17, 2147483647]);
      return { value: setAt(root, node.path, id), name: `${where} = ${id}` };
    }],
    [fam === 'secret' ? 6 : 0, () => {
      const s = rng.chance(0.6) ? rng.pick(SECRET_PLACEHOLDERS) : rng.string(rng.pick([42, 43, 44, 128, 129]), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-');
      return { value: setAt(root, node.path, s), name: `${where} = ${s.startsWith('@{') ? s : `${s.length}-char secret`}` };
    }],
    [fam === 'id' ? 4 : 0, () => {
      const id = rng.pick(['', 'a', 'x'.repeat(64), 'x'.repeat(65), 'a b', 'é', 'r1', '@{id}', '-', '.', ':::']);
      return { value: setAt(root, node.path, id), name: `${where} = ${JSON.stringify(id).slice(0, 20)}` };
    }],
    [fam === 'message' ? 4 : 0, () => {
      const m = rng.pick(['', '1234567', '12345678', 'x'.repeat(64), 'x'.repeat(65), 'has space', 'mmmmmmmm']);
      const value = Array.isArray(node.value) ? Array.from({ length: rng.pick([0, 1, 2, 100, 101, 1000, 1001]) }, (_, i) => `${m}${i}`.slice(0, 70)) : m;
      return { value: setAt(root, node.path, value), name: `${where} = ${Array.isArray(value) ? `${value.length} messageIds` : JSON.stringify(m)}` };
    }],
    [fam === 'seq' ? 4 : 0, () => {
      const n = rng.pick([0, 1, 2, 99, 1000, 2 ** 31, 9007199254740991, 9007199254740992, -1]);
      const value = Array.isArray(node.value) ? Array.from({ length: rng.pick([0, 1, 2, 256, 257, 1000, 1001]) }, (_, i) => n + i) : n;
      return { value: setAt(root, node.path, value), name: `${where} = ${Array.isArray(value) ? `${value.length} values from ${n}` : n}` };
    }],
    [Array.isArray(node.value) && node.value.length > 0 ? 3 : 0, () => {
      const list = node.value as Json[];
      const item = list[rng.int(0, list.length - 1)]!;
      // Copies multiply: an element repeated 300 times inside one repeated 300 times, inside deep nesting, made one
      // input of 131 MB that took the fuzzer 23 s to build (seed 20261128, input 745967). The copies made by one
      // repetition are bounded in bytes, so an input grows by at most REPEAT_BUDGET per mutation.
      const text = JSON.stringify(item);
      const copies = Math.min(rng.pick([1, 1, 2, 16, 255, 300]), Math.floor(REPEAT_BUDGET / Math.max(1, text.length)));
      for (let i = 0; i < copies; i++) list.push(JSON.parse(text) as Json);
      return { value: root, name: `${where} element repeated ${copies}×` };
    }],
    [isObject ? 3 : 0, () => {
      const key = rng.pick(PROTO_KEYS);
      const polluted: Json = rng.pick<Json>([{ polluted: true, isAdmin: true }, { prototype: { polluted: true } }, 'x', 1, null, []]);
      setMember(node.value as Record<string, Json>, key, polluted);
      return { value: root, name: `${where} add member ${key}` };
    }],
    [isObject ? 2 : 0, () => {
      const obj = node.value as Record<string, Json>;
      const keys = Object.keys(obj);
      if (keys.length === 0) return { value: root, name: `${where} unchanged` };
      const from = rng.pick(keys);
      const to = rng.pick([...PROTO_KEYS, from.toUpperCase(), `${from} `, `${from}\u0000`, from.slice(0, -1)]);
      const v = obj[from]!;
      delete obj[from];
      setMember(obj, to, v);
      return { value: root, name: `${where} rename ${from} → ${JSON.stringify(to)}` };
    }],
    [isObject ? 2 : 0, () => {
      const key = rng.pick(['extra', 'from', 'x-unknown', 'userId', 'deviceId', 'admin', 'priority', '']);
      const v: Json = key === 'from' ? { userId: '@{victim.userId}', deviceId: '@{#victim.deviceId}' } : rng.pick<Json>([1, 'x', { from: { userId: '@{victim.userId}', deviceId: '@{#victim.deviceId}' } }, [1, 2], null]);
      setMember(node.value as Record<string, Json>, key, v);
      return { value: root, name: `${where} add member ${JSON.stringify(key)}` };
    }],
  ];
  return rng.weighted(ops)();
}

function typeName(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? '[]' : 'array';
  if (typeof value === 'object') return Object.keys(value).length === 0 ? '{}' : 'object';
  if (typeof value === 'string') return value.length === 0 ? '""' : `string`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** One text mutation of JSON text (placeholders are plain text to it). */
export function mutateText(text: string, rng: Rng): Mutation & { value: string } {
  const at = rng.int(0, text.length);
  const ops: Array<readonly [number, () => { value: string; name: string }]> = [
    [3, () => {
      // A second member with an existing name (TRN-13 forbids it; a server may refuse it like any invalid frame).
      const members = [...text.matchAll(/"([A-Za-z_]+)":/g)];
      if (members.length === 0) return { value: `${text} `, name: 'trailing space' };
      const m = rng.pick(members);
      const dup = `"${m[1]}":${rng.pick(['null', '1', '"x"', '{}', '[]', '"send"', '"@{victim.userId}"'])},`;
      return { value: text.slice(0, m.index) + dup + text.slice(m.index), name: `repeated member ${m[1]}` };
    }],
    [3, () => {
      const numbers = [...text.matchAll(/(?<=[:[,])(\d+)(?=[,}\]])/g)];
      if (numbers.length === 0) return { value: text.replace(/}$/, ',"n":1.0}'), name: 'number 1.0' };
      const m = rng.pick(numbers);
      const spelled = rng.pick([`${m[1]}.0`, `${m[1]}e0`, `${m[1]}E+0`, `0${m[1]}`, `-0`, `+${m[1]}`, `${m[1]}.5`, '1e400', '-1e400', '123456789012345678901234567890', `${m[1]}.00000000000000000001`]);
      return { value: text.slice(0, m.index) + spelled + text.slice(m.index! + m[1]!.length), name: `number ${m[1]} spelled ${spelled}` };
    }],
    [1, () => ({ value: text.slice(0, at), name: `truncated at ${at}` })],
    [2, () => {
      const junk = rng.pick([',', '}', ']', '"', ':', '\\', '/*x*/', '//x\n', 'NaN', 'Infinity', 'undefined', "'", '\u0000', '\t', '\u00a0', '\u2028', ',,']);
      return { value: text.slice(0, at) + junk + text.slice(at), name: `inserted ${JSON.stringify(junk)} at ${at}` };
    }],
    [1, () => ({ value: text.replace(/}\s*$/, ',}'), name: 'trailing comma' })],
    [1, () => ({ value: `\ufeff${text}`, name: 'byte order mark' })],
    [1, () => ({ value: `${text}${rng.pick([' ', '\n', '{}', ' x', '[]', ',{"type":"ping","id":"p"}'])}`, name: 'trailing data' })],
    [1, () => ({ value: text.replace(/"([a-z])/, (_, c: string) => `"\\u00${c.charCodeAt(0).toString(16)}`), name: 'escaped first letter' })],
    [1, () => ({ value: text.replace(/:"/, ':"\\ud800'), name: 'lone surrogate escape' })],
    [1, () => {
      const depth = rng.weighted([[6, 1000], [3, 10_000], [0.5, 100_000]]);
      return { value: text.replace(/}$/, `,"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`), name: `member nested ${depth} deep` };
    }],
    [0.5, () => ({ value: rng.pick(['', 'null', '[]', '"x"', '1', 'true', '[{"type":"ping","id":"p"}]', '{', '{}}']), name: 'not an object' })],
    [1, () => ({ value: text.replace(/"type":"([a-z_]+)"/, (_, t: string) => `"type":"${rng.pick([t.toUpperCase(), ` ${t}`, `${t}\\u0000`, `${t}s`, 'welcome', 'deliver', 'error', ''])}"`), name: 'type renamed in text' })],
  ];
  return rng.weighted(ops)();
}

/** Breaks the UTF-8 of `bytes` (TRN-25): overlong forms, lone continuation bytes, encoded surrogates, truncation. */
export function breakUtf8(bytes: Buffer, rng: Rng): { value: Buffer; name: string } {
  const bad = rng.pick<[number[], string]>([
    [[0xff], '0xFF'],
    [[0xc0, 0x80], 'overlong NUL'],
    [[0x80], 'lone continuation byte'],
    [[0xe2, 0x82], 'truncated sequence'],
    [[0xed, 0xa0, 0x80], 'encoded surrogate'],
    [[0xf4, 0x90, 0x80, 0x80], 'code point past U+10FFFF'],
    [[0xf8, 0x88, 0x80, 0x80, 0x80], '5-byte form'],
  ]);
  const at = rng.int(0, bytes.length);
  return { value: Buffer.concat([bytes.subarray(0, at), Buffer.from(bad[0]), bytes.subarray(at)]), name: `invalid UTF-8 (${bad[1]}) at ${at}` };
}
