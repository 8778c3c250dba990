// SignalMessage and PreKeySignalMessage byte layouts (PROTOCOL.md 8.5; rust/protocol/src/protocol.rs and
// proto/wire.proto of libsignal): version byte, protobuf, and for a SignalMessage the 8-byte truncated HMAC.
import { assertBytes, assertUint, concatBytes, constantTimeEqual } from './bytes.ts';
import { MAC_KEY_LENGTH, MAC_LENGTH, MAX_UINT32, MESSAGE_VERSION, PREKEY_ID_MAX, SERIALIZED_PUBLIC_KEY_LENGTH, VERSION_BYTE } from './constants.ts';
import { E2eError } from './errors.ts';
import { hmacSha256 } from './kdf.ts';
import { checkPublicKey } from './keys.ts';
import { ProtoWriter, WIRE_BYTES, WIRE_VARINT, readMessage, type FieldValue, type KnownWireType } from './protobuf.ts';

export interface SignalMessageFields {
  ratchetKey: Uint8Array;
  counter: number;
  previousCounter: number;
  ciphertext: Uint8Array;
}

export interface DecodedSignalMessage extends SignalMessageFields {
  /** High nibble of the first byte. */
  version: number;
  /** The whole body as received: version ‖ protobuf ‖ mac. */
  serialized: Uint8Array;
}

export interface PreKeySignalMessageFields {
  /** Absent when no one-time prekey was used. [E2E-20] */
  preKeyId?: number | undefined;
  baseKey: Uint8Array;
  identityKey: Uint8Array;
  /** A complete SignalMessage. */
  message: Uint8Array;
  registrationId: number;
  signedPreKeyId: number;
}

export interface DecodedPreKeySignalMessage extends PreKeySignalMessageFields {
  version: number;
  signalMessage: DecodedSignalMessage;
  serialized: Uint8Array;
}

const SIGNAL_FIELDS = new Map<number, KnownWireType>([
  [1, WIRE_BYTES], // ratchetKey
  [2, WIRE_VARINT], // counter
  [3, WIRE_VARINT], // previousCounter
  [4, WIRE_BYTES], // ciphertext
]);
const PREKEY_FIELDS = new Map<number, KnownWireType>([
  [1, WIRE_VARINT], // preKeyId
  [2, WIRE_BYTES], // baseKey
  [3, WIRE_BYTES], // identityKey
  [4, WIRE_BYTES], // message
  [5, WIRE_VARINT], // registrationId
  [6, WIRE_VARINT], // signedPreKeyId
]);
/** kyberPreKeyId and kyberCiphertext belong to version 4. [E2E-46] */
const PREKEY_FORBIDDEN = new Set([7, 8]);

/** mac = first 8 bytes of HMAC(macKey, senderIdentity ‖ receiverIdentity ‖ version ‖ protobuf). [E2E-39] */
export function signalMessageMac(
  versionAndProtobuf: Uint8Array,
  macKey: Uint8Array,
  senderIdentity: Uint8Array,
  receiverIdentity: Uint8Array,
): Uint8Array {
  assertBytes(macKey, 'macKey', MAC_KEY_LENGTH);
  assertBytes(senderIdentity, 'senderIdentity', SERIALIZED_PUBLIC_KEY_LENGTH);
  assertBytes(receiverIdentity, 'receiverIdentity', SERIALIZED_PUBLIC_KEY_LENGTH);
  return hmacSha256(macKey, concatBytes(senderIdentity, receiverIdentity, versionAndProtobuf)).slice(0, MAC_LENGTH);
}

/** Encodes and MACs a SignalMessage: 0x33 ‖ protobuf (fields 1-4, all present) ‖ mac. [E2E-37], [E2E-38] */
export function encodeSignalMessage(
  fields: SignalMessageFields,
  macKey: Uint8Array,
  senderIdentity: Uint8Array,
  receiverIdentity: Uint8Array,
): Uint8Array {
  checkPublicKey(fields.ratchetKey, 'ratchetKey');
  assertUint(fields.counter, 'counter', 0, MAX_UINT32);
  assertUint(fields.previousCounter, 'previousCounter', 0, MAX_UINT32);
  assertBytes(fields.ciphertext, 'ciphertext');
  const body = new ProtoWriter()
    .bytes(1, fields.ratchetKey)
    .uint32(2, fields.counter)
    .uint32(3, fields.previousCounter)
    .bytes(4, fields.ciphertext)
    .finish(1, MAC_LENGTH);
  body[0] = VERSION_BYTE;
  const unmaced = body.subarray(0, body.length - MAC_LENGTH);
  body.set(signalMessageMac(unmaced, macKey, senderIdentity, receiverIdentity), body.length - MAC_LENGTH);
  return body;
}

