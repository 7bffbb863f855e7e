import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_INTRO_BURST } from '../core/intro-rate-limiter.js';
import { silentLogger } from '../log.js';
import type { IntroPoint } from './intro-points.js';
import { Introductions, type IntroductionsOptions } from './introductions.js';

describe("the service's introduction budget (protocol §8.8, §8.10)", () => {
  it("a flood through one introduction point spends that point's budget only", async () => {
    const now = 1_000_000;
    const intros = new Introductions({
      log: silentLogger,
      subcredentials: () => [],
      exhausted: () => {},
      now: () => now,
    } as unknown as IntroductionsOptions);
    const flooded = {} as IntroPoint;
    const other = {} as IntroPoint;
    // Bytes that are no INTRODUCE2: past the budget they are dropped before they are even parsed.
    const junk = Buffer.alloc(8);
    let limited = 0;
    for (let i = 0; i < DEFAULT_INTRO_BURST + 50; i++) {
      if ((await intros.introduce(flooded, junk)) === 'rateLimited') limited++;
    }
    assert.equal(limited, 50, 'the flooded point is held to its burst');
    // The same moment, through another point: parsed (and refused as malformed), not rate limited.
    assert.equal(await intros.introduce(other, junk), 'refused');
    assert.equal(intros.counts.rateLimited, 50);
  });
});
