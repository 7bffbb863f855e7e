import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultTotalQueueBytes, TokenBucket } from './limits.js';

test('a token bucket allows the burst, then the rate', () => {
  let now = 0;
  const b = new TokenBucket(10, 5, () => now);
  let ok = 0;
  for (let i = 0; i < 20; i++) if (b.take()) ok++;
  assert.equal(ok, 5);
  now += 1000;
  ok = 0;
  for (let i = 0; i < 20; i++) if (b.take()) ok++;
  assert.equal(ok, 5); // refilled to the burst cap, not 10
  now += 200;
  assert.equal(b.take(), true);
  assert.equal(b.take(), true);
  assert.equal(b.take(), false);
});

test('the default total queue is a quarter of memory, between 256 MiB and 4 GiB', () => {
  const MiB = 1024 * 1024;
  assert.equal(defaultTotalQueueBytes(512 * MiB), 256 * MiB); // a small Raspberry Pi
  assert.equal(defaultTotalQueueBytes(4096 * MiB), 1024 * MiB);
  assert.equal(defaultTotalQueueBytes(24 * 1024 * MiB), 4096 * MiB);
  assert.equal(defaultTotalQueueBytes(3000 * MiB + 123), 750 * MiB); // whole MiB
});
