// Waiting in tests: every wait is for a condition, bounded in time, and says what it waited for when
// the condition never came. A fixed sleep stands only where nothing can be observed instead.

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** How often to look (default 20 ms). */
  everyMs?: number;
}

/**
 * Resolves with the first value of `check` that is not false, null or undefined; rejects with
 * `what` once `timeoutMs` passed without one. `check` may be async (a scrape, a file read).
 */
export async function waitFor<T>(
  what: string,
  check: () => T | false | null | undefined | Promise<T | false | null | undefined>,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const everyMs = opts.everyMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== false && v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves after `ms`. For pacing a load or letting a period pass, never for waiting on a state. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
