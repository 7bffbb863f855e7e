// Implements docs/protocol.md §6 and docs/directory-api.md: the directory's behaviour behind the HTTP routes
// (registration, withdrawal, lookups, the cached signed consensus, saving state).
// Just over 400 lines for a reason: every route shares the relay records, the consensus cache and the
// save schedule; the registry (with the listing limits), reachability and voting are modules of their own.
import { signConsensus } from '../core/documents.js';
import type { IdentityKey } from '../crypto/keys.js';
import { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { MIN_RELAY_VERSION, versionAtLeast } from '../version.js';
import type { VoteOnion } from '../wire/authority-docs.js';
import type { Consensus, ConsensusRelay, ConsensusView } from '../wire/directory-docs.js';
import {
  buildConsensus,
  type ConsensusTiming,
  consensusEntry,
  nextSerial,
  selectWithinBudget,
} from './consensus.js';
import { DirectoryError } from './errors.js';
import type { ReachabilityCheck } from './reachability.js';
import type { Registry, RelayRecord } from './registry.js';
import { DEFAULT_ONION_SETTINGS, RingValues } from './ring-values.js';
import { renderStatusPage } from './status-page.js';
import type { DirectoryStore } from './store.js';
import type { AuthorityVoting } from './voting.js';

export type { ReachabilityCheck } from './reachability.js';

export interface RelayInfo {
  id: string;
  nickname: string;
  address: string;
  port: number;
  identityKey: string;
  onionKey: string;
}

interface CachedConsensus {
  version: number;
  consensus: Consensus;
  /** The signed envelope, serialised once and served as is. */
  json: string;
  /** How long building, signing and serialising it took. */
  buildMs: number;
}

/** A consensus that took longer than this to build is not rebuilt for every change (see current()). */
const SLOW_BUILD_MS = 50;
const REBUILD_SPACING = 10;
/** A state save that took longer than this is not repeated for every new relay (see StateSaver.soon). */
const SLOW_SAVE_MS = 50;

/**
 * Saves state off the request path: at most one write in flight, later requests coalesce into one
 * follow-up write. `now()` callers wait for a write that includes the state as of the call.
 */
class StateSaver {
  private inFlight: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** How long the last write took (ms), including its fsync. */
  private lastSaveMs = 0;

  constructor(
    private readonly save: () => Promise<void>,
    private readonly delayMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  now(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.inFlight) return this.run();
    if (!this.queued) {
      this.queued = this.inFlight.then(
        () => {
          this.queued = null;
          return this.run();
        },
        () => {
          this.queued = null;
          return this.run();
        },
      );
    }
    return this.queued;
  }

  /** A write soon: for changes losing which costs nothing (refresh times, serials). */
  later(): void {
    if (this.timer) return;
    // However many changes arrive, writing takes at most about a tenth of the directory's time.
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.now().catch(this.onError);
      },
      Math.max(this.delayMs, REBUILD_SPACING * this.lastSaveMs),
    );
    this.timer.unref();
  }

  /**
   * A write the caller waits for while writes are quick; once one takes longer than SLOW_SAVE_MS (a
   * state of thousands of relays), a write at most once per ten times that, not waited for, so a flood
   * of registrations cannot keep the directory busy rewriting its state.
   */
  async soon(): Promise<void> {
    if (this.lastSaveMs <= SLOW_SAVE_MS) return this.now();
    this.later();
  }

  private run(): Promise<void> {
    const started = performance.now();
    const p = this.save().finally(() => {
      this.lastSaveMs = performance.now() - started;
      if (this.inFlight === p) this.inFlight = null;
    });
    this.inFlight = p;
    return p;
  }

  async flush(): Promise<void> {
    await this.now();
  }
}

export interface DirectoryServiceOptions extends ConsensusTiming {
  key: IdentityKey;
  registry: Registry;
  /** The onion-service ring values it draws and keeps (§8.3); default: DEFAULT_ONION_SETTINGS. */
  ring?: RingValues;
  store: DirectoryStore;
  serial: number;
  logger: Logger;
  reachabilityCheck?: ReachabilityCheck;
  saveDelayMs?: number;
  now?: () => number;
}

