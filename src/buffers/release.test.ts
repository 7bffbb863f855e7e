import assert from 'node:assert/strict';
import { test } from 'node:test';
import { releaseBuffer } from './release.js';

test('a Buffer that owns its memory is released and reads as empty afterwards', () => {
  const b = Buffer.alloc(64 * 1024, 7);
  assert.equal(releaseBuffer(b), true);
  assert.equal(b.length, 0);
  assert.equal(b.buffer.byteLength, 0);
});

test('views of a larger buffer, pooled small buffers and small buffers are left alone', () => {
  const big = Buffer.alloc(128 * 1024, 1);
  const head = big.subarray(0, 64 * 1024);
  const tail = big.subarray(64 * 1024);
  assert.equal(releaseBuffer(head), false);
  assert.equal(releaseBuffer(tail), false);
  assert.equal(big.length, 128 * 1024);
  assert.equal(big[100_000], 1);

  const pooled = Buffer.from('short and pooled');
  assert.equal(releaseBuffer(pooled), false);
  assert.equal(pooled.toString(), 'short and pooled');

  const small = Buffer.alloc(1024, 3);
  assert.equal(releaseBuffer(small), false);
  assert.equal(small[0], 3);
});

test('releasing twice is harmless', () => {
  const b = Buffer.alloc(32 * 1024);
  assert.equal(releaseBuffer(b), true);
  assert.equal(releaseBuffer(b), false);
});
