// Implements docs/protocol.md §8 at the client: a stream to `<address>.allium`. The descriptor
// (onion-descriptors.ts), a rendezvous point of the client's choosing with a random cookie, an
// introduction through one of the service's points after another, the service's answer checked and
// the circuit joined (§8.6-§8.7), then BEGIN to the service. A joined circuit carries the later
// streams to the same address under the same isolation key while it is open.

import type { CircuitStream } from '../core/stream-mux.js';
import { clientIntroduce, clientRendezvous } from '../crypto/hs-ntor.js';
import { blindPublicKey, subcredential } from '../crypto/key-blinding.js';
import { randomBytes } from '../crypto/keys.js';
import { parseOnionAddress } from '../crypto/onion-address.js';
import { randomIntBetween, shuffled } from '../crypto/random.js';
import type { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import { DestroyReason, RelayCommand } from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import {
  decodeIntroduceAck,
  decodeRendezvous2,
  encodeEstablishRendezvous,
  encodeIntroduce,
  IntroduceAckStatus,
} from '../wire/onion-messages.js';
import { ClientError } from './client-error.js';
import type { ConnectOptions } from './client-options.js';
import type { OnionCircuit } from './onion-circuit.js';
import {
  DescriptorCache,
  type DescriptorSource,
  fetchDescriptor,
  type OnionDescriptor,
  onionPeriod,
} from './onion-descriptors.js';
import { rendezvousCandidates } from './rendezvous-choice.js';

/** How long the service may take to come to the rendezvous point once an introduction point passed the introduction on. */
export const RENDEZVOUS_WAIT_MS = 20_000;
/** How long reaching a service may take in all, by default (Tor's SocksTimeout). */
export const ONION_CONNECT_TIMEOUT_MS = 120_000;
/** Rendezvous points tried, each another relay, before a connection fails with ALLIUM_ONION_RENDEZVOUS_FAILED. */
const RENDEZVOUS_ATTEMPTS = 3;

/** Whether `host` names an onion service (any labels in front, any case). */
export function isOnionHost(host: string): boolean {
  return host.toLowerCase().endsWith('.allium');
}

/** What reaching a service needs of the client. */
export interface OnionClient extends DescriptorSource {
  buildOnionCircuit(
    last: ConsensusRelay,
    opts?: { isolation?: string; exclude?: Set<string> },
  ): Promise<OnionCircuit>;
  guardIds(): Set<string>;
  recentlyFailed(): Set<string>;
}

export class OnionConnector {
  readonly cache = new DescriptorCache();
  /** Joined circuits by service key and isolation key. */
  private readonly joined = new Map<string, OnionCircuit>();
  /** Rendezvous under way, by the same key: one at a time for a service and isolation key. */
  private readonly reaching = new Map<string, Promise<OnionCircuit>>();
  readonly counts = { descriptorsFetched: 0, rendezvous: 0, reused: 0 };

  private readonly rendezvousWaitMs: number;
  private readonly connectTimeoutMs: number;

  constructor(
    private readonly client: OnionClient,
    private readonly log: Logger,
    o: { rendezvousWaitMs?: number; connectTimeoutMs?: number } = {},
  ) {
    this.rendezvousWaitMs = o.rendezvousWaitMs ?? RENDEZVOUS_WAIT_MS;
    this.connectTimeoutMs = o.connectTimeoutMs ?? ONION_CONNECT_TIMEOUT_MS;
  }

  /** A stream to port `port` of the service `host` names (its labels in front are the service's business). */
  async connect(host: string, port: number, opts: ConnectOptions = {}): Promise<CircuitStream> {
    const identityKey = parseOnionAddress(host);
    const isolation = opts.isolation ?? '';
    const key = `${identityKey.toString('hex')}\u0000${isolation}`;
    const open = this.joined.get(key);
    if (open && !open.closed && open.isolation === isolation) {
      try {
        this.counts.reused++;
        return await open.openStream(host, port, { optimistic: opts.optimistic });
      } catch (err) {
        // The service answered: its answer stands. Otherwise the circuit is gone: a new rendezvous.
        if ((err as AlliumError).code === 'ALLIUM_STREAM_REFUSED') throw err;
        open.destroy(DestroyReason.FINISHED, 'a stream on it failed');
      }
    }
    const circuit = await this.withinDeadline(this.circuitTo(key, identityKey, isolation));
    return circuit.openStream(host, port, { optimistic: opts.optimistic });
  }

  /**
   * Every step of reaching a service has its own timeout, but together (stores, rendezvous points,
   * introduction points, a refetch) they could add up to minutes: the whole is bounded too. The work
   * goes on after the deadline; a circuit it joins serves the next connect, or closes when idle.
   */
  private withinDeadline(reaching: Promise<OnionCircuit>): Promise<OnionCircuit> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ClientError(
              'ALLIUM_ONION_CONNECT_TIMEOUT',
              `the onion service was not reached within ${Math.round(this.connectTimeoutMs / 1000)} s (descriptor, rendezvous and introductions together)`,
            ),
          ),
        this.connectTimeoutMs,
      );
    });
    return Promise.race([reaching, deadline]).finally(() => clearTimeout(timer));
  }

  private circuitTo(key: string, identityKey: Buffer, isolation: string): Promise<OnionCircuit> {
    let pending = this.reaching.get(key);
    if (!pending) {
      pending = this.reach(identityKey, isolation)
        .then((circuit) => {
          this.joined.set(key, circuit);
          circuit.onClose(() => {
            if (this.joined.get(key) === circuit) this.joined.delete(key);
          });
          return circuit;
        })
        .finally(() => this.reaching.delete(key));
      this.reaching.set(key, pending);
    }
    return pending;
  }

  /** The descriptor (cached, else fetched), and a joined circuit; once more with a fresh descriptor if a cached one led nowhere. */
  private async reach(identityKey: Buffer, isolation: string): Promise<OnionCircuit> {
    const hex = identityKey.toString('hex');
    for (let attempt = 0; ; attempt++) {
      const consensus = this.client.currentConsensus;
      if (!consensus)
        throw new ClientError('ALLIUM_CLIENT_NO_CONSENSUS', 'no valid consensus to find the service in');
      const period = onionPeriod(consensus);
      let descriptor = attempt === 0 ? this.cache.get(hex, period, Date.now()) : null;
      const cached = descriptor !== null;
      if (!descriptor) {
        descriptor = await fetchDescriptor(this.client, identityKey, { isolation, log: this.log });
        this.counts.descriptorsFetched++;
        this.cache.set(hex, descriptor);
      }
      try {
        return await this.rendezvous(identityKey, descriptor, isolation);
      } catch (err) {
        // A restarted service has new introduction points: its old descriptor names ones that are gone.
        if (cached && (err as AlliumError).code === 'ALLIUM_ONION_SERVICE_UNREACHABLE') {
          this.cache.drop(hex);
          continue;
        }
        throw err;
      }
    }
  }

  private async rendezvous(
    identityKey: Buffer,
    d: OnionDescriptor,
    isolation: string,
  ): Promise<OnionCircuit> {
    const consensus = this.client.currentConsensus!;
    const listed = new Map<string, ConsensusRelay>();
    for (const r of consensus.relays) if (r.flags.includes('Running')) listed.set(r.id, r);
    // Points the client's own consensus does not list are skipped: a descriptor cannot send it anywhere else.
    const points = shuffled(d.introPoints).filter((p) => listed.has(p.relayId.toString('hex')));
    if (points.length === 0) {
      throw new ClientError(
        'ALLIUM_ONION_SERVICE_UNREACHABLE',
        "none of the service's introduction points is a running relay of this client's consensus",
      );
    }
    const sub = subcredential(identityKey, blindPublicKey(identityKey, d.period));
    const cookie = randomBytes(32);
    const { rend, rendezvousPoint } = await this.establishRendezvous(
      consensus.relays,
      new Set(points.map((p) => p.relayId.toString('hex'))),
      cookie,
      isolation,
    );
    // Awaited from now on: the service may answer before the introduction point acknowledges.
    const answer = rend.expect(RelayCommand.RENDEZVOUS2, null);
    answer.catch(() => {});
    try {
      for (const point of points) {
        if (rend.closed) break;
        const relay = listed.get(point.relayId.toString('hex'))!;
        const { message, state } = clientIntroduce(point, sub, {
          cookie,
          rendezvousId: Buffer.from(rendezvousPoint.id, 'hex'),
        });
        if (!(await this.introduce(relay, encodeIntroduce(message), rendezvousPoint, isolation))) continue;
        const handshake = decodeRendezvous2(await this.serviceAnswer(answer, rend));
        // Throws ALLIUM_ONION_RENDEZVOUS_AUTH: someone other than the service answered.
        rend.join(clientRendezvous(state, handshake), 'client');
        rend.keepOpen = false;
        this.counts.rendezvous++;
        return rend;
      }
    } catch (err) {
      rend.destroy(DestroyReason.FINISHED, 'the rendezvous failed');
      throw err;
    }
    const closed = rend.closed;
    rend.destroy(DestroyReason.FINISHED, 'no introduction point took the introduction');
    if (closed) {
      throw new ClientError(
        'ALLIUM_ONION_RENDEZVOUS_FAILED',
        `the rendezvous circuit closed: ${rend.closeReason}`,
      );
    }
    throw new ClientError(
      'ALLIUM_ONION_SERVICE_UNREACHABLE',
      `none of the service's ${points.length} introduction points took the introduction: the service is down or has moved on`,
    );
  }

  /** INTRODUCE1 through `relay`; true when it passed it on to the service. */
  private async introduce(
    relay: ConsensusRelay,
    body: Buffer,
    rendezvousPoint: ConsensusRelay,
    isolation: string,
  ): Promise<boolean> {
    let intro: OnionCircuit | null = null;
    try {
      intro = await this.client.buildOnionCircuit(relay, {
        isolation,
        exclude: new Set([rendezvousPoint.id]),
      });
      const ack = decodeIntroduceAck(
        await intro.request(RelayCommand.INTRODUCE1, body, RelayCommand.INTRODUCE_ACK),
      );
      if (ack !== IntroduceAckStatus.SUCCESS)
        this.log.debug({ ack }, 'an introduction point refused the introduction');
      return ack === IntroduceAckStatus.SUCCESS;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'an introduction point could not be asked');
      return false;
    } finally {
      intro?.destroy(DestroyReason.FINISHED, 'introduced');
    }
  }

  /** RENDEZVOUS2 on `rend`, within the wait. */
  private serviceAnswer(answer: Promise<Buffer>, rend: OnionCircuit): Promise<Buffer> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ClientError(
              'ALLIUM_ONION_INTRODUCE_TIMEOUT',
              `the service did not come to the rendezvous point within ${this.rendezvousWaitMs} ms`,
            ),
          ),
        this.rendezvousWaitMs,
      );
    });
    const closed = answer.catch((err: Error) => {
      throw new ClientError(
        'ALLIUM_ONION_RENDEZVOUS_FAILED',
        `the rendezvous circuit closed before the service came: ${rend.closeReason || err.message}`,
      );
    });
    return Promise.race([closed, late]).finally(() => clearTimeout(timer));
  }

  /**
   * A rendezvous circuit with `cookie` left at its last hop. A relay that fails (down, or cut off) is
   * left out and another tried, a few times: one dead relay in the consensus must not fail every
   * connection until the directory drops it.
   */
  private async establishRendezvous(
    relays: ConsensusRelay[],
    points: Set<string>,
    cookie: Buffer,
    isolation: string,
  ): Promise<{ rend: OnionCircuit; rendezvousPoint: ConsensusRelay }> {
    const tried = new Set<string>();
    let last: Error | null = null;
    for (let attempt = 0; attempt < RENDEZVOUS_ATTEMPTS; attempt++) {
      const rendezvousPoint = this.chooseRendezvous(relays, points, tried);
      tried.add(rendezvousPoint.id);
      try {
        const rend = await this.client.buildOnionCircuit(rendezvousPoint, { isolation });
        try {
          await rend.request(
            RelayCommand.ESTABLISH_RENDEZVOUS,
            encodeEstablishRendezvous(cookie),
            RelayCommand.RENDEZVOUS_ESTABLISHED,
          );
        } catch (err) {
          rend.destroy(DestroyReason.FINISHED, 'rendezvous not established');
          throw err;
        }
        return { rend, rendezvousPoint };
      } catch (err) {
        last = err as Error;
      }
    }
    throw new ClientError(
      'ALLIUM_ONION_RENDEZVOUS_FAILED',
      `the circuit to the rendezvous point failed ${RENDEZVOUS_ATTEMPTS} times: ${last?.message}`,
    );
  }

  /**
   * A running relay (CSPRNG, uniformly) that is none of the guards and none of the introduction
   * points, nor one that just failed or was `tried`, while there is another.
   */
  private chooseRendezvous(
    relays: ConsensusRelay[],
    points: Set<string>,
    tried: Set<string>,
  ): ConsensusRelay {
    const candidates = rendezvousCandidates(relays, {
      guards: this.client.guardIds(),
      points,
      // A relay that just failed us (down, or cut off) would fail the rendezvous again.
      avoid: new Set([...this.client.recentlyFailed(), ...tried]),
    });
    if (candidates.length === 0) {
      throw new ClientError(
        'ALLIUM_ONION_RENDEZVOUS_FAILED',
        'no relay besides the guards to meet the service at',
      );
    }
    return candidates[randomIntBetween(0, candidates.length)];
  }
}
