import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_PATH_BIAS_MIN_CIRCUITS, PathBias } from './path-bias.js';

const G = 'a'.repeat(64);

/** Records `count` builds through G, failing those where `fails(i)`; returns the verdicts reported. */
function run(bias: PathBias, count: number, fails: (i: number) => boolean): string[] {
  const reported: string[] = [];
  for (let i = 0; i < count; i++) {
    const v = bias.record(G, !fails(i));
    if (v) reported.push(v);
  }
  return reported;
}

describe('path bias', () => {
  it('judges no guard on fewer builds than the minimum', () => {
    const bias = new PathBias();
    assert.deepEqual(
      run(bias, DEFAULT_PATH_BIAS_MIN_CIRCUITS - 1, () => true),
      [],
    );
    assert.equal(bias.verdict(G), 'ok');
    assert.equal(bias.suspect(G), false);
    assert.deepEqual(
      run(bias, 1, () => true),
      ['drop'],
    );
    assert.equal(bias.dropped, 1);
  });

  it('notes, warns about and drops a guard as its success rate falls under 70%, 50% and 30%', () => {
    const at = (failEvery: number[]) => {
      const bias = new PathBias({ minCircuits: 100 });
      run(bias, 100, (i) => failEvery.includes(i % 10));
      return bias.verdict(G);
    };
    assert.equal(at([0, 1]), 'ok'); // 80%
    assert.equal(at([0, 1, 2, 3]), 'notice'); // 60%
    assert.equal(at([0, 1, 2, 3, 4, 5]), 'warn'); // 40%
    assert.equal(at([0, 1, 2, 3, 4, 5, 6, 7]), 'drop'); // 20%
  });

  it('keeps an honest guard whose builds fail at a network’s normal rate, over thousands of builds', () => {
    const bias = new PathBias();
    // One in ten fails; later in bursts, as a relay going down would bunch them.
    assert.deepEqual(
      run(bias, 1000, (i) => i % 10 === 3),
      [],
    );
    assert.deepEqual(
      run(bias, 5000, (i) => i % 100 < 10),
      [],
    );
    assert.equal(bias.verdict(G), 'ok');
    assert.equal(bias.dropped, 0);
  });

  it('weighs recent builds most: a guard that turns hostile is caught after it has built many', () => {
    const bias = new PathBias();
    run(bias, 10_000, () => false);
    const reported = run(bias, 1000, () => true);
    assert.equal(reported.at(-1), 'drop');
    assert.equal(bias.verdict(G), 'drop');
    // And a dropped guard stays dropped, however well it builds afterwards.
    run(bias, 1000, () => false);
    assert.equal(bias.verdict(G), 'drop');
  });

  it('drops one guard when builds fail through every guard: the network fails, not the guards', () => {
    const bias = new PathBias();
    const H = 'b'.repeat(64);
    for (let i = 0; i < 40; i++) bias.record(G, false);
    assert.equal(bias.verdict(G), 'drop');
    for (let i = 0; i < 40; i++) bias.record(H, false);
    assert.equal(bias.verdict(H), 'warn', 'failing through the next guard too: warned, kept');
    assert.equal(bias.dropped, 1);
  });
});
