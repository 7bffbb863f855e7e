import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CellSlabs } from './cell-slabs.js';

test('copies stay intact while slabs fill, empty and are reused', () => {
  const slabs = new CellSlabs();
  const live: { copy: Buffer; want: number }[] = [];
  // 200 cells of 4091 bytes: about 13 slabs; each copy is read and released in a shuffled order.
  for (let i = 0; i < 200; i++) {
    const original = Buffer.alloc(4091, i & 0xff);
    live.push({ copy: slabs.copy(original), want: i & 0xff });
    original.fill(0xee); // the copy does not depend on its source
    if (i % 3 === 2) {
      const [done] = live.splice((i * 7) % live.length, 1);
      assert.ok(
        done.copy.every((b) => b === done.want),
        'a copy read before it is done',
      );
      slabs.done(done.copy);
    }
  }
  for (const { copy, want } of live) {
    assert.ok(
      copy.every((b) => b === want),
      'a waiting copy was not overwritten by reuse',
    );
    slabs.done(copy);
  }
});

test('buffers that are not copies are ignored by done(), and bodies larger than a slab are copied whole', () => {
  const slabs = new CellSlabs();
  slabs.done(Buffer.alloc(10)); // not ours: nothing happens
  const big = Buffer.alloc(100_000, 7);
  const copy = slabs.copy(big);
  assert.equal(copy.length, 100_000);
  assert.ok(copy.every((b) => b === 7));
  const empty = slabs.copy(Buffer.alloc(0));
  assert.equal(empty.length, 0);
  slabs.done(empty);
});
