// Implements docs/protocol.md §2-§4 for a relay: answers CREATE, extends circuits, forwards cells both
// ways, propagates DESTROY, and (as an exit) carries streams to the destination.

import type { ConsensusTrust } from '../core/consensus-trust.js';
import { ExitPolicy, isPrivateAddress } from '../core/exit-policy.js';
import { DEFAULT_RECEIVE_BUDGET_CELLS, ReceiveBudgets } from '../core/receive-budget.js';
import { StreamError, StreamMux } from '../core/stream-mux.js';
import { circuitHopCrypto, FORWARD_MARKER_LEN, type ForwardOpen } from '../crypto/forward-onion.js';
import type { IdentityKey, X25519Key } from '../crypto/keys.js';
import { linkBoundHop } from '../crypto/link-bound-hop.js';
import { randomIntBetween } from '../crypto/random.js';
import { AlliumError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { DirectoryClient } from '../net/directory-client.js';
import { ExitResolver } from '../net/exit-resolver.js';
import { connectLink, type Link, LinkError, LinkListener } from '../net/link.js';
import type { AuthoritySet } from '../wire/authority-docs.js';
import type { Cell } from '../wire/cell.js';
import {
  decodeCreate,
  decodeCreated,
  decodeDestroy,
  encodeCreate,
  encodeCreated,
  encodeDestroy,
} from '../wire/cell-bodies.js';
import {
  CELL_BODY_LEN,
  CELL_LEN,
  CellCommand,
  CIRC_ID_INITIATOR_BIT,
  CIRC_WINDOW_MAX,
  DestroyReason,
  destroyReasonName,
  EndReason,
  HandshakeType,
  LEGACY_CIRC_WINDOW_MAX,
  MAX_EXTENDS_PER_CIRCUIT,
  MAX_LINK_BOUND_CREATES_PER_LINK,
  MAX_RELAY_EARLY,
  RelayCommand,
  STREAM_WINDOW_MAX,
} from '../wire/constants.js';
import { decodeRelayMessage, writeRelayBody } from '../wire/relay-cell.js';
import { decodeExtend, encodeEnd, encodeExtended, encodeTruncated } from '../wire/relay-messages.js';
import { Scratch } from '../wire/scratch.js';
import { ConsensusCache } from './consensus-cache.js';
import { beginExitStream, ExitBuffers, type ExitContext } from './exit-streams.js';
import { HandshakePool, type HandshakeResult } from './handshake-pool.js';
import { loadOrCreateIdentity } from './keys-store.js';
import { DEFAULT_RELAY_LIMITS, type RelayLimits, TokenBucket } from './limits.js';
import { DEFAULT_LINK_KEY_POLICY, type LinkKeyPolicy, LinkKeys } from './link-keys.js';
import { DEFAULT_ONION_KEY_POLICY, type OnionKeyPolicy, OnionKeys } from './onion-keys.js';
import { readStoredPort, storePort } from './port-store.js';
import { publishedExitPolicy } from './private-ranges.js';
import { DirectoryRegistration, type RegistrationTarget } from './registration.js';
import { type CircuitSide, RelayCircuit } from './relay-circuit.js';

export interface RelayOptions {
  dataDir: string;
  /** A single directory to register with. Or, instead, `authorities`. */
  directoryUrl?: string;
  directoryKey?: Buffer;
  /** Register with every authority of this set (protocol §6.5); its consensus is the set's. */
  authorities?: AuthoritySet;
  /**
   * Serve the consensus as a cache on this port (0: any free one) at --host, and name it in the
   * descriptor (protocol §6.11). Unset: no cache.
   */
  cachePort?: number;
  /** How often at most the cache fetches the consensus (default DEFAULT_CACHE_REFRESH_MS). */
  cacheRefreshMs?: number;
  nickname: string;
  host?: string;
  port?: number;
  /** The address to advertise; asked of the directory when absent. */
  address?: string;
  /** Exit policy lines; empty means not an exit. */
  exitPolicy?: string[];
  /** Allow private, loopback and link-local destinations (test networks). */
  allowPrivate?: boolean;
  bandwidth?: number;
  /** Relay ids (hex) of other relays run by the same operator: clients never put two in one path. */
  family?: string[];
  refreshMs?: number;
  /** How long to keep trying a directory that does not answer at start (default 2 minutes). */
  directoryWaitMs?: number;
  logger?: Logger;
  /** Resource limits (defaults in limits.ts). */
  limits?: Partial<RelayLimits>;
  /** DNS servers an exit asks (`IP`, `IP:PORT`, `[IPv6]:PORT`); default the system's. */
  dnsServers?: string[];
  /** Log destinations and peer addresses (off by default: relays keep no record of who talks to whom). */
  logSensitive?: boolean;
  /** How long an onion key serves, and how long the one it replaced still answers (onion-keys.ts). */
  onionKeyPolicy?: Partial<OnionKeyPolicy>;
  /** How long a link key serves, and how long its certificate outlives that (link-keys.ts). */
  linkKeyPolicy?: Partial<LinkKeyPolicy>;
  /**
   * Test hook: called with every relay cell body this relay handles, after it removed (forward) or added
   * (backward) its own layer, with who it came from and, forward, the cell command it came in; also
   * with the cells it sends toward the client itself (`own`; `peerRelayId` is then the peer they go
   * to). It may change the body, and set `from.command` to forward a cell under another command: a
   * tagging relay.
   */
  inspect?: (
    body: Buffer,
    direction: 'forward' | 'backward',
    from: { peerRelayId: Buffer | null; command?: number; own?: boolean },
  ) => void;
}

function relayTrust(opts: RelayOptions): ConsensusTrust | null {
  if (opts.authorities) return { kind: 'authorities', set: opts.authorities };
  if (opts.directoryUrl === undefined) {
    throw new AlliumError(
      'ALLIUM_RELAY_OPTIONS',
      'a relay registers with a directory (--directory URL) or with the authorities of a set (--authorities FILE)',
    );
  }
  if (opts.directoryKey === undefined) return null;
  return { kind: 'directory', url: opts.directoryUrl.replace(/\/+$/, ''), key: opts.directoryKey };
}

/** Where runs of cells are joined for one cipher call, and where outgoing cells are sealed. */
const runBodies = new Scratch();
const sealBatch = new Scratch();
/** How often, at most, a backlogged link makes the relay add up every link's queue. */
const TOTAL_QUEUE_CHECK_MS = 10;

/** A relay cell whose body already had this hop's layer applied (in a batch). */
type DecryptedCell = Cell & { decrypted?: boolean };

function sameRelayRun(a: Cell, b: Cell): boolean {
  return (
    a.circId === b.circId &&
    (a.command === CellCommand.RELAY || a.command === CellCommand.RELAY_EARLY) &&
    (b.command === CellCommand.RELAY || b.command === CellCommand.RELAY_EARLY)
  );
}

interface Entry {
  circ: RelayCircuit;
  side: 'prev' | 'next';
}

export class Relay {
  readonly identity: IdentityKey;
  private readonly onionKeys: OnionKeys;
  private readonly onionKeyPolicy: OnionKeyPolicy;
  private onionKeyTimer: NodeJS.Timeout | null = null;
  readonly id: Buffer;
  readonly idHex: string;
  private readonly linkKeys: LinkKeys;
  private linkKeyTimer: NodeJS.Timeout | null = null;
  private listener: LinkListener | null = null;
  private readonly circuits = new Map<Link, Map<number, Entry>>();
  /** Open links whose peer proved a relay id (by its link certificate): any EXTEND naming that id may use one. */
  private readonly linksByPeer = new Map<string, Link>();
  /**
   * Links being opened for EXTENDs, by relay id, address and port: an EXTEND naming an honest relay's
   * id at a black-hole address holds only its own attempt, never the one to the relay's real address.
   */
  private readonly dialing = new Map<string, Promise<Link>>();
  private readonly policy: ExitPolicy;
  private readonly publishedPolicy: string[];
  private readonly log: Logger;
  private readonly registration: DirectoryRegistration;
  /** What the consensus must be signed by (null: a single directory without a configured key). */
  private readonly trust: ConsensusTrust | null;
  private cache: ConsensusCache | null = null;
  readonly limits: RelayLimits;
  private readonly createBuckets = new WeakMap<Link, TokenBucket>();
  /** Every X a link-bound CREATE carried on each link (§3.6: a repeated one is refused). */
  private readonly linkBoundXs = new WeakMap<Link, Set<string>>();
  /** CREATEs whose handshake a worker is still answering, per link. */
  private readonly pendingCreates = new WeakMap<Link, Set<number>>();
  /** Answers CREATEs: on this thread at a modest rate, on worker threads past it. */
  readonly handshakes: HandshakePool;
  private readonly idleSince = new Map<Link, number>();
  private idleTimer: NodeJS.Timeout | null = null;
  private lastTotalQueueCheck = Number.NEGATIVE_INFINITY;
  private stopped = false;
  readonly stats = {
    limitRejections: 0,
    circuits: 0,
    cellsIn: 0,
    cellsOut: 0,
    streams: 0,
    handshakeFailures: 0,
    linkBoundCreates: 0,
    integrityFailures: 0,
    onionKeyRotations: 0,
    linkKeyRotations: 0,
    /** Circuits closed because their link's queue passed --max-link-queue (the most queued first). */
    queueShedCircuits: 0,
    /** Circuits destroyed after --idle-circuit-timeout without a cell. */
    idleCircuitsClosed: 0,
  };
  /** The largest queue of the links closed so far (see queuePeakBytes in gauges()). */
  private closedLinksQueuePeak = 0;

  private constructor(private readonly opts: RelayOptions) {
    this.identity = loadOrCreateIdentity(opts.dataDir);
    this.onionKeys = OnionKeys.load(opts.dataDir);
    this.onionKeyPolicy = { ...DEFAULT_ONION_KEY_POLICY, ...opts.onionKeyPolicy };
    if (!(this.onionKeyPolicy.graceMs > 0 && this.onionKeyPolicy.graceMs <= this.onionKeyPolicy.lifetimeMs)) {
      throw new AlliumError(
        'ALLIUM_RELAY_OPTIONS',
        'the onion key grace period must be positive and no longer than the key lifetime (one previous key is kept)',
      );
    }
    this.id = this.identity.id;
    this.idHex = this.id.toString('hex');
    LinkKeys.forgetStored(opts.dataDir);
    this.linkKeys = new LinkKeys(this.identity, { ...DEFAULT_LINK_KEY_POLICY, ...opts.linkKeyPolicy });
    const lines = opts.exitPolicy ?? [];
    this.policy = ExitPolicy.fromLines(lines, { allowPrivate: opts.allowPrivate ?? false });
    // Publish the effective policy, so a client reading it knows private destinations are refused.
    this.publishedPolicy = publishedExitPolicy(lines, opts.allowPrivate ?? false);
    this.log = (opts.logger ?? silentLogger).child({ relay: opts.nickname });
    this.limits = { ...DEFAULT_RELAY_LIMITS, ...opts.limits };
    this.handshakes = new HandshakePool({
      relayId: this.id,
      ...this.onionKeys.active(),
      threads: this.limits.handshakeThreads,
      inlinePerSecond: this.limits.inlineHandshakesPerSecond,
    });
    this.trust = relayTrust(opts);
    const targets: RegistrationTarget[] = opts.authorities
      ? opts.authorities.authorities.map((authority) => ({
          client: new DirectoryClient({ url: authority.url, trust: this.trust ?? undefined }),
          authority,
        }))
      : [{ client: new DirectoryClient({ url: opts.directoryUrl ?? '', directoryKey: opts.directoryKey }) }];
    this.registration = new DirectoryRegistration(
      targets,
      {
        identity: this.identity,
        onionPublicKey: () => this.onionKeys.current.publicKey,
        nickname: opts.nickname,
        address: opts.address,
        port: () => this.port,
        exitPolicy: this.publishedPolicy,
        bandwidth: opts.bandwidth ?? 100 * 1024 * 1024,
        family: opts.family,
        cachePort: () => this.cache?.port,
      },
      this.log,
      opts.refreshMs ?? 60_000,
      !opts.authorities && opts.directoryKey !== undefined,
    );
    this.exitContext = {
      policy: this.policy,
      resolver: new ExitResolver({
        servers: opts.dnsServers,
        timeoutMs: this.limits.dnsTimeoutMs,
        maxLookups: this.limits.dnsLookups,
        maxLookupsPerCircuit: this.limits.dnsLookupsPerCircuit,
      }),
      buffers: new ExitBuffers(this.limits.exitBufferBytes),
      maxStreamsPerCircuit: this.limits.streamsPerCircuit,
      logSensitive: opts.logSensitive ?? false,
      log: this.log,
      stats: this.stats,
      sendBackward: (circ, command, streamId, data) => this.sendBackward(circ, command, streamId, data),
      protocolError: (circ) => this.teardown(circ, DestroyReason.PROTOCOL, null),
      noteRoundTrip: (circ, ms) => this.receiveBudgets.of(circ.prev.link).noteBaseRtt(ms),
    };
  }

  static async start(opts: RelayOptions): Promise<Relay> {
    const relay = new Relay(opts);
    // A key past its lifetime (the relay was off when it was due) is replaced before it is published.
    await relay.maintainOnionKeys();
    await relay.listen();
    relay.scheduleLinkKeys();
    if (opts.cachePort !== undefined) await relay.startCache(opts.cachePort);
    await relay.registration.registerFirst(opts.directoryWaitMs ?? 120_000);
    return relay;
  }

  private async startCache(port: number): Promise<void> {
    if (!this.trust) {
      throw new AlliumError(
        'ALLIUM_RELAY_OPTIONS',
        'a consensus cache (--cache-port) checks what it serves: give --directory-key, or --authorities',
      );
    }
    this.cache = await ConsensusCache.start({
      trust: this.trust,
      host: this.opts.host ?? '127.0.0.1',
      port,
      dataDir: this.opts.dataDir,
      logger: this.log.child({ part: 'cache' }),
      refreshMs: this.opts.cacheRefreshMs,
    });
    this.log.info({ port: this.cache.port }, 'serving the consensus as a cache');
  }

  /** The port of the consensus cache, when the relay runs one. */
  get cachePort(): number | undefined {
    return this.cache?.port;
  }

  /** The onion key CREATEs name now (the one in the relay's current descriptor). */
  get onionKey(): X25519Key {
    return this.onionKeys.current;
  }

  /**
   * Rotates the onion key when it is due and forgets the previous one when its grace ends (protocol
   * §3.1); a new key goes to the handshake answerers and into a fresh descriptor at once.
   */
  private async maintainOnionKeys(): Promise<void> {
    if (this.stopped) return;
    const { rotated, dropped } = await this.onionKeys.maintain(this.onionKeyPolicy);
    if (rotated || dropped) {
      const { onionKey, previousOnionKey } = this.onionKeys.active();
      this.handshakes.setKeys(onionKey, previousOnionKey);
    }
    if (rotated) {
      this.stats.onionKeyRotations++;
      this.log.info({ graceHours: this.onionKeyPolicy.graceMs / 3600_000 }, 'onion key rotated');
      if (this.registration.address) this.registration.refreshNow();
    }
    this.scheduleOnionKeys(this.onionKeys.nextChangeAt(this.onionKeyPolicy) - Date.now());
  }

  private scheduleOnionKeys(inMs: number): void {
    if (this.onionKeyTimer) clearTimeout(this.onionKeyTimer);
    // setTimeout holds at most 2^31-1 ms (~24.8 days); waking early only re-checks.
    const wait = Math.min(2 ** 31 - 1, Math.max(100, inMs));
    this.onionKeyTimer = setTimeout(() => {
      this.maintainOnionKeys().catch((err) => {
        this.log.error(
          { err: (err as Error).message },
          'onion key rotation failed (cannot write onion-keys.json?); the current key stays, retrying in a minute',
        );
        this.scheduleOnionKeys(60_000);
      });
    }, wait);
    this.onionKeyTimer.unref();
  }

  /** Replaces the link key when it is due (§1.1); links made with the old one stay until its certificate expires. */
  private scheduleLinkKeys(): void {
    if (this.stopped) return;
    const wait = Math.min(2 ** 31 - 1, Math.max(100, this.linkKeys.nextChangeAt - Date.now()));
    this.linkKeyTimer = setTimeout(() => {
      if (this.linkKeys.maintain()) {
        this.stats.linkKeyRotations++;
        this.log.info('link key rotated');
      }
      this.scheduleLinkKeys();
    }, wait);
    this.linkKeyTimer.unref();
  }

  /** The address this relay advertises (learned from the directory unless configured). */
  get address(): string {
    return this.registration.address;
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  /** What the relay holds right now (for metrics and status): circuits, exit streams, links, queued bytes. */
  gauges(): {
    circuits: number;
    streams: number;
    links: number;
    queuedBytes: number;
    queuePeakBytes: number;
  } {
    let circuits = 0;
    let streams = 0;
    let queuedBytes = 0;
    let queuePeakBytes = this.closedLinksQueuePeak;
    for (const [link, map] of this.circuits) {
      queuedBytes += link.writableLength;
      queuePeakBytes = Math.max(queuePeakBytes, link.queuePeak);
      for (const { circ, side } of map.values()) {
        if (side !== 'prev') continue;
        circuits++;
        streams += circ.mux?.streams.size ?? 0;
      }
    }
    return { circuits, streams, links: this.circuits.size, queuedBytes, queuePeakBytes };
  }

  /**
   * The largest receive budget among this exit's links toward middles, in cells (§5.1): 512 (2 MiB),
   * more on long round trips.
   */
  receiveBudgetCells(): number {
    let most = this.receiveBudgets.totalCells;
    for (const link of this.circuits.keys()) {
      most = Math.max(most, this.receiveBudgets.peek(link)?.currentCells ?? 0);
    }
    return most;
  }

  get isExit(): boolean {
    return this.policy.isExit();
  }

  /** What the exit holds for destinations now and at most so far, and its DNS lookups in progress. */
  exitLoad(): { bufferedBytes: number; bufferedPeakBytes: number; streamsShed: number; dnsLookups: number } {
    const { buffers, resolver } = this.exitContext;
    return {
      bufferedBytes: buffers.total,
      bufferedPeakBytes: buffers.peak,
      streamsShed: buffers.closedStreams,
      dnsLookups: resolver.pending,
    };
  }

  private async listen(): Promise<void> {
    // Without a port of its own, the relay takes the one it had last time (clients may hold a
    // consensus listing it there); if another program took it meanwhile, any free one.
    const stored = this.opts.port === undefined ? readStoredPort(this.opts.dataDir) : undefined;
    try {
      await this.listenOn(this.opts.port ?? stored ?? 0);
    } catch (err) {
      if (stored === undefined || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      this.log.warn({ port: stored }, 'the port this relay had last time is taken: listening on another');
      await this.listenOn(0);
    }
    if (this.opts.port === undefined && this.port !== stored) storePort(this.opts.dataDir, this.port);
    this.log.info({ port: this.port, id: this.idHex, exit: this.isExit }, 'relay listening');
  }

  private async listenOn(port: number): Promise<void> {
    this.listener = await LinkListener.listen({
      host: this.opts.host ?? '127.0.0.1',
      port,
      me: () => this.linkKeys.current,
      maxPendingHandshakes: this.limits.pendingHandshakes,
      onLink: (link) => this.adopt(link),
      onHandshakeError: (err) => {
        if ((err as AlliumError).code === 'ALLIUM_LINK_BUSY') this.stats.limitRejections++;
        else this.stats.handshakeFailures++;
        const code = (err as AlliumError).code;
        if (code === 'ALLIUM_LINK_VERSION') this.log.warn({ code, err: err.message }, 'link refused');
        else this.log.debug({ code, err: err.message }, 'link handshake failed');
      },
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.onionKeyTimer) clearTimeout(this.onionKeyTimer);
    if (this.linkKeyTimer) clearTimeout(this.linkKeyTimer);
    if (this.idleTimer) clearInterval(this.idleTimer);
    // A service manager waits at most a few seconds (docs/deploy.md): the withdrawal gets two, and
    // the listener's close (which waits for every connection) runs while the links are being closed.
    await Promise.race([this.registration.withdraw(), new Promise((r) => setTimeout(r, 2000).unref())]);
    const cacheClosing = this.cache?.stop();
    const closing = this.listener?.close();
    for (const link of [...this.circuits.keys()]) link.close();
    await this.handshakes.close();
    await closing;
    await cacheClosing;
  }

  // ---- links ----

  private adopt(link: Link): void {
    const limit = this.limits.linkQueueBytes;
    link.setQueueLimits({
      pressureBytes: limit / 4,
      limitBytes: limit,
      hardBytes: 4 * limit,
      stallMs: this.limits.linkStallMs,
    });
    link.onBacklog = () => this.enforceTotalQueue();
    link.onOverLimit = () => this.shedQueue(link);
    link.onRelief = () => this.resumeHeld(link);
    this.circuits.set(link, new Map());
    this.idleSince.set(link, Date.now());
    if (!this.idleTimer) {
      const every = Math.min(10_000, this.limits.idleLinkMs / 2, this.limits.idleCircuitMs / 2);
      this.idleTimer = setInterval(() => this.closeIdleLinks(), Math.max(100, every));
      this.idleTimer.unref();
    }
    if (link.peerRelayId) {
      const hex = link.peerRelayId.toString('hex');
      const known = this.linksByPeer.get(hex);
      if (!known?.takesNewCircuits) this.linksByPeer.set(hex, link);
    }
    link.on({
      cells: (cells) => this.onCells(link, cells),
      close: (err) => this.onLinkClosed(link, err),
    });
  }

  /**
   * Keeps the bytes queued toward all peers under totalQueueBytes by closing the link with the most
   * queued (a stalled peer's), then the next. Summing every link costs a pass over them, so a busy
   * relay does it at most once per TOTAL_QUEUE_CHECK_MS; the 10-second sweep also runs it.
   */
  private enforceTotalQueue(force = false): void {
    const now = performance.now();
    if (!force && now - this.lastTotalQueueCheck < TOTAL_QUEUE_CHECK_MS) return;
    this.lastTotalQueueCheck = now;
    let total = 0;
    for (const l of this.circuits.keys()) total += l.writableLength;
    while (total > this.limits.totalQueueBytes) {
      let worst: Link | null = null;
      for (const l of this.circuits.keys()) {
        if (!l.isClosed && (worst === null || l.writableLength > worst.writableLength)) worst = l;
      }
      if (worst === null) return;
      const queued = worst.writableLength;
      total -= queued;
      this.log.warn(
        { queuedBytes: queued, limit: this.limits.totalQueueBytes },
        'closing the link with the most bytes queued: the total toward all peers passed --max-total-queue',
      );
      worst.close(
        new AlliumError(
          'ALLIUM_RELAY_QUEUE_FULL',
          `more than ${this.limits.totalQueueBytes} bytes queued toward all peers; this link held the most (${queued})`,
        ),
      );
    }
  }

  /**
   * The queue toward `link`'s peer passed --max-link-queue: closes the circuit with the most cells
   * waiting on it (they are dropped), then the next, until the queue is under the limit. The
   * circuits that fill the queue pay for it, not the others that share the link.
   */
  private shedQueue(link: Link): void {
    const map = this.circuits.get(link);
    if (!map || link.isClosed) return;
    const limit = this.limits.linkQueueBytes;
    while (!link.isClosed && link.writableLength > limit) {
      const worst = link.largestQueue();
      if (worst === null) {
        link.close(
          new LinkError('ALLIUM_LINK_QUEUE', `the peer stopped reading: more than ${limit} bytes queued`),
        );
        return;
      }
      link.dropQueued(worst.circId);
      const entry = map.get(worst.circId);
      if (!entry) continue; // cells of a circuit already gone (its DESTROY, say)
      this.stats.queueShedCircuits++;
      this.stats.limitRejections++;
      this.log.warn(
        { queuedBytes: worst.cells * CELL_LEN, limit },
        'closing the circuit with the most queued: its link passed --max-link-queue',
      );
      this.teardown(entry.circ, DestroyReason.RESOURCELIMIT, null);
    }
  }

  /** The queue toward `link`'s peer fell back: the exit streams it held send again. */
  private resumeHeld(link: Link): void {
    const map = this.circuits.get(link);
    if (!map) return;
    for (const { circ, side } of map.values()) {
      if (side === 'prev' && circ.mux && !circ.closed) circ.mux.resume();
    }
  }

  /**
   * Destroys circuits that carried no cell for idleCircuitMs (at an exit, only those with no stream
   * open). Cell counts are compared with the previous pass, so relaying a cell costs nothing more.
   */
  private closeIdleCircuits(now: number): void {
    const idle: RelayCircuit[] = [];
    for (const map of this.circuits.values()) {
      for (const { circ, side } of map.values()) {
        if (side !== 'prev') continue;
        const cells = circ.cellsForward + circ.cellsBackward;
        if (cells !== circ.sweptCells || (circ.mux?.streams.size ?? 0) > 0) {
          circ.sweptCells = cells;
          circ.quietSince = now;
        } else if (now - circ.quietSince >= this.limits.idleCircuitMs) idle.push(circ);
      }
    }
    for (const circ of idle) {
      this.stats.idleCircuitsClosed++;
      this.teardown(circ, DestroyReason.FINISHED, null);
    }
  }

  /**
   * Once every queue is empty, gives back the buffers a burst grew (link slabs, scratch space): a
   * flood's memory otherwise stays at its peak. The next burst allocates them again, once.
   */
  private giveBackMemory(): void {
    for (const link of this.circuits.keys()) if (link.writableLength > 0) return;
    for (const link of this.circuits.keys()) link.trimMemory();
    runBodies.release();
    sealBatch.release();
  }

  /** Closes links that carried no circuit for idleLinkMs, and circuits idle for idleCircuitMs. */
  private closeIdleLinks(): void {
    this.enforceTotalQueue(true);
    const now = Date.now();
    this.closeIdleCircuits(now);
    this.giveBackMemory();
    for (const [link, map] of this.circuits) {
      if (map.size > 0) {
        this.idleSince.set(link, now);
      } else if (now - (this.idleSince.get(link) ?? now) > this.limits.idleLinkMs) {
        link.close();
      }
    }
  }

  private onLinkClosed(link: Link, err?: Error): void {
    const code = (err as AlliumError | undefined)?.code;
    if (code === 'ALLIUM_LINK_QUEUE' || code === 'ALLIUM_LINK_STALLED' || code === 'ALLIUM_RELAY_QUEUE_FULL')
      this.stats.limitRejections++;
    const map = this.circuits.get(link);
    this.circuits.delete(link);
    this.idleSince.delete(link);
    this.closedLinksQueuePeak = Math.max(this.closedLinksQueuePeak, link.queuePeak);
    if (link.peerRelayId) {
      const hex = link.peerRelayId.toString('hex');
      if (this.linksByPeer.get(hex) === link) this.linksByPeer.delete(hex);
    }
    if (err) this.log.debug({ err: err.message }, 'link closed with an error');
    if (!map) return;
    for (const { circ, side } of map.values()) this.teardown(circ, DestroyReason.CHANNEL_CLOSED, side);
  }

  /**
   * A link to the relay an EXTEND names (§4.1): an open one whose peer proved that id, wherever it
   * was reached (unless it is near its expiry, §1.1), or else one to the EXTEND's address. Attempts are shared only by EXTENDs naming the
   * same id, address and port, so a wrong address fails only the circuits that named it.
   */
  private linkTo(relayId: Buffer, host: string, port: number): Promise<Link> {
    const hex = relayId.toString('hex');
    const open = this.linksByPeer.get(hex);
    if (open?.takesNewCircuits) return Promise.resolve(open);
    const key = `${hex} ${host} ${port}`;
    const pending = this.dialing.get(key);
    if (pending) return pending;
    const p = connectLink({ host, port, relayId, me: this.linkKeys.current }).then((link) => {
      this.adopt(link);
      return link;
    });
    this.dialing.set(key, p);
    const done = () => {
      if (this.dialing.get(key) === p) this.dialing.delete(key);
    };
    p.then(done, done);
    return p;
  }

  private allocCircId(link: Link): number {
    const map = this.circuits.get(link)!;
    for (;;) {
      let id = randomIntBetween(0, 0x80000000);
      if (id === 0) continue;
      if (link.initiator) id = (id | CIRC_ID_INITIATOR_BIT) >>> 0;
      if (!map.has(id)) return id;
    }
  }

  // ---- cells ----

  private onCells(link: Link, cells: Cell[]): void {
    const map = this.circuits.get(link);
    if (!map) return;
    this.stats.cellsIn += cells.length;
    for (let i = 0; i < cells.length; ) {
      // Relay cells of one circuit that arrived together get their layer in one cipher call.
      let run = 1;
      while (i + run < cells.length && sameRelayRun(cells[i], cells[i + run])) run++;
      if (run > 1 && this.forwardRun(map, cells, i, run)) {
        i += run;
        continue;
      }
      if (run > 1) this.decryptRun(map, cells, i, run);
      for (let k = i; k < i + run; k++) this.onCellSafely(link, map, cells[k]);
      i += run;
    }
  }

  /**
   * A run of relay cells from the client's side of one circuit: their tags checked and this hop's
   * layer removed in one go (ForwardLayer.openMany), then each handled in order. False when the run
   * is not one (a backward run, or an unknown circuit), for the caller to handle cell by cell.
   */
  private forwardRun(map: Map<number, Entry>, cells: Cell[], first: number, run: number): boolean {
    const head = cells[first];
    if (head.command !== CellCommand.RELAY && head.command !== CellCommand.RELAY_EARLY) return false;
    const entry = map.get(head.circId);
    if (entry?.side !== 'prev') return false;
    const circ = entry.circ;
    let opened: ForwardOpen[];
    try {
      const runCells = cells.slice(first, first + run);
      opened = circ.crypto.forward.openMany(
        runCells.map((c) => c.body),
        runCells.map((c) => c.command),
      );
    } catch (err) {
      this.cellFailed(circ, err as Error);
      return true;
    }
    for (let k = 0; k < opened.length && !circ.closed; k++) {
      try {
        this.onForwardOpened(circ, cells[first + k], opened[k]);
      } catch (err) {
        this.cellFailed(circ, err as Error);
      }
    }
    return true;
  }

  /** Applies this hop's layer to `run` relay cells of one circuit at once; their bodies become the result. */
  private decryptRun(map: Map<number, Entry>, cells: Cell[], first: number, run: number): void {
    const head = cells[first];
    if (head.command !== CellCommand.RELAY && head.command !== CellCommand.RELAY_EARLY) return;
    const entry = map.get(head.circId);
    // Forward cells are opened one by one (each has its own tag to check first).
    if (entry?.side !== 'next') return;
    const cipher = entry.circ.crypto.backward;
    const joined = runBodies.take(run * CELL_BODY_LEN);
    for (let k = 0; k < run; k++) cells[first + k].body.copy(joined, k * CELL_BODY_LEN);
    const out = cipher.add(joined);
    for (let k = 0; k < run; k++) {
      cells[first + k] = {
        ...cells[first + k],
        body: out.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN),
        decrypted: true,
      } as Cell;
    }
  }

  private onCellSafely(link: Link, map: Map<number, Entry>, cell: Cell): void {
    try {
      this.onCell(link, map, cell);
    } catch (err) {
      this.cellFailed(map.get(cell.circId)?.circ ?? null, err as Error);
    }
  }

  /** A bug or a hostile cell must cost one circuit at most, never the relay. */
  private cellFailed(circ: RelayCircuit | null, err: Error): void {
    this.log.warn({ err: err.message, code: (err as AlliumError).code }, 'cell handling failed');
    if (circ && !circ.closed) this.teardown(circ, DestroyReason.PROTOCOL, null);
  }

  private onCell(link: Link, map: Map<number, Entry>, cell: Cell): void {
    const { circId, command } = cell;
    switch (command) {
      case CellCommand.PADDING:
        return;
      case CellCommand.CREATE:
        this.onCreate(link, map, cell);
        return;
      case CellCommand.RELAY:
      case CellCommand.RELAY_EARLY: {
        const entry = map.get(circId);
        if (!entry) return;
        if (entry.side === 'prev') this.onForward(entry.circ, cell);
        else this.onBackward(entry.circ, cell);
        return;
      }
      case CellCommand.CREATED: {
        const entry = map.get(circId);
        if (entry?.side !== 'next' || !entry.circ.extending) return;
        entry.circ.extending = false;
        const { hdata } = decodeCreated(cell.body);
        this.sendBackward(entry.circ, RelayCommand.EXTENDED, 0, encodeExtended(hdata));
        return;
      }
      case CellCommand.DESTROY: {
        const entry = map.get(circId);
        if (!entry) {
          this.pendingCreates.get(link)?.delete(circId); // its handshake answer is dropped
          return;
        }
        const { reason } = decodeDestroy(cell.body);
        this.log.debug({ reason: destroyReasonName(reason), side: entry.side }, 'circuit destroyed by peer');
        this.teardown(entry.circ, DestroyReason.DESTROYED, entry.side);
        return;
      }
      default:
        return; // unknown commands are dropped (protocol §2.1)
    }
  }

  private onCreate(link: Link, map: Map<number, Entry>, cell: Cell): void {
    const { circId } = cell;
    // The peer allocates ids with the high bit set exactly when it opened the link (§2.2).
    const peerBit = (circId & CIRC_ID_INITIATOR_BIT) !== 0;
    const pendingHere = this.pendingCreates.get(link);
    if (circId === 0 || map.has(circId) || pendingHere?.has(circId) || peerBit === link.initiator) {
      link.send(circId, CellCommand.DESTROY, encodeDestroy(DestroyReason.PROTOCOL));
      return;
    }
    let bucket = this.createBuckets.get(link);
    if (!bucket) {
      bucket = new TokenBucket(this.limits.createsPerSecond, this.limits.createBurst);
      this.createBuckets.set(link, bucket);
    }
    if (map.size + (pendingHere?.size ?? 0) >= this.limits.circuitsPerLink || !bucket.take()) {
      this.stats.limitRejections++;
      link.send(circId, CellCommand.DESTROY, encodeDestroy(DestroyReason.RESOURCELIMIT));
      return;
    }
    let hdata: Buffer;
    try {
      const create = decodeCreate(cell.body);
      if (create.htype === HandshakeType.LINK_BOUND) {
        this.answerLinkBound(link, map, circId, create.hdata);
        return;
      }
      if (create.htype !== HandshakeType.NTOR_X25519_SHA256)
        throw new AlliumError('ALLIUM_HANDSHAKE_TYPE', 'unknown handshake');
      hdata = create.hdata;
    } catch (err) {
      this.refuseCreate(link, circId, err as Error);
      return;
    }
    let pending = this.pendingCreates.get(link);
    if (!pending) {
      pending = new Set();
      this.pendingCreates.set(link, pending);
    }
    pending.add(circId);
    this.handshakes.answer(hdata, (err, result) => this.finishCreate(link, circId, err, result));
  }

  /** The handshake answer for a CREATE (now, or from a worker): unless the link or circuit went meanwhile, reply. */
  private finishCreate(link: Link, circId: number, err: Error | null, result?: HandshakeResult): void {
    const pending = this.pendingCreates.get(link);
    if (!pending?.delete(circId)) return; // DESTROYed while waiting, or the link closed
    const map = this.circuits.get(link);
    if (!map || link.isClosed) return;
    if (err || !result) {
      this.refuseCreate(link, circId, err ?? new Error('no answer'));
      return;
    }
    const firstHop = link.peerRelayId === null;
    const circ = new RelayCircuit({ link, circId }, circuitHopCrypto(result.keys, { firstHop }), firstHop);
    map.set(circId, { circ, side: 'prev' });
    this.stats.circuits++;
    link.send(circId, CellCommand.CREATED, encodeCreated(result.reply));
  }

  /**
   * A link-bound first hop (§3.6): answered at once, so the client's EXTEND right behind it finds the
   * circuit. Only from a client's own link: on a link from a relay it could only come from an EXTEND,
   * and the relay that sent it would hold the keys.
   */
  private answerLinkBound(link: Link, map: Map<number, Entry>, circId: number, hdata: Buffer): void {
    if (link.peerRelayId !== null) {
      throw new AlliumError('ALLIUM_HANDSHAKE_TYPE', 'a link-bound CREATE from a relay');
    }
    const { keys, confirm } = linkBoundHop(link.linkSecret, hdata);
    // The same X on one link would give two circuits the same keys (one keystream used twice).
    let seen = this.linkBoundXs.get(link);
    if (!seen) {
      seen = new Set();
      this.linkBoundXs.set(link, seen);
    }
    const x = hdata.toString('latin1');
    if (seen.has(x)) {
      throw new AlliumError(
        'ALLIUM_HANDSHAKE_REPEATED',
        'a link-bound CREATE repeated an X already used on this link',
      );
    }
    if (seen.size >= MAX_LINK_BOUND_CREATES_PER_LINK) {
      this.stats.limitRejections++;
      link.send(circId, CellCommand.DESTROY, encodeDestroy(DestroyReason.RESOURCELIMIT));
      return;
    }
    seen.add(x);
    const circ = new RelayCircuit({ link, circId }, circuitHopCrypto(keys, { firstHop: true }), true);
    map.set(circId, { circ, side: 'prev' });
    this.stats.circuits++;
    this.stats.linkBoundCreates++;
    link.send(circId, CellCommand.CREATED, encodeCreated(confirm));
  }

  private refuseCreate(link: Link, circId: number, err: Error): void {
    this.stats.handshakeFailures++;
    this.log.debug({ err: err.message }, 'CREATE refused');
    link.send(circId, CellCommand.DESTROY, encodeDestroy(DestroyReason.PROTOCOL));
  }

  private onForward(circ: RelayCircuit, cell: Cell): void {
    this.onForwardOpened(circ, cell, circ.crypto.forward.open(cell.body, cell.command));
  }

  private onForwardOpened(circ: RelayCircuit, cell: Cell, opened: ForwardOpen): void {
    circ.cellsForward++;
    if (opened.kind === 'tampered') {
      // The previous hop (or the link before it) changed this cell: stop it here (protocol §3.4).
      this.stats.integrityFailures++;
      this.log.info('relay cell failed its integrity check; destroying the circuit');
      this.teardown(circ, DestroyReason.INTEGRITY, null);
      return;
    }
    const peer = { peerRelayId: circ.prev.link.peerRelayId, command: cell.command };
    if (opened.kind === 'mine') {
      this.opts.inspect?.(opened.payload, 'forward', peer);
      const { command, streamId, data } = decodeRelayMessage(opened.payload, FORWARD_MARKER_LEN);
      // RELAY_EARLY is for EXTEND alone (§3.5): anything else in one is a marked cell.
      if (cell.command === CellCommand.RELAY_EARLY && command !== RelayCommand.EXTEND) {
        this.teardown(circ, DestroyReason.PROTOCOL, null);
        return;
      }
      this.onRelayMessage(
        circ,
        command,
        streamId,
        data,
        opened.tag,
        cell.command === CellCommand.RELAY_EARLY,
      );
      return;
    }
    if (!circ.next) {
      this.teardown(circ, DestroyReason.PROTOCOL, null);
      return;
    }
    if (cell.command === CellCommand.RELAY_EARLY && ++circ.earlyForwarded > MAX_RELAY_EARLY) {
      this.teardown(circ, DestroyReason.PROTOCOL, null);
      return;
    }
    this.opts.inspect?.(opened.body, 'forward', peer);
    circ.next.link.send(circ.next.circId, peer.command, opened.body);
    this.stats.cellsOut++;
  }

  private onBackward(circ: RelayCircuit, cell: Cell): void {
    circ.cellsBackward++;
    const body = (cell as DecryptedCell).decrypted ? cell.body : circ.crypto.backward.add(cell.body);
    this.opts.inspect?.(body, 'backward', { peerRelayId: circ.next?.link.peerRelayId ?? null });
    circ.prev.link.send(circ.prev.circId, CellCommand.RELAY, body);
    this.stats.cellsOut++;
  }

  /** Seals a relay message from this hop and sends it toward the client. Returns its mac. */
  private sendBackward(circ: RelayCircuit, command: number, streamId: number, data: Buffer): Buffer {
    return this.sendBackwardMany(circ, command, streamId, [data])[0];
  }

  /** Seals one cell per entry of `datas`, adds this hop's layer to all of them in one call, and sends them. */
  private sendBackwardMany(circ: RelayCircuit, command: number, streamId: number, datas: Buffer[]): Buffer[] {
    const batch = sealBatch.take(datas.length * CELL_BODY_LEN);
    for (let k = 0; k < datas.length; k++) {
      writeRelayBody(batch.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN), command, streamId, datas[k]);
    }
    const { out: sealed, tags } = circ.crypto.backward.originate(batch);
    if (circ.closed) return tags;
    if (this.opts.inspect) {
      for (let k = 0; k < datas.length; k++) {
        this.opts.inspect(sealed.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN), 'backward', {
          peerRelayId: circ.prev.link.peerRelayId,
          own: true,
        });
      }
    }
    for (let k = 0; k < datas.length; k++) {
      circ.prev.link.send(
        circ.prev.circId,
        CellCommand.RELAY,
        sealed.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN),
      );
    }
    this.stats.cellsOut += datas.length;
    return tags;
  }

  private onRelayMessage(
    circ: RelayCircuit,
    command: number,
    streamId: number,
    data: Buffer,
    tag: Buffer,
    early: boolean,
  ): void {
    switch (command) {
      case RelayCommand.EXTEND:
        // Each EXTEND may cost a connection attempt: TRUNCATE-then-EXTEND gets MAX_EXTENDS_PER_CIRCUIT.
        if (!early || circ.next || circ.extending || ++circ.extends > MAX_EXTENDS_PER_CIRCUIT) {
          this.teardown(circ, DestroyReason.PROTOCOL, null);
          return;
        }
        this.onExtend(circ, data);
        return;
      case RelayCommand.TRUNCATE:
        if (circ.next) this.teardownNext(circ, DestroyReason.REQUESTED);
        this.sendBackward(circ, RelayCommand.TRUNCATED, 0, encodeTruncated(DestroyReason.REQUESTED));
        return;
      case RelayCommand.BEGIN:
        // No streams at the entry (§4.2): its backward tags are keystream the client can compute,
        // so SENDMEs for its DATA could be forged; and a one-hop circuit shows the exit the client.
        if (circ.firstHop) {
          this.sendBackward(circ, RelayCommand.END, streamId, encodeEnd(EndReason.TORPROTOCOL));
          return;
        }
        beginExitStream(this.exitContext, circ, this.muxOf(circ), streamId, data);
        return;
      case RelayCommand.DATA:
      case RelayCommand.END:
      case RelayCommand.SENDME:
        if (circ.firstHop) {
          this.teardown(circ, DestroyReason.PROTOCOL, null);
          return;
        }
        this.muxOf(circ).handle(command, streamId, data, tag);
        return;
      default:
        return; // DROP and unknown relay commands are ignored
    }
  }

  /** What the exit side (exit-streams.ts) uses of this relay. */
  private readonly exitContext: ExitContext;

  /** Per link toward a middle: what this exit lets be in flight toward it (protocol §5.1). */
  private readonly receiveBudgets = new ReceiveBudgets<Link>(DEFAULT_RECEIVE_BUDGET_CELLS);

  private muxOf(circ: RelayCircuit): StreamMux {
    if (!circ.mux) {
      const budget = this.receiveBudgets.of(circ.prev.link);
      circ.mux = new StreamMux(
        (command, streamId, datas) => this.sendBackwardMany(circ, command, streamId, datas),
        {
          // Past 1024 cells only for a client that said it takes them (its BEGIN's flags, §4.2).
          grant: (rtt) =>
            budget.grant(circ, rtt, circ.largeWindows ? CIRC_WINDOW_MAX : LEGACY_CIRC_WINDOW_MAX),
          streamGrowth: () =>
            circ.largeWindows ? { largest: STREAM_WINDOW_MAX, baseRttMs: () => budget.baseRttMs } : null,
          maxHeldBytes: this.limits.exitCircuitBufferBytes,
          onHeld: (delta) => this.exitContext.buffers.note(delta),
          // Under pressure the link toward the client takes no more from a circuit that has cells
          // waiting on it: its streams stop reading their destinations (resumeHeld lets them go).
          held: () => circ.prev.link.pressured && circ.prev.link.queuedCellsOf(circ.prev.circId) > 0,
        },
      );
    }
    return circ.mux;
  }

  private onExtend(circ: RelayCircuit, data: Buffer): void {
    const req = decodeExtend(data);
    // A relay on a public address never dials private ones for a client: that would let anyone probe
    // the relay's own network. Relays of a test or LAN network (private addresses themselves) may.
    const probesInside = isPrivateAddress(req.address) && !isPrivateAddress(this.address);
    if (req.htype !== HandshakeType.NTOR_X25519_SHA256 || req.relayId.equals(this.id) || probesInside) {
      this.sendBackward(circ, RelayCommand.TRUNCATED, 0, encodeTruncated(DestroyReason.PROTOCOL));
      return;
    }
    circ.extending = true;
    this.linkTo(req.relayId, req.address, req.port).then(
      (link) => {
        if (circ.closed) return;
        const map = this.circuits.get(link);
        if (!map || link.isClosed) throw new AlliumError('ALLIUM_LINK_CLOSED', 'link closed');
        const circId = this.allocCircId(link);
        const next: CircuitSide = { link, circId };
        circ.next = next;
        map.set(circId, { circ, side: 'next' });
        link.send(circId, CellCommand.CREATE, encodeCreate(req.htype, req.hdata));
      },
      (err) => {
        if (circ.closed) return;
        circ.extending = false;
        this.log.info(
          { code: (err as AlliumError).code, err: this.opts.logSensitive ? err.message : undefined },
          'extend failed',
        );
        const code = (err as AlliumError).code;
        const reason =
          code === 'ALLIUM_LINK_IDENTITY' || code === 'ALLIUM_LINK_CERT_EXPIRED'
            ? DestroyReason.OR_IDENTITY
            : DestroyReason.CONNECTFAILED;
        this.sendBackward(circ, RelayCommand.TRUNCATED, 0, encodeTruncated(reason));
      },
    );
  }

  // ---- teardown ----

  private teardownNext(circ: RelayCircuit, reason: number): void {
    const next = circ.next;
    if (!next) return;
    circ.next = null;
    this.circuits.get(next.link)?.delete(next.circId);
    next.link.send(next.circId, CellCommand.DESTROY, encodeDestroy(reason));
  }

  /** Forgets a circuit and tells the side(s) that did not already know. */
  private teardown(circ: RelayCircuit, reason: number, from: 'prev' | 'next' | null): void {
    if (circ.closed) return;
    circ.mux?.closeAll(new StreamError('ALLIUM_CIRCUIT_DESTROYED', 'circuit destroyed', EndReason.DESTROY));
    if (circ.mux) this.receiveBudgets.of(circ.prev.link).forget(circ);
    circ.closed = true;
    this.circuits.get(circ.prev.link)?.delete(circ.prev.circId);
    if (from !== 'prev') circ.prev.link.send(circ.prev.circId, CellCommand.DESTROY, encodeDestroy(reason));
    if (circ.next) {
      this.circuits.get(circ.next.link)?.delete(circ.next.circId);
      if (from !== 'next') circ.next.link.send(circ.next.circId, CellCommand.DESTROY, encodeDestroy(reason));
    }
  }
}
