// The client role: keeps a verified consensus, builds circuits through the network, and opens streams
// on them. Different isolation keys (e.g. SOCKS credentials) never share a circuit.

import { cacheUrlsOf } from '../core/consensus-caches.js';
import type { ConsensusTrust } from '../core/consensus-trust.js';
import { choosePath, exitMayAllow, PathError } from '../core/path-selection.js';
import { DEFAULT_RECEIVE_BUDGET_CELLS, ReceiveBudgets } from '../core/receive-budget.js';
import { type CircuitStream, StreamError } from '../core/stream-mux.js';
import { randomFraction, randomIntBetween } from '../crypto/random.js';
import { AlliumError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { ConsensusSources } from '../net/consensus-sources.js';
import { connectLink, type Link } from '../net/link.js';
import { MIN_LARGE_WINDOW_VERSION, MIN_LINK_BOUND_VERSION, versionAtLeast } from '../version.js';
import type { AuthoritySet } from '../wire/authority-docs.js';
import {
  CIRC_ID_INITIATOR_BIT,
  DestroyReason,
  EndReason,
  MAX_LINK_BOUND_CREATES_PER_LINK,
} from '../wire/constants.js';
import type { ConsensusView as Consensus, ConsensusRelay } from '../wire/directory-docs.js';
import { CircuitError, ClientCircuit } from './client-circuit.js';
import { ConsensusKeeper } from './consensus-keeper.js';
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
/** The isolation key of circuits built ahead of need; no caller can pass it (it starts with a NUL). */
const SPARE = '\u0000spare';

export interface ClientOptions {
  /** A single directory: its URL and key. Or, instead, `authorities`. */
  directoryUrl?: string;
  directoryKey?: Buffer;
  /** The authority set: a consensus counts only when a strict majority of it signed it (§6.10). */
  authorities?: AuthoritySet;
  /** Caches (URLs) to ask for the consensus besides those the consensus lists (§6.11). */
  caches?: string[];
  /** Relays per circuit, at least 3 unless `allowShortPaths` (tests). */
  pathLength?: number;
  /**
   * The entry's keys from the link's own handshake, so the first EXTEND follows the CREATE at once
   * (protocol §3.6; entries whose release takes it). Default true; false runs ntor with the entry too.
   */
  linkBoundFirstHop?: boolean;
  allowShortPaths?: boolean;
  /**
   * A circuit takes new streams for this long after it was built (Tor: 10 minutes); once past it
   * and without a stream, it is closed.
   */
  circuitLifetimeMs?: number;
  /** A circuit that carried no stream for this long is closed (default 1 minute); spares are kept. */
  circuitIdleMs?: number;
  /** Consensus wait at start: keep asking until it lists this many relays. */
  minRelays?: number;
  startTimeoutMs?: number;
  /**
   * Circuits built ahead of need (default 2), so a stream with a new isolation key does not wait for
   * a build. A spare is never used before it is handed to one isolation key.
   */
  spareCircuits?: number;
  /** Caches the last verified consensus here, so a restart rides out a directory outage. */
  dataDir?: string;
  /**
   * DATA cells in flight toward this client per entry link, shared by its circuits (protocol §5.1;
   * default 512, 2 MiB): more lets one download run faster on a long path, less keeps queues short.
   */
  receiveBudgetCells?: number;
  /** Thresholds of path-bias accounting per entry guard (src/client/path-bias.ts; defaults after Tor's). */
  pathBias?: PathBiasOptions;
  logger?: Logger;
}

export interface ConnectOptions {
  /** Streams with different isolation keys never share a circuit. */
  isolation?: string;
  /**
   * Resolve at once with a stream whose writes go right behind the BEGIN (one round trip saved
   * for a request known up front); the exit's answer settles `stream.connected`, and a refusal
   * fails the stream. Only the circuit choice is retried, never the stream.
   */
  optimistic?: boolean;
}

/** How long after handing out a spare circuit its replacement starts building. */
const SPARE_REFILL_DELAY_MS = 25;
const DEFAULT_CIRCUIT_LIFETIME_MS = 10 * 60_000;
const DEFAULT_CIRCUIT_IDLE_MS = 60_000;

export class ClientError extends AlliumError {}

/** What the client's consensus must be signed by: the authority set, else the one directory's key. */
function clientTrust(opts: ClientOptions): ConsensusTrust {
  if (opts.authorities) return { kind: 'authorities', set: opts.authorities };
  if (opts.directoryUrl === undefined || opts.directoryKey === undefined) {
    throw new ClientError(
      'ALLIUM_DIRECTORY_NO_KEY',
      'a client needs the authority set (--authorities FILE), or a directory URL and its key (--directory, --directory-key)',
    );
  }
  return { kind: 'directory', url: opts.directoryUrl.replace(/\/+$/, ''), key: opts.directoryKey };
}

/** Least time between two consensus fetches caused by failures (a failing relay cannot make the client hammer the directory). */
const FAILURE_REFRESH_MIN_MS = 5000;

export class AlliumClient {
  private readonly keeper: ConsensusKeeper;
  private guards: GuardState = emptyGuards();
  private guardsSerial = -1;
  private readonly failedUntil = new Map<string, number>();
  private spareBuilds = 0;
  private refillTimer: NodeJS.Timeout | null = null;
  private retireTimer: NodeJS.Timeout | null = null;
  /** Where the consensus comes from: caches first, then the authorities or the directory. */
  readonly sources: ConsensusSources;
  private readonly links = new Map<string, Promise<Link>>();
  private readonly circuitsByLink = new Map<Link, Map<number, ClientCircuit>>();
  /** Link-bound first hops built on each link so far. */
  private readonly linkBoundCreates = new WeakMap<Link, number>();
  private readonly circuits = new Set<ClientCircuit>();
  private readonly building = new Map<string, Promise<ClientCircuit>>();
  private readonly log: Logger;
  readonly pathLength: number;
  readonly stats = {
    circuitsBuilt: 0,
    circuitsFailed: 0,
    streamsOpened: 0,
    streamsFailed: 0,
    buildTimesMs: [] as number[],
  };
  private closedFlag = false;
  /** What this client lets be in flight toward it, per entry link (protocol §5.1). */
  private readonly budgets: ReceiveBudgets<Link>;
  /** Per entry guard: builds that got past it, and how many completed. */
  private readonly pathBias: PathBias;

  private constructor(private readonly opts: ClientOptions) {
    this.budgets = new ReceiveBudgets(opts.receiveBudgetCells ?? DEFAULT_RECEIVE_BUDGET_CELLS);
    this.pathBias = new PathBias(opts.pathBias);
    this.log = opts.logger ?? silentLogger;
    const trust = clientTrust(opts);
    const caches = opts.caches ?? [];
    this.sources = new ConsensusSources({
      trust,
      caches: () => [...caches, ...cacheUrlsOf(this.keeper.current)],
      logger: this.log,
    });
    this.keeper = new ConsensusKeeper({
      source: this.sources,
      trust,
      dataDir: opts.dataDir,
      logger: this.log,
    });
    this.pathLength = opts.pathLength ?? 3;
    if (this.pathLength < 3 && !opts.allowShortPaths) {
      throw new ClientError(
        'ALLIUM_CLIENT_PATH_LENGTH',
        'circuits need at least 3 relays (--path-length >= 3)',
      );
    }
  }

  /** Fetches and verifies the consensus (waiting for `minRelays` relays), then is ready to connect. */
  static async start(opts: ClientOptions): Promise<AlliumClient> {
    const c = new AlliumClient(opts);
    if (opts.dataDir) c.guards = await loadGuards(opts.dataDir);
    await c.keeper.load();
    await c.waitForConsensus(opts.minRelays ?? c.pathLength, opts.startTimeoutMs ?? 30_000);
    c.keeper.start();
    c.refillSpares();
    c.startRetiring();
    return c;
  }

  /**
   * Closes, now and then, the circuits no stream needs any more: past their lifetime, idle for
   * circuitIdleMs, or retired by newCircuits(). Each would otherwise hold its slot and memory at every
   * relay on its path until the link closed.
   */
  private startRetiring(): void {
    const lifetime = this.opts.circuitLifetimeMs ?? DEFAULT_CIRCUIT_LIFETIME_MS;
    const idle = this.opts.circuitIdleMs ?? DEFAULT_CIRCUIT_IDLE_MS;
    const every = Math.max(100, Math.min(10_000, lifetime / 2, idle / 2));
    this.retireTimer = setInterval(() => this.retireUnused(lifetime, idle), every);
    this.retireTimer.unref();
  }

  private retireUnused(lifetime: number, idle: number): void {
    const now = Date.now();
    for (const c of [...this.circuits]) {
      if (c.closed || c.isolation === SPARE || c.hops.length !== this.pathLength || c.inUse) continue;
      const retired = c.isolation.startsWith('\u0000retired-');
      if (retired || now - c.createdAt >= lifetime || now - c.lastUsed >= idle) {
        c.destroy(DestroyReason.FINISHED, 'no stream, and its lifetime is over or it was idle');
      }
    }
  }

  private async waitForConsensus(minRelays: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: Error | null = null;
    let toldWaiting = false;
    for (;;) {
      try {
        await this.refreshConsensus();
        lastErr = null;
      } catch (err) {
        lastErr = err as Error;
        // A forged, stale or rolled-back consensus will not fix itself by waiting; without a cached
        // consensus to fall back on, say so now.
        const code = (err as AlliumError).code ?? '';
        if (!this.consensus && /^ALLIUM_CONSENSUS_(SIGNATURE|EXPIRED|ROLLBACK)$/.test(code)) throw err;
        // Say at once what is being waited for, not only when the wait is over.
        if (!this.consensus && !toldWaiting) {
          toldWaiting = true;
          this.log.warn(
            { code },
            `${(err as Error).message}; retrying for up to ${Math.round(timeoutMs / 1000)} s`,
          );
        }
      }
      // Through a directory outage the cached consensus serves.
      const c = this.consensus;
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
          this.log.warn(
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
  private refreshAfterFailure(): void {
    if (this.failureRefreshTimer || this.closedFlag) return;
    const wait = this.lastFailureRefresh + FAILURE_REFRESH_MIN_MS - Date.now();
    const run = () => {
      this.failureRefreshTimer = null;
      this.lastFailureRefresh = Date.now();
      if (!this.closedFlag) this.keeper.refresh().catch(() => {});
    };
    if (wait <= 0) {
      run();
      return;
    }
    this.failureRefreshTimer = setTimeout(run, wait);
    this.failureRefreshTimer.unref();
  }
  private lastFailureRefresh = Number.NEGATIVE_INFINITY;
  private failureRefreshTimer: NodeJS.Timeout | null = null;

  async refreshConsensus(): Promise<Consensus> {
    return this.keeper.refresh();
  }

  /** The newest verified consensus while it is valid (through a directory outage too), else null. */
  private get consensus(): Consensus | null {
    return this.keeper.current;
  }

  get currentConsensus(): Consensus | null {
    return this.consensus;
  }

  listCircuits(): ClientCircuit[] {
    return [...this.circuits];
  }

  /**
   * The largest receive budget among the entry links now, in cells (§5.1): the least budget, more
   * where a link's round trip is long.
   */
  receiveBudgetCells(): number {
    let most = this.budgets.totalCells;
    for (const link of this.circuitsByLink.keys()) most = Math.max(most, this.budgets.of(link).currentCells);
    return most;
  }

  /**
   * The largest windows named by the open circuits, in cells (§5): a circuit SENDME's, and a stream's
   * grown as its application read. Past 1024 only with exits that take large windows, on long round trips.
   */
  largestWindowsCells(): { circuit: number; stream: number } {
    const most = { circuit: 0, stream: 0 };
    for (const c of this.circuits) {
      const w = c.largestWindows;
      most.circuit = Math.max(most.circuit, w.circuit);
      most.stream = Math.max(most.stream, w.stream);
    }
    return most;
  }

  // ---- links ----

  private linkTo(relayId: string, host: string, port: number): Promise<Link> {
    const existing = this.links.get(relayId);
    if (existing) return existing;
    const p = connectLink({ host, port, relayId: Buffer.from(relayId, 'hex'), me: { identity: null } }).then(
      (link) => {
        this.circuitsByLink.set(link, new Map());
        link.on({
          cells: (cells) => {
            const map = this.circuitsByLink.get(link);
            if (!map) return;
            // Hand each circuit its cells of this frame together, so it can peel them in batches.
            for (let i = 0; i < cells.length; ) {
              let j = i + 1;
              while (j < cells.length && cells[j].circId === cells[i].circId) j++;
              map.get(cells[i].circId)?.onCells(j - i === 1 ? [cells[i]] : cells.slice(i, j));
              i = j;
            }
          },
          close: () => {
            this.links.delete(relayId);
            const map = this.circuitsByLink.get(link);
            this.circuitsByLink.delete(link);
            for (const c of map?.values() ?? []) c.close(8, 'the link to the entry relay closed');
          },
        });
        return link;
      },
    );
    this.links.set(relayId, p);
    p.catch(() => this.links.delete(relayId));
    return p;
  }

  // ---- circuits ----

  /** Builds a fresh circuit (optionally one whose exit may allow `target`). */
  async buildCircuit(
    opts: {
      isolation?: string;
      target?: { host: string; port: number };
      exclude?: Set<string>;
      path?: ConsensusRelay[];
    } = {},
  ): Promise<ClientCircuit> {
    if (this.closedFlag) throw new ClientError('ALLIUM_CLIENT_CLOSED', 'the client is closed');
    const consensus = this.consensus;
    if (!consensus) throw this.keeper.noConsensusError();
    let path: ConsensusRelay[];
    try {
      path = opts.path ?? this.choosePathAvoidingFailures(consensus, opts);
    } catch (err) {
      // A relay may have become an exit since: ask the directory now rather than at the next refresh.
      this.refreshAfterFailure();
      throw err;
    }
    const started = performance.now();
    const entry = path[0];
    let link: Link;
    try {
      link = await this.linkTo(entry.id, entry.address, entry.port);
    } catch (err) {
      this.stats.circuitsFailed++;
      this.markFailed(entry.id);
      // The relay may have moved or gone: a fresh consensus says so before the next circuit.
      this.refreshAfterFailure();
      throw new CircuitError(
        'ALLIUM_CIRCUIT_ENTRY',
        `cannot reach entry relay ${entry.nickname} at ${entry.address}:${entry.port}: ${(err as Error).message}`,
      );
    }
    const map = this.circuitsByLink.get(link)!;
    let circId: number;
    do circId = (randomIntBetween(1, 0x7fffffff) | CIRC_ID_INITIATOR_BIT) >>> 0;
    while (map.has(circId));
    const circ = new ClientCircuit(
      link,
      circId,
      (c) => {
        map.delete(c.circId);
        this.circuits.delete(c);
        this.log.debug({ circuit: c.serial, why: c.closeReason }, 'circuit closed');
      },
      this.budgets.of(link),
    );
    circ.isolation = opts.isolation ?? '';
    map.set(circId, circ);
    this.circuits.add(circ);
    // Past MAX_LINK_BOUND_CREATES_PER_LINK on one link the entry refuses them (§3.6): ntor from there on.
    const linkBoundSoFar = this.linkBoundCreates.get(link) ?? 0;
    const linkBound =
      this.opts.linkBoundFirstHop !== false &&
      versionAtLeast(entry.version, MIN_LINK_BOUND_VERSION) &&
      linkBoundSoFar < MAX_LINK_BOUND_CREATES_PER_LINK;
    if (linkBound) this.linkBoundCreates.set(link, linkBoundSoFar + 1);
    try {
      await circ.build(path, {
        linkBound,
        largeWindows: versionAtLeast(path[path.length - 1].version, MIN_LARGE_WINDOW_VERSION),
      });
    } catch (err) {
      this.stats.circuitsFailed++;
      const failedAt = circ.confirmedHops;
      if (!opts.path && failedAt > 0 && !this.closedFlag) this.notePathBias(entry, false);
      // The relay we were adding when it failed is the one to avoid for a while; but not on the word of
      // a guard whose circuits fail too often: avoiding the relays it fails to reach is its steering.
      if (!opts.path && failedAt < path.length && (failedAt === 0 || !this.pathBias.suspect(entry.id))) {
        this.markFailed(path[failedAt].id);
      }
      circ.destroy(3, 'build failed');
      throw err;
    }
    if (!opts.path) this.notePathBias(entry, true);
    const ms = performance.now() - started;
    // The build's last step went to the exit and back with nothing of ours queued: the link's base
    // round trip for its receive budget (§5.1).
    const lastStep = circ.buildStepsMs[circ.buildStepsMs.length - 1];
    if (lastStep !== undefined) this.budgets.of(link).noteBaseRtt(lastStep);
    this.stats.circuitsBuilt++;
    this.stats.buildTimesMs.push(ms);
    if (this.stats.buildTimesMs.length > 1000) this.stats.buildTimesMs.shift();
    this.log.debug(
      {
        circuit: circ.serial,
        path: path.map((r) => r.nickname),
        ms: Math.round(ms * 10) / 10,
        stepsMs: circ.buildStepsMs,
      },
      'circuit built',
    );
    return circ;
  }

  /** A path that avoids relays that just failed, unless that leaves no usable guard or exit at all. */
  private choosePathAvoidingFailures(
    consensus: Consensus,
    opts: { target?: { host: string; port: number }; exclude?: Set<string> },
  ): ConsensusRelay[] {
    const base = {
      length: this.pathLength,
      target: opts.target,
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

  /**
   * Counts a build through guard `entry` that got past it. A guard whose builds fail far more often
   * than a network's do is reported, and past the drop threshold replaced (and not chosen again).
   */
  private notePathBias(entry: ConsensusRelay, built: boolean): void {
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
      this.log.info(
        fields,
        `entry guard ${entry.nickname}: circuit build success rate ${verdict === 'ok' ? 'back to normal' : 'low'}`,
      );
      return;
    }
    if (verdict === 'warn') {
      this.log.warn(fields, `entry guard ${entry.nickname}: most circuits through it fail (path bias)`);
      return;
    }
    this.log.warn(
      fields,
      `entry guard ${entry.nickname} dropped: it fails far more circuits than a network does (path bias)`,
    );
    this.guards = dropGuard(this.guards, entry.id);
    this.guardsSerial = -1; // choose a replacement with the next path
    // Its circuits take no new streams (those open run to their end); its spares go.
    for (const c of [...this.circuits]) {
      if (c.hops[0]?.relay.id !== entry.id) continue;
      if (c.isolation === SPARE) c.destroy(DestroyReason.FINISHED, 'its entry guard was dropped');
      else c.isolation = `\u0000retired-${c.serial}`;
    }
    if (this.opts.dataDir) {
      saveGuards(this.opts.dataDir, this.guards).catch((err) =>
        this.log.warn({ err: err.message }, 'could not save entry guards'),
      );
    }
  }

  /** Every entry guard's path-bias counts (builds that got past it, and completed), for metrics and the dashboard. */
  pathBiasGuards(): GuardBias[] {
    return this.pathBias.guards();
  }

  /** Guards dropped for path bias since the client started. */
  get guardsDropped(): number {
    return this.pathBias.dropped;
  }

  /** Relays that just failed us are left out of new paths for a minute (they may be down or cut off). */
  private markFailed(relayId: string): void {
    this.failedUntil.set(relayId, Date.now() + RELAY_FAILURE_BACKOFF_MS);
  }

  private excluded(extra?: Set<string>): Set<string> {
    const now = Date.now();
    const out = new Set(extra ?? []);
    for (const [id, until] of this.failedUntil) {
      if (until > now) out.add(id);
      else this.failedUntil.delete(id);
    }
    return out;
  }

  /** Entry guards, brought up to date with each new consensus and saved in the data directory. */
  private currentGuards(consensus: Consensus): string[] {
    if (consensus.serial !== this.guardsSerial) {
      const { state, changed } = updateGuards(this.guards, consensus.relays);
      this.guards = state;
      this.guardsSerial = consensus.serial;
      if (changed && this.opts.dataDir) {
        saveGuards(this.opts.dataDir, state).catch((err) =>
          this.log.warn({ err: err.message }, 'could not save entry guards'),
        );
      }
    }
    return guardIds(this.guards);
  }

  private usable(c: ClientCircuit, isolation: string, target: { host: string; port: number }): boolean {
    const lifetime = this.opts.circuitLifetimeMs ?? DEFAULT_CIRCUIT_LIFETIME_MS;
    return (
      !c.closed &&
      c.isolation === isolation &&
      c.hops.length === this.pathLength &&
      Date.now() - c.createdAt < lifetime &&
      exitMayAllow(c.exit, target)
    );
  }

  private async circuitFor(
    isolation: string,
    target: { host: string; port: number },
    fresh: boolean,
  ): Promise<ClientCircuit> {
    if (!fresh) {
      for (const c of this.circuits) if (this.usable(c, isolation, target)) return c;
      // Share a build in progress for the same isolation key rather than start a second one.
      const pending = this.building.get(isolation);
      if (pending) {
        const c = await pending.catch(() => null);
        if (c && this.usable(c, isolation, target)) return c;
      }
    }
    const spare = this.takeSpare(isolation, target);
    if (spare) return spare;
    const p = this.buildCircuit({ isolation, target });
    this.building.set(isolation, p);
    try {
      return await p;
    } finally {
      if (this.building.get(isolation) === p) this.building.delete(isolation);
    }
  }

  /** Hands a never-used spare circuit (whose exit may allow `target`) to `isolation`, and builds another. */
  private takeSpare(isolation: string, target: { host: string; port: number }): ClientCircuit | null {
    const avoid = this.excluded();
    for (const c of this.circuits) {
      if (c.isolation !== SPARE || c.closed || c.hops.length !== this.pathLength) continue;
      // Not through a relay that just failed us, and only to an exit that may take the stream.
      if (!exitMayAllow(c.exit, target) || c.hops.some((h) => avoid.has(h.relay.id))) continue;
      c.isolation = isolation;
      this.refillSparesSoon();
      return c;
    }
    this.refillSpares();
    return null;
  }

  /**
   * Replaces a spare that was just handed out, a moment later: built at once, the replacement's
   * handshakes would compete (same processes, same two cores here) with the first request on the
   * spare, which is what the spare was for (fresh-circuit TTFB).
   */
  private refillSparesSoon(): void {
    if (this.refillTimer) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.refillSpares();
    }, SPARE_REFILL_DELAY_MS);
    this.refillTimer.unref();
  }

  /** Builds spare circuits in the background up to the configured number (failures just wait for next time). */
  private refillSpares(): void {
    const want = this.opts.spareCircuits ?? 2;
    if (this.closedFlag || want <= 0) return;
    let have = this.spareBuilds;
    for (const c of this.circuits) if (c.isolation === SPARE && !c.closed) have++;
    for (; have < want; have++) {
      this.spareBuilds++;
      this.buildCircuit({ isolation: SPARE })
        .catch((err) => this.log.debug({ err: (err as Error).message }, 'building a spare circuit failed'))
        .finally(() => this.spareBuilds--);
    }
  }

  /**
   * Opens a stream to host:port through the network. Tries up to 3 circuits when a circuit (not the
   * exit's answer) failed.
   */
  async connect(host: string, port: number, opts: ConnectOptions = {}): Promise<CircuitStream> {
    const isolation = opts.isolation ?? '';
    const target = { host, port };
    let lastErr: Error | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      let circ: ClientCircuit;
      try {
        circ = await this.circuitFor(isolation, target, attempt > 0);
      } catch (err) {
        lastErr = err as Error;
        if (err instanceof PathError) break;
        continue;
      }
      try {
        const s = await circ.openStream(host, port, { optimistic: opts.optimistic });
        this.stats.streamsOpened++;
        // An optimistic stream's data is already on its way: it cannot move to another circuit,
        // but a silent or broken circuit must still be retired for the streams after it.
        if (opts.optimistic) s.connected.catch((err: Error) => this.onStreamFailure(circ, err));
        return s;
      } catch (err) {
        lastErr = err as Error;
        // The exit answered: its answer stands (retrying elsewhere would only repeat the request).
        if (err instanceof StreamError && err.code === 'ALLIUM_STREAM_REFUSED') break;
        this.onStreamFailure(circ, err as Error);
      }
    }
    this.stats.streamsFailed++;
    if (lastErr instanceof StreamError) throw lastErr;
    const reason =
      lastErr instanceof PathError && lastErr.code === 'ALLIUM_PATH_NO_EXIT'
        ? EndReason.EXITPOLICY
        : EndReason.MISC;
    throw new StreamError(
      (lastErr as AlliumError)?.code ?? 'ALLIUM_CONNECT_FAILED',
      lastErr?.message ?? 'connect failed',
      reason,
    );
  }

  /**
   * A stream got no answer, or its circuit broke under it. Silence means a relay on the path is gone:
   * retire the circuit, or every later stream would wait out the same timeout on it (test/hosts cuts a
   * middle relay). Which relay failed is unknown, so keep the guard and
   * avoid the rest of this path for a while.
   */
  private onStreamFailure(circ: ClientCircuit, err: Error): void {
    const code = (err as AlliumError).code;
    if (code === 'ALLIUM_STREAM_REFUSED') return; // the exit answered: nothing wrong with the path
    const silent = code === 'ALLIUM_STREAM_TIMEOUT';
    if (silent) circ.destroy(DestroyReason.TIMEOUT, `no answer to a stream request: ${err.message}`);
    // Not on the word of a guard under suspicion of path bias (it could be killing circuits to steer).
    const guard = circ.hops[0]?.relay.id;
    if (guard !== undefined && this.pathBias.suspect(guard)) return;
    if (silent || err instanceof CircuitError || code === 'ALLIUM_CIRCUIT_DESTROYED') {
      for (const hop of circ.hops.slice(1)) this.markFailed(hop.relay.id);
    }
  }

  /** Marks every circuit as used up, so the next streams get new ones. */
  newCircuits(): void {
    // Like Tor's NEWNYM: nothing built before the request serves a stream after it, spares included.
    for (const c of [...this.circuits]) {
      if (c.isolation === SPARE) c.destroy(DestroyReason.FINISHED, 'new circuits requested');
      else c.isolation = `\u0000retired-${c.serial}`;
    }
    this.refillSpares();
  }

  async close(): Promise<void> {
    this.closedFlag = true;
    this.keeper.stop();
    if (this.failureRefreshTimer) clearTimeout(this.failureRefreshTimer);
    if (this.refillTimer) clearTimeout(this.refillTimer);
    if (this.retireTimer) clearInterval(this.retireTimer);
    for (const c of [...this.circuits]) {
      // Closing the client is not an error for streams still open: end them quietly.
      for (const s of c.streams()) s.destroy();
      c.destroy(9, 'client closed');
    }
    for (const p of this.links.values())
      p.then(
        (l) => l.close(),
        () => {},
      );
    this.links.clear();
  }
}
