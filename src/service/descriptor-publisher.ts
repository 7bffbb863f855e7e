// Implements docs/protocol.md §8.3 and §8.4 at the service: its descriptor sealed for the current
// period and, once the next period's ring value is out, for the next one, and stored at every relay
// the ring assigns it (spread STORE_SPREAD), each over a 3-hop circuit of its own ending at the store.

import type { AlliumClient } from '../client/client.js';
import { ringValueRevealMs } from '../core/onion-period.js';
import { consensusPeriod, nextPeriod, ringValueFor, storesFor } from '../core/onion-ring.js';
import { STORE_SPREAD } from '../core/onion-stores.js';
import { blindSecret, type Period, subcredential } from '../crypto/key-blinding.js';
import type { IdentityKey } from '../crypto/keys.js';
import { MAX_DESCRIPTOR_LIFETIME_S, sealDescriptor } from '../crypto/onion-descriptor.js';
import type { Logger } from '../log.js';
import { DestroyReason, RelayCommand } from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import {
  DescriptorStoreStatus,
  decodeDescriptorStored,
  encodeDescriptorStore,
} from '../wire/onion-messages.js';
import type { IntroPoint } from './intro-points.js';
import { ServiceError } from './service-error.js';

/** Stores asked at once: each costs a circuit, and a service stores 8 or 16 descriptors a round. */
const STORES_AT_ONCE = 4;
/** Periods whose subcredential still opens introductions: the last published, the one before, the next. */
const KEPT_PERIODS = 3;

/** How one period's descriptor fared. */
export interface PeriodOutcome {
  period: Period;
  revision: number;
  /** Stores that hold it now (stored, or held this revision or a later one already). */
  stored: number;
  asked: number;
  /** Every replica of the ring has at least one store that holds it: clients will find it. */
  everyReplica: boolean;
}

export interface DescriptorPublisherOptions {
  client: AlliumClient;
  identity: IdentityKey;
  log: Logger;
  /** The introduction points to name. */
  points(): IntroPoint[];
}

export class DescriptorPublisher {
  /** Subcredentials of the periods descriptors were sealed for, newest last (§8.6: the INTRODUCE keys). */
  private readonly subs = new Map<number, Buffer>();
  private readonly lastRevision = new Map<number, number>();
  private running: Promise<PeriodOutcome[]> | null = null;
  private again = false;
  readonly counts = { rounds: 0, stored: 0, refused: 0, failed: 0 };
  /** The current period and whether the next one was published too, at the last round. */
  published: { period: number; withNext: boolean } | null = null;

  constructor(private readonly opts: DescriptorPublisherOptions) {}

  /** The subcredentials an INTRODUCE2 may be made under, the current period's first. */
  subcredentials(): Buffer[] {
    const current = this.published?.period;
    const all = [...this.subs.entries()];
    all.sort(([a], [b]) => (a === current ? -1 : b === current ? 1 : b - a));
    return all.map(([, sub]) => sub);
  }

