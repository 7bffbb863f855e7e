// Implements docs/directory-api.md "Clients: the consensus lifecycle" (protocol.md §6.3): fetch and
// verify, refresh before freshUntil, cache the last verified envelope on disk, ride out a directory
// outage until validUntil, and never go back to a lower serial.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ConsensusTrust,
  expiredConsensusTimes,
  openTrustedConsensus,
  type TrustedConsensus,
} from '../core/consensus-trust.js';
import { DEFAULT_CONSENSUS_SKEW_MS, type OpenConsensusOptions } from '../core/documents.js';
import { randomFraction } from '../crypto/random.js';
import { type AlliumCode, AlliumError, ErrorCode } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { writeFileAtomic } from '../storage/atomic-file.js';
import type { ConsensusView } from '../wire/directory-docs.js';

/** Where a client keeps the last consensus it verified, inside its data directory. */
export const CONSENSUS_CACHE_FILE = 'cached-consensus.json';

/** What the keeper fetches from: DirectoryClient and ConsensusSources have this shape. */
export interface ConsensusSource {
  readonly url: string;
  /** Names the source in messages (default: "the directory at URL"). */
  readonly description?: string;
  fetchConsensus(opts: OpenConsensusOptions): Promise<TrustedConsensus>;
}

/** No usable consensus (none yet, or the last one expired). Code ALLIUM_CLIENT_NO_CONSENSUS. */
export class ConsensusKeeperError extends AlliumError {}

/** The codes of a consensus refused on its merits (core/documents.ts), as opposed to an outage. */
const CONSENSUS_REFUSALS: ReadonlySet<AlliumCode> = new Set([
  ErrorCode.CONSENSUS_SIGNATURE,
  ErrorCode.CONSENSUS_EXPIRED,
  ErrorCode.CONSENSUS_ROLLBACK,
  ErrorCode.CONSENSUS_INVALID,
]);

export interface ConsensusKeeperOptions {
  source: ConsensusSource;
  /** What a consensus (the cached one too) must be signed by. */
  trust?: ConsensusTrust;
  /** Shorthand for a trust of one directory: the key that signs the consensus of `source.url`. */
  directoryKey?: Buffer;
  /** Cache the last verified consensus here (created mode 0700); none when absent. */
  dataDir?: string;
  logger?: Logger;
  /** Clock tolerance on the validity window (ms), as for openConsensus; default 60 s. */
  skewMs?: number;
  /** First retry after a failed fetch (ms, doubled on each failure up to maxRetryMs). Default 1 s. */
  minRetryMs?: number;
  /** Default 60 s. */
  maxRetryMs?: number;
  /**
   * Fetch at least this often while all is well (default: only as the fresh window says). A cache
   * sets it, so that what it serves trails the authorities by at most this much.
   */
  maxRefreshMs?: number;
  now?: () => number;
  random?: () => number;
}

/** Longest wait between two fetches when all is well: a long fresh window still gets checked this often. */
const MAX_REFRESH_INTERVAL_MS = 30 * 60_000;

/**
 * How long to wait before the next fetch, holding `c` at `now`. Aims at a random point in the second
 * half of the fresh window, so a client holds a fresh consensus and many clients do not ask at once.
 * Past that point (the directory handed back the same consensus, or it came from the cache), polls
 * again after a quarter to a half of the window.
 */
export function refreshDelay(c: ConsensusView, now: number, minMs: number, random: () => number): number {
  const window = Math.max(0, c.freshUntil - c.validAfter);
  const target = c.validAfter + window * (0.5 + 0.4 * random());
  const wait = target > now ? target - now : window * (0.25 + 0.25 * random());
  return Math.round(Math.min(Math.max(wait, minMs), MAX_REFRESH_INTERVAL_MS));
}

