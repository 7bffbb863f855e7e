// Implements docs/protocol.md §8 (the service role): a server reachable through the network at an
// address that names its key, with no public address or open port of its own. Its parts:
//   service-key.ts            its key in its data directory (the address)
//   intro-points.ts           its introduction points, kept up and replaced
//   descriptor-publisher.ts   its descriptor, sealed per period and stored on the ring
//   introductions.ts          INTRODUCE2 to a joined rendezvous circuit
//   service-streams.ts        streams from clients to the local server
// An AlliumClient of its own keeps the consensus and the guards and builds every circuit.

import { AlliumClient } from '../client/client.js';
import { consensusPeriod, nextPeriod, ringValueFor } from '../core/onion-ring.js';
import type { IdentityKey } from '../crypto/keys.js';
import { onionAddressOf } from '../crypto/onion-address.js';
import { type Logger, silentLogger } from '../log.js';
import { DescriptorPublisher, type PeriodOutcome } from './descriptor-publisher.js';
import { IntroPoints } from './intro-points.js';
import { type IntroductionCounts, Introductions, noIntroductions } from './introductions.js';
import { ServiceError } from './service-error.js';
import { loadOrCreateServiceKey } from './service-key.js';
import { type ServiceOptions, serviceSettings } from './service-options.js';
import { ServiceStreams } from './service-streams.js';

/** A change of introduction points is published this long after it, so changes together go in one round. */
const CHANGE_DEBOUNCE_MS = 250;
/** How often the consensus is looked at for a new period (or the next period's ring value). */
const PERIOD_CHECK_MS = 30_000;
/** An introduction point is replaced after a day (§8.8), as after 16384 introductions. */
const INTRO_POINT_LIFETIME_MS = 24 * 3600_000;
/** A round that left a replica without the descriptor is tried again after this, doubling up to the interval. */
const PUBLISH_RETRY_MS = 15_000;

export interface ServiceStats {
  /** Introduction points in service now, and lost and replaced so far. */
  introPoints: number;
  introPointsLost: number;
  /** Rounds of storing the descriptor, and stores that took it (or held it already). */
  descriptorRounds: number;
  descriptorsStored: number;
  introductions: IntroductionCounts;
  /** Streams to the local server, and BEGINs refused. */
  streams: number;
  streamsRefused: number;
  /**
   * Bytes held for the local server now, all circuits together (with the kernel's send buffers),
   * the most so far, and streams closed because they were past maxBufferBytes (the largest first).
   */
  bufferedBytes: number;
  bufferedPeakBytes: number;
  streamsShed: number;
}

export class OnionService {
  readonly address: string;
  /**
   * Resolves once the introduction points are up and the descriptor is held by at least one store of
   * each replica (clients can find and reach the service); rejects with why not. The service keeps
   * trying either way, until close().
   */
  readonly ready: Promise<void>;
  private client: AlliumClient | null = null;
  private points: IntroPoints | null = null;
  private publisher: DescriptorPublisher | null = null;
  private introductions: Introductions | null = null;
  private streams: ServiceStreams | null = null;
  private readonly log: Logger;
  private readonly timers: NodeJS.Timeout[] = [];
  private changeTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = PUBLISH_RETRY_MS;
  private publishing = false;
  private closed = false;

  /** Loads (or makes) the key and starts the service; `ready` says when clients can reach it. */
  static async start(opts: ServiceOptions): Promise<OnionService> {
    const settings = serviceSettings(opts);
    const identity = await loadOrCreateServiceKey(opts.dataDir);
    return new OnionService(opts, settings, identity);
  }

  private constructor(
    private readonly opts: ServiceOptions,
    private readonly settings: ReturnType<typeof serviceSettings>,
    private readonly identity: IdentityKey,
  ) {
    this.log = opts.logger ?? silentLogger;
    this.address = onionAddressOf(identity.publicKey);
    this.ready = this.run();
    this.ready.catch(() => {}); // a caller that never awaits it must not see an unhandled rejection
  }

