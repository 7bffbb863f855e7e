// The client role: keeps a verified consensus, builds circuits through the network, and opens streams
// on them. Different isolation keys (e.g. SOCKS credentials) never share a circuit. Its parts:
//   path-choice.ts    entry guards, path bias, relays that just failed: which relays a circuit takes
//   entry-links.ts    the links to entry relays and the circuits on each
//   circuit-pool.ts   the open circuits by isolation key, spares, retiring unused ones
//   client-circuit.ts one circuit (its build and receive path are core/circuit-build.ts and
//                     core/circuit-receive.ts)
//   client-options.ts what a client is started with, and whom it trusts for the consensus

import { cacheUrlsOf } from '../core/consensus-caches.js';
import { PathError } from '../core/path-selection.js';
import { DEFAULT_RECEIVE_BUDGET_CELLS, ReceiveBudgets } from '../core/receive-budget.js';
import { type CircuitStream, StreamError } from '../core/stream-mux.js';
import type { AlliumError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { ConsensusSources } from '../net/consensus-sources.js';
import type { Link } from '../net/link.js';
import { MIN_LARGE_WINDOW_VERSION, MIN_LINK_BOUND_VERSION, versionAtLeast } from '../version.js';
import { DestroyReason, EndReason } from '../wire/constants.js';
import type { ConsensusView as Consensus, ConsensusRelay } from '../wire/directory-docs.js';
import { CircuitPool } from './circuit-pool.js';
import { CircuitError, ClientCircuit } from './client-circuit.js';
import { ClientError } from './client-error.js';
import { type ClientOptions, type ConnectOptions, clientTrust } from './client-options.js';
import { ConsensusKeeper } from './consensus-keeper.js';
import { FailureRefresh, waitForConsensus } from './consensus-wait.js';
import { EntryLinks } from './entry-links.js';
import { OnionCircuit } from './onion-circuit.js';
import { isOnionHost, OnionConnector } from './onion-connect.js';
import type { GuardBias } from './path-bias.js';
import { PathChoice } from './path-choice.js';

export { ClientError } from './client-error.js';

/** Onion service circuits are 3 hops whatever the client's path length (protocol §8). */
export const ONION_PATH_LENGTH = 3;
export type { ClientOptions, ConnectOptions } from './client-options.js';

export class AlliumClient {
  private readonly keeper: ConsensusKeeper;
  /** A fresh consensus after a listed relay failed us, at most every few seconds. */
  private readonly failureRefresh: FailureRefresh;
  /** Where the consensus comes from: caches first, then the authorities or the directory. */
  readonly sources: ConsensusSources;
  private readonly entries = new EntryLinks();
  private readonly pool: CircuitPool;
  private readonly paths: PathChoice;
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
  /** Streams to onion services: descriptors, rendezvous, joined circuits (protocol §8). */
  readonly onion: OnionConnector;

  private constructor(private readonly opts: ClientOptions) {
    this.budgets = new ReceiveBudgets(opts.receiveBudgetCells ?? DEFAULT_RECEIVE_BUDGET_CELLS);
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
      skewMs: opts.consensusSkewMs,
    });
    this.failureRefresh = new FailureRefresh(this.keeper);
    this.pathLength = opts.pathLength ?? 3;
    if (this.pathLength < 3 && !opts.allowShortPaths) {
      throw new ClientError(
        'ALLIUM_CLIENT_PATH_LENGTH',
        'circuits need at least 3 relays (--path-length >= 3)',
      );
    }
    this.paths = new PathChoice({
      pathLength: this.pathLength,
      dataDir: opts.dataDir,
      pathBias: opts.pathBias,
      log: this.log,
      onGuardDropped: (id) => this.pool.retireGuard(id),
    });
    this.onion = new OnionConnector(this, this.log, { connectTimeoutMs: opts.onionConnectTimeoutMs });
    this.pool = new CircuitPool({
      pathLength: this.pathLength,
      circuitLifetimeMs: opts.circuitLifetimeMs,
      circuitIdleMs: opts.circuitIdleMs,
      spareCircuits: opts.spareCircuits,
      build: (o) => this.buildCircuit(o),
      avoid: () => this.paths.excluded(),
      closed: () => this.closedFlag,
      log: this.log,
    });
  }

  /** Fetches and verifies the consensus (waiting for `minRelays` relays), then is ready to connect. */
  static async start(opts: ClientOptions): Promise<AlliumClient> {
    const c = new AlliumClient(opts);
    await c.paths.load();
    await c.keeper.load();
    await waitForConsensus(c.keeper, c.log, opts.minRelays ?? c.pathLength, opts.startTimeoutMs ?? 30_000);
    c.keeper.start();
    c.pool.refillSpares();
    c.pool.startRetiring();
    return c;
  }

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
    return [...this.pool.circuits];
  }

  /** The open circuits (read by tests that look inside a client). */
  private get circuits(): Set<ClientCircuit> {
    return this.pool.circuits;
  }

  /** The links to entry relays by relay id (read by tests that look inside a client). */
  private get links(): Map<string, Promise<Link>> {
    return this.entries.links;
  }

  /**
   * The largest receive budget among the entry links now, in cells (§5.1): the least budget, more
   * where a link's round trip is long.
   */
  receiveBudgetCells(): number {
    let most = this.budgets.totalCells;
    for (const link of this.entries.open()) most = Math.max(most, this.budgets.of(link).currentCells);
    return most;
  }

  /**
   * The largest windows named by the open circuits, in cells (§5): a circuit SENDME's, and a stream's
   * grown as its application read. Past 1024 only with exits that take large windows, on long round trips.
   */
  largestWindowsCells(): { circuit: number; stream: number } {
    const most = { circuit: 0, stream: 0 };
    for (const c of this.pool.circuits) {
      const w = c.largestWindows;
      most.circuit = Math.max(most.circuit, w.circuit);
      most.stream = Math.max(most.stream, w.stream);
    }
    return most;
  }

  // ---- circuits ----

  /** Builds a fresh circuit (optionally one whose exit may allow `target`). */
  async buildCircuit(
    opts: {
      isolation?: string;
      target?: { host: string; port: number };
      exclude?: Set<string>;
      path?: ConsensusRelay[];
      /** Ends at this relay instead of an exit, as an onion service circuit (§8) of ONION_PATH_LENGTH. */
      lastHop?: ConsensusRelay;
    } = {},
  ): Promise<ClientCircuit> {
    if (this.closedFlag) throw new ClientError('ALLIUM_CLIENT_CLOSED', 'the client is closed');
    const consensus = this.consensus;
    if (!consensus) throw this.keeper.noConsensusError();
    let path: ConsensusRelay[];
    try {
      path =
        opts.path ??
        this.paths.choose(consensus, opts.lastHop ? { ...opts, length: ONION_PATH_LENGTH } : opts);
    } catch (err) {
      // A relay may have become an exit since: ask the directory now rather than at the next refresh.
      this.failureRefresh.request();
      throw err;
    }
    const started = performance.now();
    const entry = path[0];
    let link: Link;
    try {
      link = await this.entries.linkTo(entry.id, entry.address, entry.port);
    } catch (err) {
      this.stats.circuitsFailed++;
      this.paths.markFailed(entry.id);
      // The relay may have moved or gone: a fresh consensus says so before the next circuit.
      this.failureRefresh.request();
      throw new CircuitError(
        'ALLIUM_CIRCUIT_ENTRY',
        `cannot reach entry relay ${entry.nickname} at ${entry.address}:${entry.port}: ${(err as Error).message}`,
      );
    }
    const Circuit = opts.lastHop ? OnionCircuit : ClientCircuit;
    const circ = this.entries.add(
      link,
      (circId) =>
        new Circuit(
          link,
          circId,
          (c) => {
            this.entries.forget(c);
            this.pool.circuits.delete(c);
            this.log.debug({ circuit: c.serial, why: c.closeReason }, 'circuit closed');
          },
          this.budgets.of(link),
        ),
    );
    circ.isolation = opts.isolation ?? '';
    this.pool.circuits.add(circ);
    const linkBound =
      this.opts.linkBoundFirstHop !== false &&
      versionAtLeast(entry.version, MIN_LINK_BOUND_VERSION) &&
      this.entries.takeLinkBound(link);
    try {
      await circ.build(path, {
        linkBound,
        largeWindows: versionAtLeast(path[path.length - 1].version, MIN_LARGE_WINDOW_VERSION),
      });
    } catch (err) {
      this.stats.circuitsFailed++;
      const failedAt = circ.confirmedHops;
      if (!opts.path && failedAt > 0 && !this.closedFlag) this.paths.notePathBias(entry, false);
      // The relay we were adding when it failed is the one to avoid for a while; but not on the word of
      // a guard whose circuits fail too often: avoiding the relays it fails to reach is its steering.
      if (!opts.path && failedAt < path.length && (failedAt === 0 || !this.paths.suspect(entry.id))) {
        this.paths.markFailed(path[failedAt].id);
      }
      circ.destroy(DestroyReason.REQUESTED, 'build failed');
      throw err;
    }
    if (!opts.path) this.paths.notePathBias(entry, true);
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

  /**
   * A 3-hop circuit whose last hop is `last` (an introduction point, rendezvous point or store, §8),
   * entering through a guard; `exclude`: relays not to take as entry or middle.
   */
  async buildOnionCircuit(
    last: ConsensusRelay,
    opts: { isolation?: string; exclude?: Set<string> } = {},
  ): Promise<OnionCircuit> {
    return (await this.buildCircuit({ ...opts, lastHop: last })) as OnionCircuit;
  }

  /** Relays that just failed a circuit of ours (ids): left out of new paths, and of onion roles, for a while. */
  recentlyFailed(): Set<string> {
    return this.paths.excluded();
  }

  /** The entry guards of paths now (relay ids): an onion service's own roles avoid them. */
  guardIds(): Set<string> {
    const consensus = this.consensus;
    return new Set(consensus ? this.currentGuards(consensus) : []);
  }

  /** Entry guards, brought up to date with each new consensus (path-choice.ts). */
  private currentGuards(consensus: Consensus): string[] {
    return this.paths.currentGuards(consensus);
  }

  /** Every entry guard's path-bias counts (builds that got past it, and completed), for metrics and the dashboard. */
  pathBiasGuards(): GuardBias[] {
    return this.paths.pathBiasGuards();
  }

  /** Guards dropped for path bias since the client started. */
  get guardsDropped(): number {
    return this.paths.guardsDropped;
  }

  /**
   * Opens a stream to host:port through the network. Tries up to 3 circuits when a circuit (not the
   * exit's answer) failed.
   */
  async connect(host: string, port: number, opts: ConnectOptions = {}): Promise<CircuitStream> {
    if (isOnionHost(host)) return this.connectOnion(host, port, opts);
    const isolation = opts.isolation ?? '';
    const target = { host, port };
    let lastErr: Error | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      let circ: ClientCircuit;
      try {
        circ = await this.pool.circuitFor(isolation, target, attempt > 0);
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

  /** A stream to an onion service (protocol §8): no exit, no DNS; the service is the far end. */
  private async connectOnion(host: string, port: number, opts: ConnectOptions): Promise<CircuitStream> {
    if (this.closedFlag) throw new ClientError('ALLIUM_CLIENT_CLOSED', 'the client is closed');
    try {
      const s = await this.onion.connect(host, port, opts);
      this.stats.streamsOpened++;
      return s;
    } catch (err) {
      this.stats.streamsFailed++;
      throw err;
    }
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
    if (guard !== undefined && this.paths.suspect(guard)) return;
    if (silent || err instanceof CircuitError || code === 'ALLIUM_CIRCUIT_DESTROYED') {
      for (const hop of circ.hops.slice(1)) this.paths.markFailed(hop.relay.id);
    }
  }

  /** Marks every circuit as used up, so the next streams get new ones. */
  newCircuits(): void {
    this.pool.newCircuits();
  }

  async close(): Promise<void> {
    this.closedFlag = true;
    this.keeper.stop();
    this.failureRefresh.stop();
    this.pool.close();
    this.entries.closeAll();
  }
}