function notAnAuthority(): DirectoryError {
  return new DirectoryError(
    'ALLIUM_HTTP_NOT_FOUND',
    404,
    'this directory is not one authority of a set (started without --authorities): it neither votes nor signs with others',
  );
}

export class DirectoryService {
  readonly key: IdentityKey;
  readonly publicKeyB64: string;
  readonly directoryId: string;
  private readonly registry: Registry;
  private readonly ring: RingValues;
  private readonly log: Logger;
  private readonly timing: ConsensusTiming;
  private readonly reachabilityCheck: ReachabilityCheck | undefined;
  private readonly saver: StateSaver;
  private readonly clock: () => number;
  private serial: number;
  private cache: CachedConsensus | null = null;
  /** Set when this directory is one authority of a set: the consensus is then the voted one (§6.8). */
  voting: AuthorityVoting | null = null;
  /** Counters for the metrics endpoint (docs/metrics.md). */
  readonly stats = {
    registrations: { new: 0, changed: 0, refreshed: 0, unreachable: 0 },
    consensusFetches: 0,
    /** Registrations refused by the per-address limits or because the consensus was full. */
    refused: { addressLimit: 0, full: 0 },
    /** Relays the last consensus left out to stay under its cap. */
    consensusLeftOut: 0,
  };

  constructor(opts: DirectoryServiceOptions) {
    this.key = opts.key;
    this.publicKeyB64 = opts.key.publicKey.toString('base64');
    this.directoryId = opts.key.id.toString('hex');
    this.registry = opts.registry;
    this.ring = opts.ring ?? new RingValues(DEFAULT_ONION_SETTINGS);
    this.log = opts.logger;
    this.timing = { freshMs: opts.freshMs, validMs: opts.validMs };
    this.reachabilityCheck = opts.reachabilityCheck;
    this.serial = opts.serial;
    this.clock = opts.now ?? Date.now;
    const store = opts.store;
    this.saver = new StateSaver(
      () =>
        store.saveState({ serial: this.serial, ...this.registry.snapshot(), onion: this.ring.snapshot() }),
      opts.saveDelayMs ?? 1000,
      (err) => this.log.error({ err }, 'could not save the directory state'),
    );
  }

  /**
   * POST /v1/relays from `source` (the client's address, for the per-address limits). Resolves once the
   * listing is saved if it added or changed a relay.
   */
  async register(
    json: unknown,
    source?: string,
  ): Promise<{ id: string; result: 'new' | 'changed' | 'refreshed' }> {
    // Relays past their TTL must not count against the limits of the ones replacing them.
    this.sweep();
    const { envelope, descriptor: d } = this.counted(() => this.registry.check(json, this.clock(), source));
    if (!versionAtLeast(d.version, MIN_RELAY_VERSION)) {
      throw new DirectoryError(
        'ALLIUM_RELAY_VERSION',
        400,
        `this directory lists relays of release ${MIN_RELAY_VERSION.join('.')} or later, and the relay runs ${d.version}: ` +
          `clients of ${MIN_RELAY_VERSION.join('.')} and later cannot read the cells of an older release; upgrade the relay`,
      );
    }
    const held = this.registry.get(d.id, this.clock());
    const moved =
      !held ||
      held.descriptor.address !== d.address ||
      held.descriptor.port !== d.port ||
      held.descriptor.onionKey !== d.onionKey;
    if (moved && this.reachabilityCheck) {
      try {
        await this.reachabilityCheck(d);
      } catch (err) {
        this.stats.registrations.unreachable++;
        const why = err instanceof Error ? err.message : String(err);
        this.log.warn(
          { id: d.id, address: d.address, port: d.port, reason: why },
          'relay not reachable: not listed',
        );
        throw new DirectoryError(
          'ALLIUM_RELAY_UNREACHABLE',
          400,
          `not reachable from the directory at ${d.address}:${d.port}: ${why}`,
          { cause: err },
        );
      }
    }
    const result = this.counted(() => this.registry.commit(envelope, d, this.clock(), source));
    this.stats.registrations[result]++;
    if (result === 'refreshed') {
      this.saver.later();
    } else {
      this.log.info(
        { id: d.id, nickname: d.nickname, address: d.address, port: d.port },
        result === 'new' ? 'relay listed' : 'relay descriptor changed',
      );
      await this.saver.soon();
    }
    return { id: d.id, result };
  }