  private async run(): Promise<void> {
    const client = await AlliumClient.start({ ...this.opts, spareCircuits: this.opts.spareCircuits ?? 0 });
    this.client = client;
    if (this.closed) {
      await client.close();
      throw new ServiceError('ALLIUM_CLIENT_CLOSED', 'the service was closed while starting');
    }
    const log = this.log;
    this.streams = new ServiceStreams(
      this.settings.target,
      this.settings.virtualPort,
      log,
      this.settings.maxBufferBytes,
    );
    const points = new IntroPoints({
      client,
      want: this.settings.introPoints,
      log,
      onIntroduce: (point, data) => void this.introductions?.introduce(point, data),
      onChange: () => this.changed(),
    });
    this.points = points;
    const publisher = new DescriptorPublisher({
      client,
      identity: this.identity,
      log,
      points: () => points.active,
    });
    this.publisher = publisher;
    this.introductions = new Introductions({
      client,
      streams: this.streams,
      log,
      subcredentials: () => publisher.subcredentials(),
      exhausted: (point) => points.retire(point),
    });
    const up = await points.fill();
    // From here on a change of points publishes (one that comes up later, after a failed start, too).
    this.publishing = true;
    this.startTimers();
    if (up === 0) {
      throw new ServiceError(
        'ALLIUM_SERVICE_INTRO',
        'no relay took an introduction point; the service keeps trying',
      );
    }
    let outcomes: PeriodOutcome[];
    try {
      outcomes = await publisher.publish();
    } catch (err) {
      this.retrySoon();
      throw err;
    }
    const current = outcomes[0];
    if (!current.everyReplica) {
      this.retrySoon();
      throw new ServiceError(
        'ALLIUM_SERVICE_PUBLISH',
        `the descriptor reached ${current.stored} of ${current.asked} stores, not one of each replica; the service tries again`,
      );
    }
    this.logPublished(outcomes);
  }

  private logPublished(outcomes: PeriodOutcome[]): void {
    this.log.info(
      {
        address: this.address,
        introPoints: this.points?.active.length ?? 0,
        stores: outcomes.map((o) => `${o.stored}/${o.asked}`).join(' '),
      },
      'onion service descriptor published',
    );
  }

  /** Publishes again, logging the outcome (timers and changes: nobody awaits it). */
  private republish(): void {
    if (this.closed || !this.publishing || !this.publisher) return;
    this.publisher.publish().then(
      (outcomes) => {
        this.logPublished(outcomes);
        if (outcomes.every((o) => o.everyReplica)) this.retryMs = PUBLISH_RETRY_MS;
        else this.retrySoon();
      },
      (err: Error) => {
        this.log.warn({ err: err.message }, 'publishing the onion service descriptor failed');
        this.retrySoon();
      },
    );
  }

  /** A round fell short: again sooner than the next interval (stores down, or just restarted). */
  private retrySoon(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.republish();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.settings.republishIntervalMs, this.retryMs * 2);
  }

  private changed(): void {
    if (this.changeTimer || !this.publishing) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      this.republish();
    }, CHANGE_DEBOUNCE_MS);
    this.changeTimer.unref();
  }

  private startTimers(): void {
    if (this.closed) return;
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.settings.republishIntervalMs, () => this.republish());
    every(Math.min(PERIOD_CHECK_MS, this.settings.republishIntervalMs), () => {
      this.points?.retireOlderThan(INTRO_POINT_LIFETIME_MS);
      if (this.newPeriod()) this.republish();
    });
  }

  /** The consensus is of a period not yet published, or now reveals the next period's ring value. */
  private newPeriod(): boolean {
    const consensus = this.client?.currentConsensus;
    const published = this.publisher?.published;
    if (!consensus || !published) return false;
    const p = consensusPeriod(consensus);
    if (!p) return false;
    return (
      p.number !== published.period ||
      (ringValueFor(consensus, nextPeriod(p)) !== null) !== published.withNext
    );
  }

  stats(): ServiceStats {
    return {
      introPoints: this.points?.active.length ?? 0,
      introPointsLost: this.points?.counts.lost ?? 0,
      descriptorRounds: this.publisher?.counts.rounds ?? 0,
      descriptorsStored: this.publisher?.counts.stored ?? 0,
      introductions: { ...(this.introductions?.counts ?? noIntroductions()) },
      streams: this.streams?.stats.streams ?? 0,
      streamsRefused: this.streams?.stats.streamsRefused ?? 0,
      bufferedBytes: this.streams?.buffers.total ?? 0,
      bufferedPeakBytes: this.streams?.buffers.peak ?? 0,
      streamsShed: this.streams?.buffers.closedStreams ?? 0,
    };
  }

  /**
   * The introduction points go first (clients are refused at once from then on), then every
   * circuit and stream with the service's client.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    if (this.changeTimer) clearTimeout(this.changeTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.points?.close();
    this.introductions?.close();
    await this.client?.close();
  }

  /** For tests that look inside a service. */
  get internals(): {
    client: AlliumClient | null;
    points: IntroPoints | null;
    introductions: Introductions | null;
    streams: ServiceStreams | null;
  } {
    return {
      client: this.client,
      points: this.points,
      introductions: this.introductions,
      streams: this.streams,
    };
  }
}
