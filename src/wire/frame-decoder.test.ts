import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_FRAME_LEN } from './constants.js';
import { WireError } from './errors.js';
import { encodeFrameLength, FrameDecoder } from './frame-decoder.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const isWire = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;
const frame = (payload: Buffer) => Buffer.concat([encodeFrameLength(payload.length), payload]);

/** Cuts `buf` at the given fractional positions. */
function chunk(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * buf.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, buf.length]) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  return out;
}

describe('encodeFrameLength', () => {
  it('is a big-endian u16 of 1..65535', () => {
    assert.deepEqual(encodeFrameLength(1), Buffer.from([0, 1]));
    assert.deepEqual(encodeFrameLength(4112), Buffer.from([0x10, 0x10]));
    assert.deepEqual(encodeFrameLength(MAX_FRAME_LEN), Buffer.from([0xff, 0xff]));
    assert.throws(() => encodeFrameLength(0), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => encodeFrameLength(65536), isWire('ALLIUM_WIRE_TOO_LARGE'));
  });
});

describe('FrameDecoder', () => {
  it('returns whole frames, keeps a partial tail, and reports buffered bytes', () => {
    const d = new FrameDecoder();
    const stream = Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('second'))]);
    assert.deepEqual(d.push(stream.subarray(0, 1)), []);
    assert.equal(d.buffered, 1);
    assert.deepEqual(
      d.push(stream.subarray(1, 8)).map((b) => b.toString()),
      ['one'],
    );
    assert.equal(d.buffered, 3);
    assert.deepEqual(d.push(Buffer.alloc(0)), []);
    assert.deepEqual(
      d.push(stream.subarray(8)).map((b) => b.toString()),
      ['second'],
    );
    assert.equal(d.buffered, 0);
  });

  it('returns a frame inside one chunk as a view (no copy)', () => {
    const d = new FrameDecoder();
    const chunkBuf = frame(Buffer.from('abc'));
    const [f] = d.push(chunkBuf);
    chunkBuf[2] = 0x7a;
    assert.equal(f.toString(), 'zbc');
  });

  it('refuses a zero-length frame and stays failed', () => {
    const d = new FrameDecoder();
    assert.throws(() => d.push(Buffer.from([0, 0, 1, 2])), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => d.push(frame(Buffer.from('ok'))), isWire('ALLIUM_WIRE_MALFORMED'));
  });

  it('refuses a frame over its limit as soon as the prefix arrives', () => {
    const d = new FrameDecoder(4096);
    assert.deepEqual(d.push(frame(Buffer.alloc(4096))).length, 1);
    assert.throws(() => d.push(Buffer.from([0x10, 0x01])), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => new FrameDecoder(0), WireError);
    assert.throws(() => new FrameDecoder(65536), WireError);
  });

  it('handles a maximum-size frame fed one byte at a time', () => {
    const payload = Buffer.alloc(MAX_FRAME_LEN);
    for (let i = 0; i < payload.length; i++) payload[i] = i * 7;
    const stream = frame(payload);
    const d = new FrameDecoder();
    const got: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)));
    assert.equal(got.length, 1);
    assert.ok(got[0].equals(payload));
    assert.equal(d.buffered, 0);
  });

  it('gives the same frames however the stream is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 20 }),
        fc.uint8Array({ maxLength: 3 }),
        (payloads, cuts, tail) => {
          const frames = payloads.map((p) => Buffer.from(p));
          // A trailing partial frame (a prefix promising more than `tail`) must be held back.
          const partial =
            tail.length > 0 ? Buffer.concat([encodeFrameLength(250), Buffer.from(tail)]) : Buffer.alloc(0);
          const stream = Buffer.concat([...frames.map(frame), partial]);
          const d = new FrameDecoder(300);
          const got: Buffer[] = [];
          for (const c of chunk(stream, cuts)) got.push(...d.push(c));
          assert.deepEqual(got, frames);
          assert.equal(d.buffered, partial.length);
        },
      ),
      { numRuns },
    );
  });

  it('throws nothing but WireError on random streams', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 64 }),
        (chunks, max) => {
          const d = new FrameDecoder(max);
          try {
            for (const c of chunks)
              for (const f of d.push(Buffer.from(c))) assert.ok(f.length >= 1 && f.length <= max);
          } catch (e) {
            assert.ok(e instanceof WireError);
          }
        },
      ),
      { numRuns },
    );
  });
});
