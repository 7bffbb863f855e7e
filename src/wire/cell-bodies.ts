// Implements docs/protocol.md §2.1 (CREATE, CREATED and DESTROY cell bodies).
// Encoders return just the meaningful bytes; encodeCell zero-pads them to a full body. Decoders
// take a full body, ignore the zero padding after the fields, and return copies (safe to keep).
import { ByteReader, ByteWriter } from './bytes.js';
import { CELL_BODY_LEN } from './constants.js';
import { tooLarge } from './errors.js';

const CREATE_HEADER_LEN = 4; // htype(2) | hlen(2)
const CREATED_HEADER_LEN = 2; // hlen(2)

/** body = htype(u16) | hlen(u16) | hdata */
export function encodeCreate(htype: number, hdata: Buffer): Buffer {
  if (hdata.length > CELL_BODY_LEN - CREATE_HEADER_LEN) {
    throw tooLarge(`CREATE hdata is ${hdata.length} bytes; at most ${CELL_BODY_LEN - CREATE_HEADER_LEN} fit`);
  }
  return new ByteWriter(CREATE_HEADER_LEN + hdata.length)
    .u16(htype, 'CREATE htype')
    .u16Prefixed(hdata)
    .finish();
}

/** The handshake type is returned as sent, even if unknown: the caller decides what to refuse. */
export function decodeCreate(body: Buffer): { htype: number; hdata: Buffer } {
  const r = new ByteReader(body, 'CREATE body');
  const htype = r.u16('htype');
  const hlen = r.u16('hlen');
  return { htype, hdata: Buffer.from(r.bytes(hlen, 'hdata')) };
}

/** body = hlen(u16) | hdata */
export function encodeCreated(hdata: Buffer): Buffer {
  if (hdata.length > CELL_BODY_LEN - CREATED_HEADER_LEN) {
    throw tooLarge(
      `CREATED hdata is ${hdata.length} bytes; at most ${CELL_BODY_LEN - CREATED_HEADER_LEN} fit`,
    );
  }
  return new ByteWriter(CREATED_HEADER_LEN + hdata.length).u16Prefixed(hdata).finish();
}

export function decodeCreated(body: Buffer): { hdata: Buffer } {
  const r = new ByteReader(body, 'CREATED body');
  const hlen = r.u16('hlen');
  return { hdata: Buffer.from(r.bytes(hlen, 'hdata')) };
}

/** body = reason(u8). Any u8 is encodable; unknown reasons are the receiver's business. */
export function encodeDestroy(reason: number): Buffer {
  return new ByteWriter(1).u8(reason, 'DESTROY reason').finish();
}

export function decodeDestroy(body: Buffer): { reason: number } {
  return { reason: new ByteReader(body, 'DESTROY body').u8('reason') };
}