const malformed = (message: string): E2eError => new E2eError('E2E_MALFORMED_MESSAGE', message);

function checkVersion(first: number): number {
  const version = first >> 4; // [E2E-41] the low nibble is ignored
  if (version !== MESSAGE_VERSION) throw new E2eError('E2E_UNSUPPORTED_VERSION', `message version ${version}`);
  return version;
}

function bytesField(fields: Map<number, FieldValue>, number: number, name: string): Uint8Array {
  const field = fields.get(number);
  if (field === undefined) throw malformed(`missing ${name}`); // [E2E-45]
  return field.value as Uint8Array;
}

function uintField(fields: Map<number, FieldValue>, number: number): number | undefined {
  const field = fields.get(number);
  return field === undefined ? undefined : (field.value as number);
}

/** Decodes a SignalMessage strictly (8.5.4); the MAC is checked later, with the message keys. */
export function decodeSignalMessage(body: Uint8Array): DecodedSignalMessage {
  assertBytes(body, 'body');
  if (body.length < 1 + MAC_LENGTH) throw malformed(`SignalMessage of ${body.length} bytes`); // [E2E-42]
  const version = checkVersion(body[0]!);
  const fields = readMessage(body.subarray(1, body.length - MAC_LENGTH), SIGNAL_FIELDS);
  const ratchetKey = checkPublicKey(bytesField(fields, 1, 'ratchetKey'), 'ratchetKey'); // [E2E-48]
  const counter = uintField(fields, 2);
  if (counter === undefined) throw malformed('missing counter');
  const ciphertext = bytesField(fields, 4, 'ciphertext');
  return { version, ratchetKey, counter, previousCounter: uintField(fields, 3) ?? 0, ciphertext, serialized: body };
}

/** Compares the 8-byte MAC in constant time. [E2E-40] */
export function verifySignalMessageMac(
  message: DecodedSignalMessage,
  macKey: Uint8Array,
  senderIdentity: Uint8Array,
  receiverIdentity: Uint8Array,
): boolean {
  const body = message.serialized;
  const expected = signalMessageMac(body.subarray(0, body.length - MAC_LENGTH), macKey, senderIdentity, receiverIdentity);
  return constantTimeEqual(expected, body.subarray(body.length - MAC_LENGTH));
}

/** Encodes a PreKeySignalMessage: 0x33 ‖ protobuf (fields 1-6 ascending, 1 only with a one-time prekey). */
export function encodePreKeySignalMessage(fields: PreKeySignalMessageFields): Uint8Array {
  if (fields.preKeyId !== undefined) assertUint(fields.preKeyId, 'preKeyId', 0, PREKEY_ID_MAX);
  checkPublicKey(fields.baseKey, 'baseKey');
  checkPublicKey(fields.identityKey, 'identityKey');
  assertBytes(fields.message, 'message');
  assertUint(fields.registrationId, 'registrationId', 0, MAX_UINT32);
  assertUint(fields.signedPreKeyId, 'signedPreKeyId', 0, PREKEY_ID_MAX);
  const writer = new ProtoWriter();
  if (fields.preKeyId !== undefined) writer.uint32(1, fields.preKeyId);
  const body = writer
    .bytes(2, fields.baseKey)
    .bytes(3, fields.identityKey)
    .bytes(4, fields.message)
    .uint32(5, fields.registrationId)
    .uint32(6, fields.signedPreKeyId)
    .finish(1);
  body[0] = VERSION_BYTE;
  return body;
}

/** Decodes a PreKeySignalMessage and its embedded SignalMessage strictly (8.5.4). */
export function decodePreKeySignalMessage(body: Uint8Array): DecodedPreKeySignalMessage {
  assertBytes(body, 'body');
  if (body.length === 0) throw malformed('empty PreKeySignalMessage'); // [E2E-42]
  const version = checkVersion(body[0]!);
  const fields = readMessage(body.subarray(1), PREKEY_FIELDS, PREKEY_FORBIDDEN);
  const baseKey = checkPublicKey(bytesField(fields, 2, 'baseKey'), 'baseKey');
  const identityKey = checkPublicKey(bytesField(fields, 3, 'identityKey'), 'identityKey');
  const message = bytesField(fields, 4, 'message');
  const signedPreKeyId = uintField(fields, 6);
  if (signedPreKeyId === undefined) throw malformed('missing signedPreKeyId');
  const signalMessage = decodeSignalMessage(message);
  return {
    version,
    preKeyId: uintField(fields, 1),
    baseKey,
    identityKey,
    message,
    registrationId: uintField(fields, 5) ?? 0,
    signedPreKeyId,
    signalMessage,
    serialized: body,
  };
}
