// Randomness from the CSPRNG for every choice a relay, an exit or the directory could learn from (paths,
// guards, circuit ids, timers): the engine's own generator (V8's xorshift128+) can be predicted from a few outputs.
import { randomInt } from 'node:crypto';

/** A uniformly random integer in [min, max). */
export function randomIntBetween(min: number, max: number): number {
  return randomInt(min, max);
}

// randomInt takes a range of less than 2 ** 48.
const FRACTION_STEPS = 2 ** 47;

/** A uniformly random number in [0, 1) with 47 random bits: the CSPRNG's stand-in for the engine's generator. */
export function randomFraction(): number {
  return randomInt(0, FRACTION_STEPS) / FRACTION_STEPS;
}

/** A copy of `items` in uniformly random order (Fisher-Yates on the CSPRNG). */
export function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(0, i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
