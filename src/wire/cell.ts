// Implements docs/protocol.md §2.1 (cell layout) and the cell part of §1.3 (frames carry whole cells).
import { CELL_BODY_LEN, CELL_HEADER_LEN, CELL_LEN, MAX_CELLS_PER_FRAME } from './constants.js';
import { malformed, tooLarge } from './errors.js';

export interface Cell {
  circId: number;
  command: number;
  /** Exactly CELL_BODY_LEN bytes. From the decoders this is a view into the input buffer. */
  body: Buffer;
}

function checkHeader(circId: number, command: number): void {
  if (!Number.isInteger(circId) || circId < 0 || circId > 0xffffffff) {
    throw tooLarge(`circuit id must be a u32, got ${circId}`);
  }
  if (!Number.isInteger(command) || command < 0 || command > 0xff) {
    throw tooLarge(`cell command must be a u8, got ${command}`);
  }
}

/**
 * Writes one cell at `out[offset..offset+CELL_LEN]`. A short body is zero-padded (the padding is
 * written explicitly, so `out` may be a reused buffer holding old bytes).
 */
export function writeCell(out: Buffer, offset: number, circId: number, command: number, body: Buffer): void {
  checkHeader(circId, command);
  if (body.length > CELL_BODY_LEN) {
    throw tooLarge(`cell body is ${body.length} bytes; the most a cell carries is ${CELL_BODY_LEN}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < CELL_LEN) {
    throw tooLarge(`no room for a ${CELL_LEN}-byte cell at offset ${offset} of a ${out.length}-byte buffer`);
  }
  out.writeUInt32BE(circId, offset);
  out[offset + 4] = command;
  const bodyAt = offset + CELL_HEADER_LEN;
  out.set(body, bodyAt);
  out.fill(0, bodyAt + body.length, offset + CELL_LEN);
}

/** One CELL_LEN-byte cell; `body` may be shorter than CELL_BODY_LEN (zero-padded), never longer. */
export function encodeCell(circId: number, command: number, body: Buffer): Buffer {
  checkHeader(circId, command);
  if (body.length > CELL_BODY_LEN) {
    throw tooLarge(`cell body is ${body.length} bytes; the most a cell carries is ${CELL_BODY_LEN}`);
  }
  const out = Buffer.allocUnsafe(CELL_LEN);
  writeCell(out, 0, circId, command, body);
  return out;
}

/** The cell at `buf[offset..]`; its body is a view into `buf`. */
export function decodeCell(buf: Buffer, offset = 0): Cell {
  if (!Number.isInteger(offset) || offset < 0 || buf.length - offset < CELL_LEN) {
    throw malformed(`a cell is ${CELL_LEN} bytes; only ${Math.max(0, buf.length - offset)} available`);
  }
  return {
    circId: buf.readUInt32BE(offset),
    command: buf[offset + 4],
    body: buf.subarray(offset + CELL_HEADER_LEN, offset + CELL_LEN),
  };
}

/**
 * Splits a buffer of whole cells. Bodies are views (no copies): they stay valid only while the
 * caller does not reuse `buf`. Commands are not checked here: §2.1 says the link drops unknown ones.
 */
export function decodeCells(buf: Buffer): Cell[] {
  if (buf.length % CELL_LEN !== 0) {
    throw malformed(`${buf.length} bytes is not a whole number of ${CELL_LEN}-byte cells`);
  }
  const cells: Cell[] = new Array(buf.length / CELL_LEN);
  for (let i = 0; i < cells.length; i++) cells[i] = decodeCell(buf, i * CELL_LEN);
  return cells;
}

/** The cells of one decrypted transport frame (§1.3): 1 to MAX_CELLS_PER_FRAME whole cells. */
export function decodeFrameCells(plaintext: Buffer): Cell[] {
  if (plaintext.length === 0) throw malformed('a transport frame carried no cells');
  if (plaintext.length > MAX_CELLS_PER_FRAME * CELL_LEN) {
    throw tooLarge(
      `a transport frame carried ${plaintext.length / CELL_LEN} cells; at most ${MAX_CELLS_PER_FRAME}`,
    );
  }
  return decodeCells(plaintext);
}
