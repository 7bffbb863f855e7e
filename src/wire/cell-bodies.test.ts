import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCell, encodeCell } from './cell.js';
import {
  decodeCreate,
  decodeCreated,
  decodeDestroy,
  encodeCreate,
  encodeCreated,
  encodeDestroy,
} from './cell-bodies.js';
import { CELL_BODY_LEN, CellCommand, DestroyReason, HandshakeType } from './constants.js';
import { WireError } from './errors.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const isWire = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;
/** What a peer receives: the body of a full, zero-padded cell. */
const onWire = (body: Buffer) => decodeCell(encodeCell(1, CellCommand.CREATE, body)).body;

describe('CREATE / CREATED / DESTROY bodies (§2.1)', () => {
  it('CREATE is htype(u16) | hlen(u16) | hdata and round-trips through a padded cell', () => {
    const hdata = Buffer.alloc(96, 3);
    const body = encodeCreate(HandshakeType.NTOR_X25519_SHA256, hdata);
    assert.deepEqual(body.subarray(0, 4), Buffer.from([0, 2, 0, 96]));
    assert.deepEqual(decodeCreate(onWire(body)), { htype: 2, hdata });
  });

  it('CREATE returns an unknown htype for the caller to judge', () => {
    assert.equal(decodeCreate(onWire(encodeCreate(0xbeef, Buffer.alloc(1)))).htype, 0xbeef);
  });

  it('CREATED is hlen(u16) | hdata', () => {
    const hdata = Buffer.alloc(64, 9);
    const body = encodeCreated(hdata);
    assert.deepEqual(body.subarray(0, 2), Buffer.from([0, 64]));
    assert.deepEqual(decodeCreated(onWire(body)), { hdata });
  });

  it('DESTROY is reason(u8)', () => {
    assert.deepEqual(encodeDestroy(DestroyReason.INTEGRITY), Buffer.from([13]));
    assert.deepEqual(decodeDestroy(onWire(encodeDestroy(DestroyReason.INTEGRITY))), { reason: 13 });
    assert.throws(() => encodeDestroy(256), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => decodeDestroy(Buffer.alloc(0)), isWire('ALLIUM_WIRE_MALFORMED'));
  });

  it('refuses hdata that cannot fit a body (TOO_LARGE)', () => {
    assert.equal(encodeCreate(2, Buffer.alloc(CELL_BODY_LEN - 4)).length, CELL_BODY_LEN);
    assert.throws(() => encodeCreate(2, Buffer.alloc(CELL_BODY_LEN - 3)), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.equal(encodeCreated(Buffer.alloc(CELL_BODY_LEN - 2)).length, CELL_BODY_LEN);
    assert.throws(() => encodeCreated(Buffer.alloc(CELL_BODY_LEN - 1)), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => encodeCreate(65536, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
  });

  it('refuses an hlen that runs past the body (MALFORMED)', () => {
    const body = Buffer.alloc(CELL_BODY_LEN);
    body.writeUInt16BE(2, 0);
    body.writeUInt16BE(CELL_BODY_LEN - 3, 2);
    assert.throws(() => decodeCreate(body), isWire('ALLIUM_WIRE_MALFORMED'));
    body.writeUInt16BE(CELL_BODY_LEN - 4, 2);
    assert.equal(decodeCreate(body).hdata.length, CELL_BODY_LEN - 4);
    const created = Buffer.alloc(CELL_BODY_LEN);
    created.writeUInt16BE(CELL_BODY_LEN - 1, 0);
    assert.throws(() => decodeCreated(created), isWire('ALLIUM_WIRE_MALFORMED'));
  });

  it('decoders return copies, safe to keep after the cell buffer is reused', () => {
    const body = onWire(encodeCreated(Buffer.from([1, 2, 3])));
    const { hdata } = decodeCreated(body);
    body.fill(0);
    assert.deepEqual(hdata, Buffer.from([1, 2, 3]));
  });

  it('round-trips random handshakes', () => {
    fc.assert(
      fc.property(fc.nat(0xffff), fc.uint8Array({ maxLength: 300 }), (htype, h) => {
        const hdata = Buffer.from(h);
        assert.deepEqual(decodeCreate(onWire(encodeCreate(htype, hdata))), { htype, hdata });
        assert.deepEqual(decodeCreated(onWire(encodeCreated(hdata))), { hdata });
      }),
      { numRuns },
    );
  });

  it('throws nothing but WireError on random bodies', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        for (const decode of [decodeCreate, decodeCreated, decodeDestroy]) {
          try {
            decode(Buffer.from(b));
          } catch (e) {
            assert.ok(e instanceof WireError, String(e));
          }
        }
      }),
      { numRuns },
    );
  });
});
