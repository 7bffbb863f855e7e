// Which relays a client's next circuit goes through (docs/protocol.md §3; docs/architecture.md "The
// life of a request", step 2): its entry guards (kept with each consensus and saved), relays that
// just failed it left out for a while, and path-bias accounting per guard (a guard whose circuits
// fail far more often than a network's is reported, then replaced).

import { choosePath, PathError } from '../core/path-selection.js';
import { randomFraction } from '../crypto/random.js';
import type { Logger } from '../log.js';
import type { ConsensusView as Consensus, ConsensusRelay } from '../wire/directory-docs.js';
import {
  dropGuard,
  emptyGuards,
  type GuardState,
  guardIds,
  loadGuards,
  saveGuards,
  updateGuards,
} from './guards.js';
import { type GuardBias, PathBias, type PathBiasOptions } from './path-bias.js';

const RELAY_FAILURE_BACKOFF_MS = 60_000;

export interface PathChoiceOptions {
  /** Relays per circuit. */
  pathLength: number;
  /** Where the entry guards are kept (none: in memory only). */
  dataDir?: string;
  pathBias?: PathBiasOptions;
  log: Logger;
  /** Guard `id` was dropped for path bias: its circuits take no new streams. */
  onGuardDropped(id: string): void;
}

export class PathChoice {
  private guards: GuardState = emptyGuards();
  private guardsSerial = -1;
  private readonly failedUntil = new Map<string, number>();
  /** Per entry guard: builds that got past it, and how many completed. */
  private readonly pathBias: PathBias;

  constructor(private readonly opts: PathChoiceOptions) {
    this.pathBias = new PathBias(opts.pathBias);
  }

  /** Loads the entry guards kept in the data directory. */
  async load(): Promise<void> {
    if (this.opts.dataDir) this.guards = await loadGuards(this.opts.dataDir);
  }

  /** A path that avoids relays that just failed, unless that leaves no usable guard or exit at all. */
  choose(
    consensus: Consensus,
    opts: {
      target?: { host: string; port: number };
      exclude?: Set<string>;
      lastHop?: ConsensusRelay;
      length?: number;
    },
  ): ConsensusRelay[] {
    const base = {
      length: opts.length ?? this.opts.pathLength,
      target: opts.target,
      lastHop: opts.lastHop,
      guards: this.currentGuards(consensus),
      random: randomFraction,
    };
    const excluded = this.excluded(opts.exclude);
    try {
      return choosePath(consensus.relays, { ...base, exclude: excluded });
    } catch (err) {
      if (!(err instanceof PathError) || this.failedUntil.size === 0) throw err;
    }
    // Avoiding every suspect leaves no path. Exits are few: a silent path's exit is only a suspect
    // beside its middle, so let exits back in first and keep avoiding the rest (with one exit left,
    // dropping every exclusion would send half the retries through the silent middle again).
    const exits = new Set(consensus.relays.filter((r) => r.flags.includes('Exit')).map((r) => r.id));
    const nonExits = new Set([...excluded].filter((id) => !exits.has(id) || opts.exclude?.has(id)));
    try {
      return choosePath(consensus.relays, { ...base, exclude: nonExits });
    } catch (err) {
      if (!(err instanceof PathError)) throw err;
      return choosePath(consensus.relays, { ...base, exclude: opts.exclude });
    }
  }

  /** Relays that just failed us are left out of new paths for a minute (they may be down or cut off). */
  markFailed(relayId: string): void {
    this.failedUntil.set(relayId, Date.now() + RELAY_FAILURE_BACKOFF_MS);
  }

  /** The relays to leave out of a path now: those that just failed, and `extra`. */
  excluded(extra?: Set<string>): Set<string> {
    const now = Date.now();
    const out = new Set(extra ?? []);
    for (const [id, until] of this.failedUntil) {
      if (until > now) out.add(id);
      else this.failedUntil.delete(id);
    }
    return out;
  }

  /** Whether guard `id` is under suspicion of path bias (its word on other relays' failures is not taken). */
  suspect(id: string): boolean {
    return this.pathBias.suspect(id);
  }

  /**
   * Counts a build through guard `entry` that got past it. A guard whose builds fail far more often
   * than a network's do is reported, and past the drop threshold replaced (and not chosen again).
   */
  notePathBias(entry: ConsensusRelay, built: boolean): void {
    const { log } = this.opts;
    const verdict = this.pathBias.record(entry.id, built);
    if (verdict === null) return;
    const bias = this.pathBias.guards().find((g) => g.guard === entry.id);
    const fields = {
      guard: entry.nickname,
      id: entry.id,
      attempts: bias?.attempts,
      successes: bias?.successes,
    };
    if (verdict === 'ok' || verdict === 'notice') {
      log.info(
        fields,
        `entry guard ${entry.nickname}: circuit build success rate ${verdict === 'ok' ? 'back to normal' : 'low'}`,
      );
      return;
    }
    if (verdict === 'warn') {
      log.warn(fields, `entry guard ${entry.nickname}: most circuits through it fail (path bias)`);
      return;
    }
    log.warn(
      fields,
      `entry guard ${entry.nickname} dropped: it fails far more circuits than a network does (path bias)`,
    );
    this.guards = dropGuard(this.guards, entry.id);
    this.guardsSerial = -1; // choose a replacement with the next path
    this.opts.onGuardDropped(entry.id);
    this.save(this.guards);
  }

  /** Every entry guard's path-bias counts (builds that got past it, and completed). */
  pathBiasGuards(): GuardBias[] {
    return this.pathBias.guards();
  }

  /** Guards dropped for path bias so far. */
  get guardsDropped(): number {
    return this.pathBias.dropped;
  }

  /** Entry guards, brought up to date with each new consensus and saved in the data directory. */
  currentGuards(consensus: Consensus): string[] {
    if (consensus.serial !== this.guardsSerial) {
      const { state, changed } = updateGuards(this.guards, consensus.relays);
      this.guards = state;
      this.guardsSerial = consensus.serial;
      if (changed) this.save(state);
    }
    return guardIds(this.guards);
  }

  private save(state: GuardState): void {
    if (!this.opts.dataDir) return;
    saveGuards(this.opts.dataDir, state).catch((err) =>
      this.opts.log.warn({ err: err.message }, 'could not save entry guards'),
    );
  }
}
