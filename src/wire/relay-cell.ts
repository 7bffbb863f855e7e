// Implements docs/protocol.md §3.3 (the plaintext backward relay cell body; its tag and padding are src/crypto's job).
import {
  CELL_BODY_LEN,
  RELAY_COMMAND_OFFSET,
  RELAY_DATA_MAX,
  RELAY_HEADER_LEN,
  RELAY_LENGTH_OFFSET,
  RELAY_STREAM_OFFSET,
} from './constants.js';
import { malformed, tooLarge } from './errors.js';

export interface RelayHeader {
  command: number;
  streamId: number;
  length: number;
}

/**
 * A fresh CELL_BODY_LEN body: a zero tag, the header, `data`, then zeros (the backward layer turns
 * them into random padding when it seals the cell). Unknown commands are allowed so tests and future
 * messages can be built.
 */
export function buildRelayBody(command: number, streamId: number, data: Buffer): Buffer {
  const body = Buffer.allocUnsafe(CELL_BODY_LEN);
  writeRelayBody(body, command, streamId, data);
  return body;
}

/** Like buildRelayBody, into `out` (exactly CELL_BODY_LEN bytes, e.g. one slot of a batch buffer). */
export function writeRelayBody(out: Buffer, command: number, streamId: number, data: Buffer): void {
  if (!Number.isInteger(command) || command < 0 || command > 0xff) {
    throw tooLarge(`relay command must be a u8, got ${command}`);
  }
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xffff) {
    throw tooLarge(`stream id must be a u16, got ${streamId}`);
  }
  if (data.length > RELAY_DATA_MAX) {
    throw tooLarge(`relay data is ${data.length} bytes; a relay cell carries at most ${RELAY_DATA_MAX}`);
  }
  checkBody(out);
  out.fill(0, 0, RELAY_COMMAND_OFFSET);
  out[RELAY_COMMAND_OFFSET] = command;
  out.writeUInt16BE(streamId, RELAY_STREAM_OFFSET);
  out.writeUInt16BE(data.length, RELAY_LENGTH_OFFSET);
  out.set(data, RELAY_HEADER_LEN);
  out.fill(0, RELAY_HEADER_LEN + data.length);
}

function checkBody(body: Buffer): void {
  if (body.length !== CELL_BODY_LEN) {
    throw malformed(`a relay cell body is ${CELL_BODY_LEN} bytes, got ${body.length}`);
  }
}

/** The header fields as they stand. `length` is NOT checked here (relayData does). */
export function readRelayHeader(body: Buffer): RelayHeader {
  checkBody(body);
  return {
    command: body[RELAY_COMMAND_OFFSET],
    streamId: body.readUInt16BE(RELAY_STREAM_OFFSET),
    length: body.readUInt16BE(RELAY_LENGTH_OFFSET),
  };
}

/** A view (no copy) of data[0:length] of a recognised body. */
export function relayData(body: Buffer): Buffer {
  checkBody(body);
  const length = body.readUInt16BE(RELAY_LENGTH_OFFSET);
  if (length > RELAY_DATA_MAX) {
    throw malformed(`relay cell length field says ${length}; at most ${RELAY_DATA_MAX} bytes of data fit`);
  }
  return body.subarray(RELAY_HEADER_LEN, RELAY_HEADER_LEN + length);
}

/** A relay message as both directions carry it: command(1) | stream_id(2) | length(2) | data. */
export const RELAY_MESSAGE_HEADER_LEN = 5;

export function encodeRelayMessage(command: number, streamId: number, data: Buffer): Buffer {
  if (!Number.isInteger(command) || command < 0 || command > 0xff)
    throw tooLarge(`relay command must be a u8, got ${command}`);
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xffff)
    throw tooLarge(`stream id must be a u16, got ${streamId}`);
  if (data.length > 0xffff) throw tooLarge(`relay data is ${data.length} bytes`);
  const out = Buffer.allocUnsafe(RELAY_MESSAGE_HEADER_LEN + data.length);
  out[0] = command;
  out.writeUInt16BE(streamId, 1);
  out.writeUInt16BE(data.length, 3);
  data.copy(out, RELAY_MESSAGE_HEADER_LEN);
  return out;
}

/** Reads the relay message at `offset` of `buf`; its data must fit inside `buf`. */
export function decodeRelayMessage(
  buf: Buffer,
  offset: number,
): { command: number; streamId: number; data: Buffer } {
  if (buf.length < offset + RELAY_MESSAGE_HEADER_LEN) throw malformed('relay message header cut short');
  const length = buf.readUInt16BE(offset + 3);
  const start = offset + RELAY_MESSAGE_HEADER_LEN;
  if (start + length > buf.length) throw malformed(`relay message length ${length} runs past the cell`);
  return {
    command: buf[offset],
    streamId: buf.readUInt16BE(offset + 1),
    data: buf.subarray(start, start + length),
  };
}
