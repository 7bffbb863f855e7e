import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeCell, decodeCells, decodeFrameCells, encodeCell, writeCell } from './cell.js';
import { CELL_BODY_LEN, CELL_LEN, CellCommand, MAX_CELLS_PER_FRAME } from './constants.js';
import { WireError } from './errors.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const isWire = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;

describe('cells (§2.1)', () => {
  it('lays out circ_id(u32) | command(u8) | body, zero-padded to 4096 bytes', () => {
    const cell = encodeCell(0x80000001, CellCommand.CREATE, Buffer.from([0xaa, 0xbb]));
    assert.equal(cell.length, CELL_LEN);
    assert.deepEqual(cell.subarray(0, 7), Buffer.from([0x80, 0, 0, 1, 1, 0xaa, 0xbb]));
    assert.ok(cell.subarray(7).every((b) => b === 0));
  });

  it('decodes what it encodes, with a full-length body', () => {
    const [c] = decodeCells(encodeCell(7, CellCommand.RELAY, Buffer.from('hi')));
    assert.equal(c.circId, 7);
    assert.equal(c.command, CellCommand.RELAY);
    assert.equal(c.body.length, CELL_BODY_LEN);
    assert.equal(c.body.subarray(0, 2).toString(), 'hi');
  });

  it('accepts a body of exactly CELL_BODY_LEN and refuses a longer one (TOO_LARGE)', () => {
    const full = Buffer.alloc(CELL_BODY_LEN, 7);
    assert.deepEqual(decodeCell(encodeCell(1, 3, full)).body, full);
    assert.throws(() => encodeCell(1, 3, Buffer.alloc(CELL_BODY_LEN + 1)), isWire('ALLIUM_WIRE_TOO_LARGE'));
  });

  it('refuses header values that do not fit', () => {
    assert.throws(() => encodeCell(2 ** 32, 0, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => encodeCell(-1, 0, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => encodeCell(1, 256, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
  });

  it('writeCell overwrites stale bytes in a reused buffer and checks room', () => {
    const out = Buffer.alloc(CELL_LEN * 2 + 3, 0xee);
    writeCell(out, 3, 9, 4, Buffer.from([1]));
    assert.equal(out[2], 0xee);
    assert.deepEqual(decodeCell(out, 3), {
      circId: 9,
      command: 4,
      body: encodeCell(9, 4, Buffer.from([1])).subarray(5),
    });
    assert.equal(out[3 + CELL_LEN], 0xee);
    assert.throws(() => writeCell(out, CELL_LEN + 4, 1, 1, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => writeCell(out, -1, 1, 1, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
  });

  it('decodeCells splits several cells and returns views into the input', () => {
    const buf = Buffer.concat([encodeCell(1, 1, Buffer.from([1])), encodeCell(2, 3, Buffer.from([2]))]);
    const cells = decodeCells(buf);
    assert.deepEqual(
      cells.map((c) => [c.circId, c.command, c.body[0]]),
      [
        [1, 1, 1],
        [2, 3, 2],
      ],
    );
    buf[CELL_LEN + 5] = 42;
    assert.equal(cells[1].body[0], 42);
    assert.deepEqual(decodeCells(Buffer.alloc(0)), []);
  });

  it('refuses a buffer that is not a whole number of cells (MALFORMED)', () => {
    for (const n of [1, CELL_LEN - 1, CELL_LEN + 1, CELL_LEN * 2 - 5]) {
      assert.throws(() => decodeCells(Buffer.alloc(n)), isWire('ALLIUM_WIRE_MALFORMED'));
    }
    assert.throws(() => decodeCell(Buffer.alloc(CELL_LEN), 1), isWire('ALLIUM_WIRE_MALFORMED'));
  });

  it('decodeFrameCells wants 1 to 15 cells (§1.3)', () => {
    assert.throws(() => decodeFrameCells(Buffer.alloc(0)), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.equal(decodeFrameCells(Buffer.alloc(CELL_LEN * MAX_CELLS_PER_FRAME)).length, MAX_CELLS_PER_FRAME);
    assert.throws(
      () => decodeFrameCells(Buffer.alloc(CELL_LEN * (MAX_CELLS_PER_FRAME + 1))),
      isWire('ALLIUM_WIRE_TOO_LARGE'),
    );
  });

  it('round-trips random cells', () => {
    const cellArb = fc.record({
      circId: fc.nat(0xffffffff),
      command: fc.nat(255),
      body: fc.uint8Array({ maxLength: CELL_BODY_LEN }),
    });
    fc.assert(
      fc.property(fc.array(cellArb, { minLength: 1, maxLength: 4 }), (cells) => {
        const decoded = decodeCells(
          Buffer.concat(cells.map((c) => encodeCell(c.circId, c.command, Buffer.from(c.body)))),
        );
        assert.equal(decoded.length, cells.length);
        cells.forEach((c, i) => {
          assert.equal(decoded[i].circId, c.circId);
          assert.equal(decoded[i].command, c.command);
          const padded = Buffer.alloc(CELL_BODY_LEN);
          padded.set(c.body);
          assert.deepEqual(decoded[i].body, padded);
        });
      }),
      { numRuns },
    );
  });

  it('throws nothing but WireError on random input', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: CELL_LEN * 3 + 7 }), (n) => {
        try {
          const cells = decodeCells(Buffer.alloc(n, 0x5a));
          assert.equal(n % CELL_LEN, 0);
          assert.equal(cells.length, n / CELL_LEN);
        } catch (e) {
          assert.ok(e instanceof WireError);
          assert.notEqual(n % CELL_LEN, 0);
        }
      }),
      { numRuns },
    );
  });
});
