// Implements docs/protocol.md §8.8 (INTRODUCE replay refusal): the one-time keys a service has
// answered through one introduction point. It lives exactly as long as that introduction point, so
// it never forgets a key while a replay of it could still arrive; when full, the service retires
// the point (and its keys) instead of forgetting.
import { OnionError } from '../wire/onion-errors.js';

/** Introductions one introduction point takes before it is replaced (Tor rotates at 16384-32768). */
export const MAX_INTRODUCTIONS_PER_POINT = 16_384;

export class IntroReplayCache {
  private readonly seen = new Set<string>();

  constructor(private readonly capacity: number = MAX_INTRODUCTIONS_PER_POINT) {}

  get size(): number {
    return this.seen.size;
  }

  /** True once the point has taken all it may: the service should replace it. */
  get exhausted(): boolean {
    return this.seen.size >= this.capacity;
  }

  /**
   * Records the client key X of an INTRODUCE2 whose MAC verified (so forgeries never fill it).
   * Throws ALLIUM_ONION_INTRODUCE_REPLAY for an X seen before, ALLIUM_ONION_INTRO_EXHAUSTED when full.
   */
  admit(clientKey: Buffer): void {
    const key = clientKey.toString('base64');
    if (this.seen.has(key)) {
      throw new OnionError(
        'ALLIUM_ONION_INTRODUCE_REPLAY',
        'this INTRODUCE2 repeats a client key already answered',
      );
    }
    if (this.exhausted) {
      throw new OnionError(
        'ALLIUM_ONION_INTRO_EXHAUSTED',
        `this introduction point has taken its ${this.capacity} introductions`,
      );
    }
    this.seen.add(key);
  }
}
