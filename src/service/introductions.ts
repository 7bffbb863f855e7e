// Implements docs/protocol.md §8.6 and §8.8 at the service: an INTRODUCE2 is admitted by the
// service's rate limit, its MAC checked under a subcredential the service published, its client key
// refused if the point saw it before, and its rendezvous relay looked up in the service's own
// consensus; then a 3-hop circuit to that relay answers with RENDEZVOUS1 and is joined (§8.7).
// Nothing about a client or its rendezvous point is logged above debug.

import type { AlliumClient } from '../client/client.js';
import { DEFAULT_INTRO_BURST, DEFAULT_INTRO_RATE, IntroRateLimiter } from '../core/intro-rate-limiter.js';
import { type ServiceIntroState, serviceOpenIntroduce, serviceRendezvous } from '../crypto/hs-ntor.js';
import type { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import { DestroyReason, RelayCommand } from '../wire/constants.js';
import { decodeIntroduce, encodeRendezvous1, type IntroducePlaintext } from '../wire/onion-messages.js';
import type { IntroPoint } from './intro-points.js';
import type { ServiceStreams } from './service-streams.js';

/** Rendezvous circuits built at once; introductions past it are dropped (§8.8). */
export const MAX_RENDEZVOUS_BUILDING = 16;

export interface IntroductionCounts {
  /** INTRODUCE2s that arrived. */
  received: number;
  /** Answered: a rendezvous circuit was built and joined. */
  joined: number;
  /** Dropped for the service's rate limit. */
  rateLimited: number;
  /** Dropped: did not parse, or failed the MAC under every subcredential kept. */
  refused: number;
  /** Dropped: a client key the point had seen (§8.8). */
  replays: number;
  /** Dropped: too many rendezvous circuits building. */
  busy: number;
  /** Dropped: a rendezvous relay the consensus does not list. */
  unknownRelay: number;
  /** The rendezvous circuit could not be built, or the point refused RENDEZVOUS1. */
  rendezvousFailed: number;
}

export interface IntroductionsOptions {
  client: AlliumClient;
  streams: ServiceStreams;
  log: Logger;
  /** The subcredentials introductions may be made under (current period first). */
  subcredentials(): Buffer[];
  /** `point` has taken all it may: replace it. */
  exhausted(point: IntroPoint): void;
  /** The clock of the rate limit (ms). */
  now?: () => number;
}

/** Every count at zero: a new service's, and what a service reports before it has started. */
export function noIntroductions(): IntroductionCounts {
  return {
    received: 0,
    joined: 0,
    rateLimited: 0,
    refused: 0,
    replays: 0,
    busy: 0,
    unknownRelay: 0,
    rendezvousFailed: 0,
  };
}

export class Introductions {
  readonly counts: IntroductionCounts = noIntroductions();
  private buildingNow = 0;
  private peak = 0;
  /**
   * Each introduction costs two X25519 and a circuit: per introduction point, the same bucket the
   * point keeps. One bucket per point, not one for the service, so a flood through one point spends
   * that point's budget only and honest clients still come through the others.
   */
  private readonly limiters = new WeakMap<IntroPoint, IntroRateLimiter>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: IntroductionsOptions) {
    this.now = opts.now ?? Date.now;
  }

  private limiterOf(point: IntroPoint): IntroRateLimiter {
    let limiter = this.limiters.get(point);
    if (!limiter) {
      limiter = new IntroRateLimiter({ rate: DEFAULT_INTRO_RATE, burst: DEFAULT_INTRO_BURST }, this.now());
      this.limiters.set(point, limiter);
    }
    return limiter;
  }

  /** Rendezvous circuits building now. */
  get building(): number {
    return this.buildingNow;
  }

  /** The most rendezvous circuits that were ever building at once: a flood shows its bound here. */
  get peakBuilding(): number {
    return this.peak;
  }

  /** An INTRODUCE2 that came through `point`. Returns what became of it (for tests). */
  introduce(point: IntroPoint, data: Buffer): Promise<keyof IntroductionCounts> {
    this.counts.received++;
    const opened = this.open(point, data);
    if (typeof opened === 'string') {
      this.counts[opened]++;
      this.opts.log.debug({ dropped: opened }, 'introduction dropped');
      return Promise.resolve(opened);
    }
    return this.rendezvous(opened.plaintext, opened.state);
  }

  private open(
    point: IntroPoint,
    data: Buffer,
  ): { plaintext: IntroducePlaintext; state: ServiceIntroState } | keyof IntroductionCounts {
    if (this.closed) return 'refused';
    if (!this.limiterOf(point).admit(this.now())) return 'rateLimited';
    let opened: ReturnType<typeof serviceOpenIntroduce> | null = null;
    try {
      const message = decodeIntroduce(data);
      for (const sub of this.opts.subcredentials()) {
        try {
          opened = serviceOpenIntroduce(
            message,
            { authKey: point.authKey.publicKey, encKey: point.encKey },
            sub,
          );
          break;
        } catch {
          // A client with a consensus of another period made it under that period's subcredential.
        }
      }
      if (!opened) return 'refused';
      // After the MAC: forgeries never fill the cache (§8.8).
      point.replay.admit(message.clientKey);
    } catch (err) {
      if ((err as AlliumError).code === 'ALLIUM_ONION_INTRO_EXHAUSTED') {
        this.opts.exhausted(point);
        return 'refused';
      }
      return (err as AlliumError).code === 'ALLIUM_ONION_INTRODUCE_REPLAY' ? 'replays' : 'refused';
    }
    if (point.replay.exhausted) this.opts.exhausted(point);
    if (this.buildingNow >= MAX_RENDEZVOUS_BUILDING) return 'busy';
    return opened;
  }

  private async rendezvous(
    plaintext: IntroducePlaintext,
    state: ServiceIntroState,
  ): Promise<keyof IntroductionCounts> {
    // The client names its rendezvous point by id; its address comes from the service's own consensus,
    // so a client cannot make the service dial an address of its choosing (§8.5).
    const id = plaintext.rendezvousId.toString('hex');
    const relay = this.opts.client.currentConsensus?.relays.find(
      (r) => r.id === id && r.flags.includes('Running'),
    );
    if (!relay) {
      this.counts.unknownRelay++;
      this.opts.log.debug('introduction dropped: its rendezvous relay is not in the consensus');
      return 'unknownRelay';
    }
    this.buildingNow++;
    this.peak = Math.max(this.peak, this.buildingNow);
    try {
      const circuit = await this.opts.client.buildOnionCircuit(relay);
      if (this.closed) {
        circuit.destroy(DestroyReason.FINISHED, 'the service closed');
        return 'refused';
      }
      const { handshake, keys } = serviceRendezvous(state);
      circuit.sendOnion(RelayCommand.RENDEZVOUS1, encodeRendezvous1(plaintext.cookie, handshake));
      circuit.join(keys, 'service');
      this.opts.streams.serve(circuit);
      this.counts.joined++;
      this.opts.log.debug('rendezvous joined');
      return 'joined';
    } catch (err) {
      state.exp2.fill(0);
      this.counts.rendezvousFailed++;
      this.opts.log.debug({ err: (err as Error).message }, 'the rendezvous circuit failed');
      return 'rendezvousFailed';
    } finally {
      this.buildingNow--;
    }
  }

  close(): void {
    this.closed = true;
  }
}
