import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CELL_BODY_LEN,
  RELAY_DATA_MAX,
  RELAY_HEADER_LEN,
  RELAY_LENGTH_OFFSET,
  RELAY_TAG_LEN,
  RelayCommand,
} from './constants.js';
import { WireError } from './errors.js';
import { buildRelayBody, readRelayHeader, relayData } from './relay-cell.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const isWire = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;

describe('relay cell body (§3.3)', () => {
  it('is tag(16 zeros) | command | stream | length | data | zeros', () => {
    const body = buildRelayBody(RelayCommand.DATA, 0x1234, Buffer.from('abc'));
    assert.equal(body.length, CELL_BODY_LEN);
    assert.deepEqual(
      body.subarray(0, RELAY_HEADER_LEN + 3),
      Buffer.concat([Buffer.alloc(RELAY_TAG_LEN), Buffer.from([2, 0x12, 0x34, 0, 3]), Buffer.from('abc')]),
    );
    assert.ok(body.subarray(RELAY_HEADER_LEN + 3).every((b) => b === 0));
    assert.deepEqual(readRelayHeader(body), { command: 2, streamId: 0x1234, length: 3 });
    assert.equal(relayData(body).toString(), 'abc');
  });

  it('carries up to RELAY_DATA_MAX (4070) bytes and refuses more', () => {
    const data = Buffer.alloc(RELAY_DATA_MAX, 0x61);
    assert.deepEqual(relayData(buildRelayBody(2, 1, data)), data);
    assert.throws(
      () => buildRelayBody(2, 1, Buffer.alloc(RELAY_DATA_MAX + 1)),
      isWire('ALLIUM_WIRE_TOO_LARGE'),
    );
  });

  it('refuses a command or stream id that does not fit', () => {
    assert.throws(() => buildRelayBody(256, 1, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => buildRelayBody(1, 65536, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => buildRelayBody(1, -1, Buffer.alloc(0)), isWire('ALLIUM_WIRE_TOO_LARGE'));
  });

  it('readRelayHeader reports the fields, whatever the tag, without judging length', () => {
    const body = buildRelayBody(1, 5, Buffer.alloc(0));
    body.writeUInt16BE(0xffff, RELAY_LENGTH_OFFSET);
    body.fill(0x77, 0, RELAY_TAG_LEN);
    assert.deepEqual(readRelayHeader(body), { command: 1, streamId: 5, length: 0xffff });
    assert.throws(() => relayData(body), isWire('ALLIUM_WIRE_MALFORMED'));
    body.writeUInt16BE(RELAY_DATA_MAX + 1, RELAY_LENGTH_OFFSET);
    assert.throws(() => relayData(body), /at most 4070/);
  });

  it('refuses bodies that are not CELL_BODY_LEN bytes', () => {
    for (const n of [0, RELAY_HEADER_LEN, CELL_BODY_LEN - 1, CELL_BODY_LEN + 1]) {
      assert.throws(() => readRelayHeader(Buffer.alloc(n)), isWire('ALLIUM_WIRE_MALFORMED'));
      assert.throws(() => relayData(Buffer.alloc(n)), isWire('ALLIUM_WIRE_MALFORMED'));
    }
  });

  it('relayData is a view (no copy)', () => {
    const body = buildRelayBody(2, 1, Buffer.from('xyz'));
    const d = relayData(body);
    body[RELAY_HEADER_LEN] = 0x41;
    assert.equal(d.toString(), 'Ayz');
  });

  it('round-trips random messages', () => {
    fc.assert(
      fc.property(
        fc.nat(255),
        fc.nat(0xffff),
        fc.uint8Array({ maxLength: RELAY_DATA_MAX }),
        (cmd, sid, d) => {
          const body = buildRelayBody(cmd, sid, Buffer.from(d));
          assert.deepEqual(readRelayHeader(body), {
            command: cmd,
            streamId: sid,
            length: d.length,
          });
          assert.deepEqual(relayData(body), Buffer.from(d));
        },
      ),
      { numRuns },
    );
  });

  it('throws nothing but WireError on random (e.g. still-encrypted) bodies', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: RELAY_HEADER_LEN, maxLength: RELAY_HEADER_LEN }), (head) => {
        const body = Buffer.alloc(CELL_BODY_LEN);
        body.set(head);
        const h = readRelayHeader(body);
        try {
          assert.equal(relayData(body).length, h.length);
        } catch (e) {
          assert.ok(e instanceof WireError);
          assert.ok(h.length > RELAY_DATA_MAX);
        }
      }),
      { numRuns },
    );
  });
});
