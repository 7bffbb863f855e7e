// A client and its consensus (docs/directory.md): waiting at start until one lists enough relays and
// an exit (saying what it waits for), and asking for a fresh one when a listed relay fails us.

import { type AlliumCode, ErrorCode } from '../error-codes.js';
import type { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import { ClientError } from './client-error.js';
import type { ConsensusKeeper } from './consensus-keeper.js';

/** Refusals that waiting does not cure: a consensus forged, stale or older than one already seen. */
const FINAL_REFUSALS: ReadonlySet<string> = new Set<AlliumCode>([
  ErrorCode.CONSENSUS_SIGNATURE,
  ErrorCode.CONSENSUS_EXPIRED,
  ErrorCode.CONSENSUS_ROLLBACK,
]);

/** Least time between two consensus fetches caused by failures (a failing relay cannot make the client hammer the directory). */
const FAILURE_REFRESH_MIN_MS = 5000;

/**
 * Fetches the consensus until it lists `minRelays` relays, one of them an exit, for up to `timeoutMs`
 * (a cached consensus serves through a directory outage). A forged, expired or rolled-back one fails
 * at once when there is no cached one to fall back on.
 */
export async function waitForConsensus(
  keeper: ConsensusKeeper,
  log: Logger,
  minRelays: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: Error | null = null;
  let toldWaiting = false;
  for (;;) {
    try {
      await keeper.refresh();
      lastErr = null;
    } catch (err) {
      lastErr = err as Error;
      // A forged, stale or rolled-back consensus will not fix itself by waiting; without a cached
      // consensus to fall back on, say so now.
      const code = (err as AlliumError).code ?? '';
      if (!keeper.current && FINAL_REFUSALS.has(code)) throw err;
      // Say at once what is being waited for, not only when the wait is over.
      if (!keeper.current && !toldWaiting) {
        toldWaiting = true;
        log.warn({ code }, `${(err as Error).message}; retrying for up to ${Math.round(timeoutMs / 1000)} s`);
      }
    }
    // Through a directory outage the cached consensus serves.
    const c = keeper.current;
    if (c) {
      const running = c.relays.length;
      if (running >= minRelays && c.relays.some((r) => r.flags.includes('Exit'))) return;
      const exits = c.relays.filter((r) => r.flags.includes('Exit')).length;
      lastErr ??= new ClientError(
        'ALLIUM_CLIENT_TOO_FEW_RELAYS',
        `gave up after ${Math.round(timeoutMs / 1000)} s: the consensus lists ${running} relays (${exits} exits), and a circuit of ${minRelays} needs ${minRelays} relays, one of them an exit: start more relays (one with --exit), or ask for shorter circuits (--path-length, at least 3)`,
      );
      if (!toldWaiting) {
        toldWaiting = true;
        log.warn(
          { running, exits },
          `the consensus lists ${running} relays (${exits} exits); waiting up to ${Math.round(timeoutMs / 1000)} s for ${minRelays} relays and an exit`,
        );
      }
    }
    if (Date.now() > deadline) throw lastErr;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Fetches the consensus after a listed relay failed us: now, or, if one such fetch ran in the last
 * few seconds, once that time is up (one pending fetch at most).
 */
export class FailureRefresh {
  private last = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly keeper: ConsensusKeeper) {}

  request(): void {
    if (this.timer || this.stopped) return;
    const wait = this.last + FAILURE_REFRESH_MIN_MS - Date.now();
    const run = () => {
      this.timer = null;
      this.last = Date.now();
      if (!this.stopped) this.keeper.refresh().catch(() => {});
    };
    if (wait <= 0) {
      run();
      return;
    }
    this.timer = setTimeout(run, wait);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