/** Exponential backoff after `failures` failed fetches in a row, with ±25% jitter. */
export function retryDelay(failures: number, minMs: number, maxMs: number, random: () => number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.round(base * (0.75 + 0.5 * random()));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function describe(err: unknown): string {
  if (err instanceof AlliumError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export class ConsensusKeeper {
  private readonly source: ConsensusSource;
  private readonly trust: ConsensusTrust;
  private readonly cachePath: string | null;
  private readonly log: Logger;
  private readonly skewMs: number;
  private readonly minRetryMs: number;
  private readonly maxRetryMs: number;
  private readonly maxRefreshMs: number;
  private readonly clock: () => number;
  private readonly random: () => number;
  /** The newest consensus verified, even once it has expired (the error message names it). */
  private held: ConsensusView | null = null;
  /** Serials below this are a rollback: the highest serial ever verified, cache included. */
  private floor: number | undefined;
  private inFlight: Promise<ConsensusView> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private expiryReported = false;
  private stopped = false;
  /** Between start() and stop(): refreshing in the background, where a refusal is only logged. */
  private running = false;
  /** Why the last fetch failed; null after a success. */
  lastError: Error | null = null;
  /** Time of the last successful fetch (ms), 0 if none. */
  lastFetchAt = 0;
  /** The signed document of the newest consensus held, as checked (a cache serves it as is). */
  document: TrustedConsensus['document'] | null = null;

  constructor(opts: ConsensusKeeperOptions) {
    this.source = opts.source;
    const trust =
      opts.trust ??
      (opts.directoryKey
        ? ({ kind: 'directory', url: opts.source.url, key: opts.directoryKey } as const)
        : null);
    if (!trust) {
      throw new ConsensusKeeperError(
        'ALLIUM_DIRECTORY_NO_KEY',
        'no directory key or authority set is configured: a consensus cannot be verified without one',
      );
    }
    this.trust = trust;
    this.cachePath = opts.dataDir ? join(opts.dataDir, CONSENSUS_CACHE_FILE) : null;
    this.log = opts.logger ?? silentLogger;
    this.skewMs = opts.skewMs ?? DEFAULT_CONSENSUS_SKEW_MS;
    this.minRetryMs = opts.minRetryMs ?? 1000;
    this.maxRetryMs = opts.maxRetryMs ?? 60_000;
    this.maxRefreshMs = opts.maxRefreshMs ?? Number.POSITIVE_INFINITY;
    this.clock = opts.now ?? Date.now;
    this.random = opts.random ?? randomFraction;
  }

  /** The consensus to build circuits from: the newest verified one while it is valid, else null. */
  get current(): ConsensusView | null {
    const c = this.held;
    if (!c) return null;
    const now = this.clock();
    return now - this.skewMs <= c.validUntil && now + this.skewMs >= c.validAfter ? c : null;
  }

  /** The highest serial verified so far (what a newer consensus must not go below). */
  get minSerial(): number | undefined {
    return this.floor;
  }

  /**
   * Loads the cached consensus, verified like a fetched one (signature with the configured key,
   * validity window). A missing, damaged or foreign cache is ignored with a warning; an expired one
   * is not used, but its serial still counts against rollback.
   */
  async load(): Promise<ConsensusView | null> {
    const path = this.cachePath;
    if (!path) return null;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn({ path, err: (err as Error).message }, 'cannot read the cached consensus: ignoring it');
      return null;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.log.warn({ path }, 'the cached consensus is not JSON: ignoring it (the next fetch replaces it)');
      return null;
    }
    const now = this.clock();
    try {
      const { consensus: c, document } = openTrustedConsensus(json, this.trust, {
        now,
        skewMs: this.skewMs,
        minSerial: this.floor,
      });
      this.adopt(c);
      this.document = document;
      this.log.info(
        { serial: c.serial, relays: c.relays.length, validUntil: iso(c.validUntil) },
        'loaded the cached consensus',
      );
      return c;
    } catch (err) {
      const code = (err as AlliumError).code;
      if (code === ErrorCode.CONSENSUS_EXPIRED) {
        // The signatures are checked before the times, so this body is the directory's.
        const c = expiredConsensusTimes(json, this.trust);
        if (c.validUntil < now) {
          this.floor = Math.max(this.floor ?? 0, c.serial);
          this.log.info(
            { serial: c.serial, validUntil: iso(c.validUntil) },
            'the cached consensus has expired: fetching a new one',
          );
          return null;
        }
      }
      this.log.warn({ path, err: describe(err) }, 'the cached consensus does not verify: ignoring it');
      return null;
    }
  }

  /**
   * Fetches and verifies the consensus (rollback checked against the highest serial held), caches
   * it, and returns it. On failure keeps what it holds and throws.
   */
  refresh(): Promise<ConsensusView> {
    if (!this.inFlight) {
      this.inFlight = this.fetchOnce().finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  private async fetchOnce(): Promise<ConsensusView> {
    let got: TrustedConsensus;
    try {
      got = await this.source.fetchConsensus({
        minSerial: this.floor,
        now: this.clock(),
        skewMs: this.skewMs,
      });
    } catch (err) {
      const firstFailure = this.lastError === null;
      this.lastError = err as Error;
      const usable = this.current;
      // A document refused on its merits is worth a line every time; an outage, once when it starts.
      // Before start() with nothing held, the caller reports the error itself: said once, not twice.
      if (CONSENSUS_REFUSALS.has((err as AlliumError).code) && (this.running || usable)) {
        this.log.warn(
          { err: describe(err), directory: this.source.url, heldSerial: this.floor },
          "refused the directory's consensus",
        );
      } else if (firstFailure && usable) {
        this.log.warn(
          { err: describe(err), serial: usable.serial, validUntil: iso(usable.validUntil) },
          'cannot refresh the consensus: using the one held until it expires',
        );
      }
      throw err;
    }
    const { consensus, document } = got;
    // Another fetch may have won meanwhile; a lower serial now would still be a rollback.
    if (this.floor !== undefined && consensus.serial < this.floor) return this.held ?? consensus;
    const isNew = this.held?.serial !== consensus.serial;
    this.adopt(consensus);
    this.lastError = null;
    this.lastFetchAt = this.clock();
    if (isNew) {
      this.log.debug({ serial: consensus.serial, relays: consensus.relays.length }, 'new consensus');
      this.document = document;
      await this.save(document);
    }
    return consensus;
  }

  private adopt(c: ConsensusView): void {
    this.held = c;
    this.floor = Math.max(this.floor ?? 0, c.serial);
    this.expiryReported = false;
  }

  private async save(doc: TrustedConsensus['document']): Promise<void> {
    const path = this.cachePath;
    if (!path) return;
    try {
      await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
      await writeFileAtomic(path, `${JSON.stringify(doc)}\n`, 0o600);
    } catch (err) {
      // The cache only helps the next start: a full disk must not stop this one.
      this.log.warn({ path, err: (err as Error).message }, 'cannot cache the consensus');
    }
  }

  /** Refreshes in the background until stop(): before freshUntil when all is well, with backoff when not. */
  start(): void {
    this.stopped = false;
    this.running = true;
    this.schedule(this.held ? this.nextRefresh(this.held) : 0);
  }

  stop(): void {
    this.stopped = true;
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private nextRefresh(c: ConsensusView): number {
    return Math.min(this.maxRefreshMs, refreshDelay(c, this.clock(), this.minRetryMs, this.random));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      const c = await this.refresh();
      this.failures = 0;
      this.schedule(this.nextRefresh(c));
    } catch (err) {
      this.failures++;
      this.log.debug({ err: describe(err), failures: this.failures }, 'consensus refresh failed');
      if (!this.current && !this.expiryReported) {
        this.expiryReported = true;
        this.log.error({ err: describe(err) }, this.noConsensusError().message);
      }
      this.schedule(retryDelay(this.failures, this.minRetryMs, this.maxRetryMs, this.random));
    }
  }

  private get sourceName(): string {
    return this.source.description ?? `the directory at ${this.source.url}`;
  }

  /** The error to raise when a circuit is wanted and current is null: says why and what to check. */
  noConsensusError(): ConsensusKeeperError {
    const why = this.lastError ? ` (last attempt: ${this.lastError.message})` : '';
    if (this.held) {
      return new ConsensusKeeperError(
        'ALLIUM_CLIENT_NO_CONSENSUS',
        `the consensus (serial ${this.held.serial}) expired at ${iso(this.held.validUntil)} and ` +
          `${this.sourceName} ${this.trust.kind === 'authorities' ? 'have' : 'has'} not given a newer one${why}: no new circuits until a newer one comes`,
      );
    }
    return new ConsensusKeeperError(
      'ALLIUM_CLIENT_NO_CONSENSUS',
      `no consensus yet from ${this.sourceName}${why}`,
    );
  }
}
