// Implements docs/protocol.md §6 (the directory role): loads its data directory, serves the HTTP API,
// expires relays that stop refreshing.
import { authorityLabel } from '../core/authority-set.js';
import { type Logger, silentLogger } from '../log.js';
import type { HttpLimitStats } from '../net/http-limits.js';
import { type HttpServerHandle, hostForUrl } from '../net/http-server.js';
import type { AuthoritySet } from '../wire/authority-docs.js';
import { MAX_ONION_PERIOD_SECONDS, MIN_ONION_PERIOD_SECONDS } from '../wire/directory-docs.js';
import { loadOrCertifySigner } from './authority-keys.js';
import { DirectoryError } from './errors.js';
import { type HttpServerLimits, serveDirectoryHttp } from './http.js';
import { httpPeerApi } from './peer-api.js';
import { RateLimiter, type RateLimitOptions } from './rate-limit.js';
import { linkReachabilityCheck, type ReachabilityCheck } from './reachability.js';
import { type ListingLimits, Registry } from './registry.js';
import { DEFAULT_ONION_SETTINGS, RingValues } from './ring-values.js';
import { DirectoryService } from './service.js';
import { DirectoryStore } from './store.js';
import { AuthorityVoting } from './voting.js';

export interface DirectoryOptions {
  /** Holds directory-key (mode 0600, the 32-byte Ed25519 seed as hex) and relays.json. */
  dataDir: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** A relay not refreshed within this drops out (default 180_000). */
  relayTtlMs?: number;
  /** Default 60_000. */
  consensusFreshMs?: number;
  /** Default 3 h. */
  consensusValidMs?: number;
  /** Default silentLogger. */
  logger?: Logger;
  /**
   * Run before a new or moved relay is listed; reject to keep it out. Default: connect back and complete
   * a link handshake proving the relay's identity (linkReachabilityCheck). `false` lists without checking.
   */
  reachabilityCheck?: ReachabilityCheck | false;
  /** Per-address request rate limit (429 beyond it). Default 10/s with bursts of 60; `false`: none. */
  rateLimit?: RateLimitOptions | false;
  /**
   * Relays listed per address (default 2 per public address, 32 per loopback or private one) and the
   * consensus's byte budget (default its 32 MiB cap less a header reserve; tests lower it).
   */
  listing?: ListingLimits;
  /** Slow or stalled HTTP clients (defaults: DEFAULT_DIRECTORY_HTTP_LIMITS). */
  http?: Partial<HttpServerLimits>;
  /**
   * Run as one authority of this set (its identity key must be this directory's key): vote, compute
   * the consensus with the others and serve it with their signatures (protocol.md §6.5-§6.9).
   */
  authorities?: AuthoritySet;
  /** Length of a voting period (default DEFAULT_VOTING_INTERVAL_MS). */
  votingIntervalMs?: number;
  /** This authority's clock (default Date.now): tests run one whose clock is off. */
  now?: () => number;
  /**
   * Length of an onion-service period in seconds (§8.3), MIN_ONION_PERIOD_SECONDS to
   * MAX_ONION_PERIOD_SECONDS; default 86400. Test networks use a few minutes.
   */
  onionPeriodSeconds?: number;
  /**
   * Leave relays listed after a period's ring value was published off that period's ring (default
   * true); test networks, whose relays are all new, turn it off.
   */
  onionOnlyListedBeforeReveal?: boolean;
}

export const DEFAULT_VOTING_INTERVAL_MS = 60_000;

export const DEFAULT_RELAY_TTL_MS = 180_000;
export const DEFAULT_CONSENSUS_FRESH_MS = 60_000;
export const DEFAULT_CONSENSUS_VALID_MS = 3 * 3600_000;

export class Directory {
  readonly url: string;
  readonly publicKey: Buffer;
  /** Hex SHA-256 of the public key. */
  readonly id: string;
  readonly dataDir: string;
  /** The per-address request limiter (its `limited` counts 429s), or null when disabled. */
  rateLimiter: RateLimiter | null = null;
  /** What the HTTP port's timeouts and connection cap refused. */
  httpStats: HttpLimitStats = { refused: 0, timeouts: 0 };
  private readonly http: HttpServerHandle;
  /** The directory's state and counters (read by metrics and the status page). */
  readonly service: DirectoryService;
  private readonly sweepTimer: NodeJS.Timeout;
  /** Voting with the other authorities of the set, when started with one. */
  voting: AuthorityVoting | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(
    http: HttpServerHandle,
    service: DirectoryService,
    url: string,
    dataDir: string,
    sweepTimer: NodeJS.Timeout,
  ) {
    this.http = http;
    this.service = service;
    this.url = url;
    this.publicKey = service.key.publicKey;
    this.id = service.directoryId;
    this.dataDir = dataDir;
    this.sweepTimer = sweepTimer;
  }

