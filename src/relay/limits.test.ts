import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from './limits.js';

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