  /**
   * Stores the descriptor again (a round already under way is followed by one more, so the newest
   * points are always published); resolves with how the current period's (and the next's) fared.
   */
  publish(): Promise<PeriodOutcome[]> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.round().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        void this.publish().catch((err) =>
          this.opts.log.warn({ err: err.message }, 'publishing the descriptor failed'),
        );
      }
    });
    return this.running;
  }

  private async round(): Promise<PeriodOutcome[]> {
    this.counts.rounds++;
    const consensus = this.opts.client.currentConsensus;
    if (!consensus) throw new ServiceError('ALLIUM_CLIENT_NO_CONSENSUS', 'no valid consensus to publish in');
    const current = consensusPeriod(consensus);
    if (!current || !ringValueFor(consensus, current)) {
      throw new ServiceError(
        'ALLIUM_ONION_NO_RING',
        "the consensus carries no onion-service ring for this period: the directory's release predates onion services",
      );
    }
    const points = this.opts.points();
    if (points.length === 0) {
      throw new ServiceError('ALLIUM_SERVICE_INTRO', 'no introduction point is up: nothing to publish');
    }
    const next = nextPeriod(current);
    const periods = ringValueFor(consensus, next) ? [current, next] : [current];
    this.published = { period: current.number, withNext: periods.length > 1 };
    const outcomes = await Promise.all(periods.map((p) => this.publishFor(p, points)));
    return outcomes;
  }

  private async publishFor(period: Period, points: IntroPoint[]): Promise<PeriodOutcome> {
    const consensus = this.opts.client.currentConsensus!;
    const seed = this.opts.identity.seed();
    const blinded = blindSecret(seed, period);
    seed.fill(0);
    this.keepSubcredential(period.number, subcredential(this.opts.identity.publicKey, blinded.publicKey));
    // Milliseconds since this period's ring value was revealed (§8.3), never going back: counts up from
    // the first descriptor stored ahead of the period through its last.
    const revision = Math.max(
      Date.now() - ringValueRevealMs(period),
      (this.lastRevision.get(period.number) ?? -1) + 1,
      0,
    );
    this.lastRevision.set(period.number, revision);
    for (const n of this.lastRevision.keys()) if (n < period.number - 1) this.lastRevision.delete(n);
    const descriptor = sealDescriptor({
      identityKey: this.opts.identity.publicKey,
      blindedSecret: blinded,
      revision,
      expires: Math.floor(Date.now() / 1000) + MAX_DESCRIPTOR_LIFETIME_S,
      introPoints: points.map((p) => ({
        relayId: Buffer.from(p.relay.id, 'hex'),
        authKey: p.authKey.publicKey,
        encKey: p.encKey.publicKey,
      })),
    });
    const replicas = storesFor(consensus, blinded.publicKey, period, STORE_SPREAD) ?? [];
    const held = replicas.map(() => 0);
    const jobs = replicas.flatMap((stores, replica) => stores.map((relay) => ({ relay, replica })));
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(STORES_AT_ONCE, jobs.length) }, async () => {
        while (next < jobs.length) {
          const job = jobs[next++];
          if (await this.storeAt(job.relay, descriptor)) held[job.replica]++;
        }
      }),
    );
    const stored = held.reduce((a, b) => a + b, 0);
    return {
      period,
      revision,
      stored,
      asked: jobs.length,
      everyReplica: replicas.every((stores, i) => stores.length === 0 || held[i] > 0) && stored > 0,
    };
  }

  private keepSubcredential(period: number, sub: Buffer): void {
    this.subs.set(period, sub);
    const numbers = [...this.subs.keys()].sort((a, b) => b - a);
    for (const n of numbers.slice(KEPT_PERIODS)) this.subs.delete(n);
  }

  /** HS_DESC_STORE at `relay`; true when it holds this descriptor (or a later one) afterwards. */
  private async storeAt(relay: ConsensusRelay, descriptor: Buffer): Promise<boolean> {
    let circuit: Awaited<ReturnType<AlliumClient['buildOnionCircuit']>> | null = null;
    try {
      circuit = await this.opts.client.buildOnionCircuit(relay);
      const status = decodeDescriptorStored(
        await circuit.request(
          RelayCommand.HS_DESC_STORE,
          encodeDescriptorStore(descriptor),
          RelayCommand.HS_DESC_STORED,
        ),
      );
      if (status === DescriptorStoreStatus.STORED || status === DescriptorStoreStatus.NOT_NEWER) {
        this.counts.stored++;
        return true;
      }
      this.counts.refused++;
      this.opts.log.debug({ status }, 'a store refused the descriptor');
      return false;
    } catch (err) {
      this.counts.failed++;
      this.opts.log.debug({ err: (err as Error).message }, 'storing the descriptor at a store failed');
      return false;
    } finally {
      circuit?.destroy(DestroyReason.FINISHED, 'descriptor stored');
    }
  }
}