  static async start(opts: DirectoryOptions): Promise<Directory> {
    const log = opts.logger ?? silentLogger;
    const ttl = opts.relayTtlMs ?? DEFAULT_RELAY_TTL_MS;
    const freshMs = opts.consensusFreshMs ?? DEFAULT_CONSENSUS_FRESH_MS;
    const validMs = opts.consensusValidMs ?? DEFAULT_CONSENSUS_VALID_MS;
    if (!(ttl > 0 && freshMs > 0 && validMs >= freshMs)) {
      throw new DirectoryError(
        'ALLIUM_DIRECTORY_CONFIG',
        0,
        'relayTtlMs and consensusFreshMs must be positive, and consensusValidMs at least consensusFreshMs',
      );
    }

    const onion = {
      periodSeconds: opts.onionPeriodSeconds ?? DEFAULT_ONION_SETTINGS.periodSeconds,
      onlyListedBeforeReveal:
        opts.onionOnlyListedBeforeReveal ?? DEFAULT_ONION_SETTINGS.onlyListedBeforeReveal,
    };
    if (
      !Number.isInteger(onion.periodSeconds) ||
      onion.periodSeconds < MIN_ONION_PERIOD_SECONDS ||
      onion.periodSeconds > MAX_ONION_PERIOD_SECONDS
    ) {
      throw new DirectoryError(
        'ALLIUM_DIRECTORY_CONFIG',
        0,
        `the onion-service period must be whole seconds from ${MIN_ONION_PERIOD_SECONDS} to ${MAX_ONION_PERIOD_SECONDS}, got ${onion.periodSeconds}`,
      );
    }

    const store = new DirectoryStore(opts.dataDir);
    const leftovers = await store.init();
    if (leftovers > 0)
      log.info({ removed: leftovers }, 'removed temporary files left by an interrupted save');
    const { key, created, loosePermissions } = await store.loadOrCreateKey();
    if (created) log.info({ path: store.keyPath }, 'made a new directory key');
    // Refused as a relay refuses its own: whoever can read the key can sign consensuses.
    if (loosePermissions)
      throw new DirectoryError(
        'ALLIUM_KEY_PERMISSIONS',
        0,
        `key file ${store.keyPath} is readable by others; run: chmod 600 ${store.keyPath}`,
      );
    const self = opts.authorities?.authorities.find((a) => a.id === key.id.toString('hex'));
    if (opts.authorities && !self) {
      throw new DirectoryError(
        'ALLIUM_AUTHORITY_SET_INVALID',
        0,
        `this directory's identity key (id ${key.id.toString('hex')}, in ${store.keyPath}) is not in the authority set: ` +
          'add it to the set file (`allium directory --print-authority` prints its entry), or start with the data directory of one of its authorities',
      );
    }
    const signer = opts.authorities
      ? await loadOrCertifySigner(opts.dataDir, key, (opts.now ?? Date.now)())
      : null;
    if (signer?.renewed) log.info('certified a new signing key');
    const state = await store.loadState();
    const registry = new Registry(ttl, opts.listing);
    registry.load(state);

    const ring = new RingValues(onion);
    ring.load(state.onion);
    const service = new DirectoryService({
      key,
      registry,
      ring,
      store,
      serial: state.serial,
      logger: log,
      freshMs,
      validMs,
      now: opts.now,
      reachabilityCheck:
        opts.reachabilityCheck === false ? undefined : (opts.reachabilityCheck ?? linkReachabilityCheck()),
    });
    // Before anyone can fetch a consensus: the values it will publish are on disk first.
    await service.prepareRingValues();
    const rateLimiter = opts.rateLimit === false ? null : new RateLimiter(opts.rateLimit ?? {});
    const httpStats: HttpLimitStats = { refused: 0, timeouts: 0 };
    const host = opts.host ?? '127.0.0.1';
    const http = await serveDirectoryHttp(
      service,
      log,
      { host, port: opts.port ?? 0 },
      { rateLimiter, server: opts.http, stats: httpStats },
    );
    const url = `http://${hostForUrl(host)}:${http.port}`;

    // Sweep often enough that a dead relay leaves within about 1/4 TTL after it expires.
    const sweepTimer = setInterval(() => service.sweep(), Math.min(Math.max(ttl / 4, 50), 10_000));
    sweepTimer.unref();
    log.info(
      {
        url,
        id: service.directoryId,
        relays: registry.size,
        reachabilityCheck: opts.reachabilityCheck !== false,
      },
      'directory listening',
    );
    const dir = new Directory(http, service, url, opts.dataDir, sweepTimer);
    if (opts.authorities && self && signer) {
      const intervalMs = opts.votingIntervalMs ?? DEFAULT_VOTING_INTERVAL_MS;
      const voting = new AuthorityVoting({
        set: opts.authorities,
        self: self.id,
        signer: signer.signer,
        intervalMs,
        freshMs,
        validMs,
        relays: (now) => service.voteRelays(now),
        onion: (validAfter) => service.voteOnion(validAfter),
        onSigned: (consensus) => service.keepSignedRingValues(consensus),
        peers: httpPeerApi(Math.max(500, Math.min(10_000, Math.floor(intervalMs / 4)))),
        logger: log,
        now: opts.now,
      });
      service.voting = voting;
      dir.voting = voting;
      voting.start();
      log.info(
        { authority: authorityLabel(self), authorities: opts.authorities.authorities.length, intervalMs },
        'voting with the other authorities',
      );
    }
    dir.rateLimiter = rateLimiter;
    dir.httpStats = httpStats;
    return dir;
  }

  /** Stops listening, closes connections, and saves state. Safe to call twice. */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = (async () => {
        clearInterval(this.sweepTimer);
        this.voting?.stop();
        try {
          await this.http.close();
        } finally {
          await this.service.flush();
        }
      })();
    }
    return this.stopping;
  }
}