  private counted<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (err instanceof DirectoryError && err.code === ErrorCode.RELAY_ADDRESS_LIMIT)
        this.stats.refused.addressLimit++;
      if (err instanceof DirectoryError && err.code === ErrorCode.DIRECTORY_FULL) this.stats.refused.full++;
      throw err;
    }
  }

  /** DELETE /v1/relays/:id. */
  async withdraw(id: string, json: unknown): Promise<void> {
    this.registry.withdraw(id, json, this.clock());
    this.log.info({ id }, 'relay withdrew itself');
    await this.saver.now();
  }

  relay(id: string): RelayInfo | undefined {
    const r = this.registry.get(id, this.clock());
    if (!r) return undefined;
    const d = r.descriptor;
    return {
      id: d.id,
      nickname: d.nickname,
      address: d.address,
      port: d.port,
      identityKey: d.identityKey,
      onionKey: d.onionKey,
    };
  }

  /**
   * Draws the ring values of this period and the next ahead of their publication and saves them, so
   * a restart publishes the same values (§8.3). Called at start and with every sweep.
   */
  prepareRingValues(): Promise<void> {
    return this.ring.prepare(this.clock()) ? this.saver.now() : Promise.resolve();
  }

  /** A value drawn on the spot (prepare had not run: a clock that jumped) is saved at once. */
  private saveDrawn(drew: boolean): void {
    if (drew) this.saver.now().catch((err) => this.log.error({ err }, 'could not save the directory state'));
  }

  /** An authority's onion part of its vote for the period from `validAfter` (§6.7). */
  voteOnion(validAfter: number): VoteOnion {
    const { onion, drew } = this.ring.voteOnion(validAfter);
    this.saveDrawn(drew);
    return onion;
  }

  /** An authority keeps the ring values of a consensus a majority signed (§6.8 rule 7). */
  keepSignedRingValues(consensus: ConsensusView): void {
    this.saveDrawn(this.ring.keepSigned(consensus));
  }

  /** Drops relays past their TTL; called on a timer and before every consensus build. */
  sweep(): void {
    this.prepareRingValues().catch((err) => this.log.error({ err }, 'could not save the directory state'));
    const dropped = this.registry.sweep(this.clock());
    for (const r of dropped) {
      this.log.info(
        { id: r.descriptor.id, nickname: r.descriptor.nickname },
        'relay dropped: not refreshed within the TTL',
      );
    }
    if (dropped.length > 0) this.saver.later();
  }

  /** The current consensus, rebuilt when the listed set changed or it passed freshUntil. */
  current(): CachedConsensus {
    this.sweep();
    const now = this.clock();
    const c = this.cache;
    // A reveal or a new period (§8.3) changes what the consensus publishes: rebuilt then too.
    if (c && now < c.consensus.freshUntil && this.ring.publishesSame(c.consensus, now)) {
      if (c.version === this.registry.version) return c;
      // A large consensus is rebuilt at most once per ten times its build took, so registrations
      // arriving between fetches cannot make every fetch pay for a rebuild (at most a tenth of the
      // directory's time goes to building). A small one, built in a few ms, is rebuilt at once.
      if (c.buildMs > SLOW_BUILD_MS && now - c.consensus.validAfter < REBUILD_SPACING * c.buildMs) return c;
    }
    const started = performance.now();
    this.serial = nextSerial(this.serial, now);
    // Registrations are refused past the budget; this also holds for a state file loaded from disk.
    const { listed, dropped } = selectWithinBudget(this.registry.live(now), this.registry.relaysBudget);
    if (dropped.length > 0 && dropped.length !== this.stats.consensusLeftOut) {
      this.log.warn(
        { leftOut: dropped.length, listed: listed.length },
        'the consensus is full: the most recently listed relays are left out',
      );
    }
    this.stats.consensusLeftOut = dropped.length;
    const flags = new Map(listed.map((r) => [r.descriptor, r.flags]));
    const { onion, drew } = this.ring.consensusOnion(now);
    this.saveDrawn(drew);
    const consensus = buildConsensus(
      listed.map((r) => r.descriptor),
      {
        ...this.timing,
        serial: this.serial,
        now,
        directoryKey: this.publicKeyB64,
        flagsOf: (d) => flags.get(d),
        listedSinceOf: (d) => this.registry.listedSince(d.id),
        onion,
      },
    );
    let json: string;
    try {
      json = JSON.stringify(signConsensus(this.key, consensus));
    } catch (err) {
      // The directory's own fault, not the client's: keep serving the last consensus while it is valid.
      this.log.error({ err, relays: consensus.relays.length }, 'could not sign the consensus');
      if (c && now < c.consensus.validUntil) return c;
      throw new DirectoryError(
        'ALLIUM_CONSENSUS_UNAVAILABLE',
        500,
        'the directory could not build its consensus; see its log',
        { cause: err },
      );
    }
    this.cache = { version: this.registry.version, consensus, json, buildMs: performance.now() - started };
    this.saver.later();
    this.log.debug({ serial: consensus.serial, relays: consensus.relays.length }, 'consensus built');
    return this.cache;
  }

  consensusJson(): string {
    this.stats.consensusFetches++;
    if (this.voting) {
      const served = this.voting.served();
      if (!served) {
        throw new DirectoryError(
          'ALLIUM_CONSENSUS_UNAVAILABLE',
          503,
          `no valid consensus: ${this.voting.unavailableReason()}; see the status page`,
        );
      }
      return served.json;
    }
    return this.current().json;
  }

  /** GET /v1/authority/votes/:validAfter: the votes this authority holds for that period. */
  authorityVotes(validAfter: number): { votes: unknown[]; current: number } {
    if (!this.voting) throw notAnAuthority();
    return this.voting.votesFor(validAfter);
  }

  /** GET /v1/authority/signature/:validAfter: its signature of the consensus it computed then. */
  authoritySignature(validAfter: number): { digest: string; signature: unknown } {
    if (!this.voting) throw notAnAuthority();
    const sig = this.voting.signatureFor(validAfter);
    if (!sig) {
      throw new DirectoryError(
        'ALLIUM_CONSENSUS_UNAVAILABLE',
        404,
        `this authority has computed no consensus for the period from ${new Date(validAfter).toISOString()}`,
      );
    }
    return sig;
  }

  /** What this authority votes for (§6.7): the relays it checked itself, within the size budget. */
  voteRelays(now: number): ConsensusRelay[] {
    const { listed } = selectWithinBudget(this.registry.live(now), this.registry.relaysBudget);
    return listed
      .map((r) => consensusEntry(r.descriptor, r.flags, this.registry.listedSince(r.descriptor.id)))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  liveRelays(): RelayRecord[] {
    return this.registry.live(this.clock());
  }

  statusHtml(): string {
    const { consensus } = this.current();
    return renderStatusPage({
      voting: this.voting?.status(),
      relays: this.liveRelays(),
      consensus,
      directoryId: this.directoryId,
      now: this.clock(),
      relayTtlMs: this.registry.ttlMs,
      reachabilityCheck: this.reachabilityCheck !== undefined,
    });
  }

  flush(): Promise<void> {
    return this.saver.flush();
  }
}
