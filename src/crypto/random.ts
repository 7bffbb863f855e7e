// Random numbers for ids: circuit ids and stream ids need not be secret, but unpredictable ids cost nothing.
import { randomInt } from 'node:crypto';

/** A uniformly random integer in [min, max). */
export function randomIntBetween(min: number, max: number): number {
  return randomInt(min, max);
}
