// Implements docs/protocol.md §2-§4 for a relay: the role's composition. Its parts, one concern each:
//   core/relay-cells.ts   what happens to every cell (CREATE, forward and backward layers, EXTEND's
//                         place in the protocol, DESTROY, teardown): the no-I/O machine
//   link-table.ts         the links, and the limits on what queues toward peers
//   extend.ts             where an EXTEND leads, and the link to it
//   exit.ts, exit-streams.ts   the exit's streams and BEGIN
//   core/onion-relay.ts   descriptor store, introduction and rendezvous point (inside the cell handling)
//   key-schedule.ts       onion and link key rotation
//   relay-options.ts      what a relay is started with, and whom it trusts for the consensus
// This class wires them to the listener, the handshake pool and the directory.

import type { ConsensusTrust } from '../core/consensus-trust.js';
import { DescriptorStore } from '../core/descriptor-store.js';
import { ExitPolicy } from '../core/exit-policy.js';
import { RelayCells, type RelayCellsHost } from '../core/relay-cells.js';
import type { CircuitEntry, RelayCircuit } from '../core/relay-circuit.js';
import type { ForwardOpen } from '../crypto/forward-onion.js';
import type { IdentityKey, X25519Key } from '../crypto/keys.js';
import type { HopKeys } from '../crypto/ntor.js';
import { AlliumError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { DirectoryClient } from '../net/directory-client.js';
import { type Link, LinkListener } from '../net/link.js';
import type { Cell } from '../wire/cell.js';
import { ConsensusCache } from './consensus-cache.js';
import { ExitSide } from './exit.js';
import { extendCircuit } from './extend.js';
import { HandshakePool } from './handshake-pool.js';
import { KeySchedule } from './key-schedule.js';
import { loadOrCreateIdentity } from './keys-store.js';
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from './limits.js';
import { DEFAULT_LINK_KEY_POLICY, LinkKeys } from './link-keys.js';
import { LinkTable } from './link-table.js';
import { DEFAULT_ONION_KEY_POLICY, OnionKeys } from './onion-keys.js';
import { readStoredPort, storePort } from './port-store.js';
import { publishedExitPolicy } from './private-ranges.js';
import { DirectoryRegistration, type RegistrationTarget } from './registration.js';
import { type RelayOptions, relayTrust } from './relay-options.js';

export type { RelayOptions } from './relay-options.js';

export class Relay implements RelayCellsHost {
  readonly identity: IdentityKey;
  private readonly onionKeys: OnionKeys;
  readonly id: Buffer;
  readonly idHex: string;
  private readonly linkKeys: LinkKeys;
  private readonly keys: KeySchedule;
  private listener: LinkListener | null = null;
  private readonly policy: ExitPolicy;
  private readonly publishedPolicy: string[];
  private readonly log: Logger;
  private readonly registration: DirectoryRegistration;
  /** What the consensus must be signed by (null: a single directory without a configured key). */
  private readonly trust: ConsensusTrust | null;
  private cache: ConsensusCache | null = null;
  readonly limits: RelayLimits;
  /** Answers CREATEs: on this thread at a modest rate, on worker threads past it. */
  readonly handshakes: HandshakePool;
  private readonly cells: RelayCells<Link>;
  /** The onion service descriptors this relay stores (protocol §8.4): blinded keys and ciphertext only. */
  readonly descriptors: DescriptorStore;
  private readonly exit: ExitSide;
  private readonly links: LinkTable;
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

  private constructor(private readonly opts: RelayOptions) {
    this.identity = loadOrCreateIdentity(opts.dataDir);
    this.onionKeys = OnionKeys.load(opts.dataDir);
    const onionKeyPolicy = { ...DEFAULT_ONION_KEY_POLICY, ...opts.onionKeyPolicy };
    if (!(onionKeyPolicy.graceMs > 0 && onionKeyPolicy.graceMs <= onionKeyPolicy.lifetimeMs)) {
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
    this.keys = new KeySchedule({
      onionKeys: this.onionKeys,
      onionKeyPolicy,
      linkKeys: this.linkKeys,
      handshakes: this.handshakes,
      stats: this.stats,
      log: this.log,
      onOnionKeyRotated: () => {
        if (this.registration.address) this.registration.refreshNow();
      },
    });
    this.descriptors = new DescriptorStore({
      count: this.limits.onionDescriptors,
      bytes: this.limits.onionDescriptorBytes,
    });
    this.cells = new RelayCells<Link>({
      host: this,
      limits: this.limits,
      stats: this.stats,
      log: this.log,
      inspect: opts.inspect,
      onion: { store: this.descriptors, limits: this.limits },
    });
    this.exit = new ExitSide({
      policy: this.policy,
      limits: this.limits,
      dnsServers: opts.dnsServers,
      logSensitive: opts.logSensitive ?? false,
      log: this.log,
      stats: this.stats,
      cells: this.cells,
    });
    this.links = new LinkTable({
      limits: this.limits,
      cells: this.cells,
      exit: this.exit,
      stats: this.stats,
      log: this.log,
      me: () => this.linkKeys.current,
    });
  }

  static async start(opts: RelayOptions): Promise<Relay> {
    const relay = new Relay(opts);
    // A key past its lifetime (the relay was off when it was due) is replaced before it is published.
    await relay.keys.maintainOnionKeys();
    await relay.listen();
    relay.keys.scheduleLinkKeys();
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

  /** The address this relay advertises (learned from the directory unless configured). */
  get address(): string {
    return this.registration.address;
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  get isExit(): boolean {
    return this.policy.isExit();
  }

  // `circuits` and `receiveBudgets` are read by tests that look inside a relay.

  /** Every open link and its circuits by id (the cell handling's table). */
  private get circuits(): Map<Link, Map<number, CircuitEntry>> {
    return this.cells.table.circuits;
  }

  /** Per link toward a middle: what this exit lets be in flight toward it (protocol §5.1). */
  private get receiveBudgets() {
    return this.exit.receiveBudgets;
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
    let queuePeakBytes = this.links.closedLinksQueuePeak;
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
    return this.exit.largestReceiveBudget(this.circuits.keys());
  }

  /** What the exit holds for destinations now and at most so far, and its DNS lookups in progress. */
  exitLoad(): { bufferedBytes: number; bufferedPeakBytes: number; streamsShed: number; dnsLookups: number } {
    return this.exit.load();
  }

  /** The onion-service roles (§8.5): what they hold now and their counts since start. */
  onionLoad() {
    const onion = this.cells.onion;
    return {
      ...onion.counts,
      introPoints: onion.introPoints,
      pendingCookies: onion.pendingCookies,
      descriptorsHeld: this.descriptors.size,
      descriptorBytes: this.descriptors.bytes,
      descriptors: this.descriptors.counts,
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
      onLink: (link) => this.links.adopt(link),
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
    this.keys.stop();
    this.links.stopSweeping();
    // A service manager waits at most a few seconds (docs/deploy.md): the withdrawal gets two, and
    // the listener's close (which waits for every connection) runs while the links are being closed.
    await Promise.race([this.registration.withdraw(), new Promise((r) => setTimeout(r, 2000).unref())]);
    const cacheClosing = this.cache?.stop();
    const closing = this.listener?.close();
    this.links.closeAll();
    await this.handshakes.close();
    await closing;
    await cacheClosing;
  }

  // ---- what the cell handling asks of the relay (RelayCellsHost) ----
  // These stay methods of the relay, called on it each time: tests stand in for a hostile relay by
  // replacing them on one instance.

  answerCreate(
    hdata: Buffer,
    done: (err: Error | null, result?: { reply: Buffer; keys: HopKeys }) => void,
  ): void {
    // The pool's answer is keys or an error; neither would be a bug of the pool's.
    this.handshakes.answer(hdata, (err, result) =>
      done(err || !result ? (err ?? new Error('no answer')) : null, result),
    );
  }

  onForwardOpened(circ: RelayCircuit, cell: Cell, opened: ForwardOpen): void {
    this.cells.forwardOpened(circ, cell, opened);
  }

  onExtend(circ: RelayCircuit, data: Buffer): void {
    extendCircuit(
      {
        cells: this.cells,
        links: this.links,
        id: this.id,
        address: this.address,
        log: this.log,
        logSensitive: this.opts.logSensitive ?? false,
      },
      circ,
      data,
    );
  }

  begin(circ: RelayCircuit, streamId: number, data: Buffer): void {
    this.exit.begin(circ, streamId, data);
  }

  streamMessage(circ: RelayCircuit, command: number, streamId: number, data: Buffer, tag: Buffer): void {
    this.exit.streamMessage(circ, command, streamId, data, tag);
  }

  closing(circ: RelayCircuit): void {
    this.exit.closing(circ);
  }

  /** Seals a relay message from this hop and sends it toward the client. Returns its mac. */
  sendBackward(circ: RelayCircuit, command: number, streamId: number, data: Buffer): Buffer {
    return this.cells.table.sendBackward(circ, command, streamId, data);
  }

  /** Forgets a circuit and tells the side(s) that did not already know. */
  teardown(circ: RelayCircuit, reason: number, from: 'prev' | 'next' | null): void {
    this.cells.table.teardown(circ, reason, from);
  }
}
