// Implements docs/protocol.md §8.5, §8.6 and §8.8 at the service: its introduction points. Each is a
// relay (neither of the service's guards nor another point) at the end of a 3-hop circuit, holding an
// auth key and an encryption key made for it alone (ESTABLISH_INTRO, bound to the circuit). A point
// whose circuit goes is replaced by a new relay with new keys; one that took all the introductions
// its replay cache holds is retired the same way once its successor is up.

import type { AlliumClient } from '../client/client.js';
import type { OnionCircuit } from '../client/onion-circuit.js';
import { IntroReplayCache } from '../core/intro-replay-cache.js';
import { signEstablishIntro } from '../crypto/intro-auth.js';
import { IdentityKey, X25519Key } from '../crypto/keys.js';
import { randomIntBetween } from '../crypto/random.js';
import type { Logger } from '../log.js';
import { MIN_RELAY_VERSION, versionAtLeast } from '../version.js';
import { DestroyReason, RelayCommand } from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { encodeEstablishIntro } from '../wire/onion-messages.js';
import { ServiceError } from './service-error.js';

/** Relays tried for one missing point in one round before the round gives up. */
const TRIES_PER_POINT = 3;
/** A lost point is replaced after this (so a network that drops every circuit is not hammered). */
const REPLACE_DELAY_MS = 500;
/** A round that left points missing is tried again after this, doubling up to the most. */
const RETRY_FIRST_MS = 2_000;
const RETRY_MOST_MS = 60_000;
/** A retired point's circuit is kept this long after its successor is published: clients in flight. */
const RETIRE_GRACE_MS = 60_000;

export interface IntroPoint {
  readonly relay: ConsensusRelay;
  readonly circuit: OnionCircuit;
  readonly authKey: IdentityKey;
  readonly encKey: X25519Key;
  /** The client keys of its introductions (§8.8): a repeat is a replay. */
  readonly replay: IntroReplayCache;
  /** Replaced (its cache is full): no longer in the descriptor, closed after a grace period. */
  retiring: boolean;
}

export interface IntroPointsOptions {
  client: AlliumClient;
  /** Points wanted. */
  want: number;
  log: Logger;
  /** An INTRODUCE2 arrived at `point`. */
  onIntroduce(point: IntroPoint, data: Buffer): void;
  /** The points in service changed: the descriptor must be published again. */
  onChange(): void;
}

export class IntroPoints {
  /** Points in service, in the descriptor. */
  readonly points = new Set<IntroPoint>();
  readonly counts = { established: 0, lost: 0, retired: 0, failedAttempts: 0 };
  private filling: Promise<number> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = RETRY_FIRST_MS;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly opts: IntroPointsOptions) {}

  /** Points in service now (not retiring). */
  get active(): IntroPoint[] {
    return [...this.points].filter((p) => !p.retiring);
  }

  /**
   * Establishes points until `want` are in service (each missing one tried at TRIES_PER_POINT
   * relays); resolves with how many are. A round that falls short is tried again later by itself.
   */
  fill(): Promise<number> {
    this.filling ??= this.fillRound().finally(() => {
      this.filling = null;
    });
    return this.filling;
  }

  private async fillRound(): Promise<number> {
    const missing = this.opts.want - this.active.length;
    const tried = new Set<string>();
    await Promise.all(
      Array.from({ length: Math.max(0, missing) }, async () => {
        for (let attempt = 0; attempt < TRIES_PER_POINT && !this.closed; attempt++) {
          const relay = this.chooseRelay(tried);
          if (!relay) return;
          tried.add(relay.id);
          try {
            await this.establish(relay);
            return;
          } catch (err) {
            this.counts.failedAttempts++;
            this.opts.log.debug({ err: (err as Error).message }, 'an introduction point failed to come up');
          }
        }
      }),
    );
    const up = this.active.length;
    if (!this.closed && up < this.opts.want) this.retryLater();
    else this.retryMs = RETRY_FIRST_MS;
    return up;
  }

  private retryLater(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.fill();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(RETRY_MOST_MS, this.retryMs * 2);
  }

  /** A running relay of a release that serves introductions, none of the guards or points, uniformly (CSPRNG). */
  private chooseRelay(tried: Set<string>): ConsensusRelay | null {
    const consensus = this.opts.client.currentConsensus;
    if (!consensus) return null;
    const avoid = new Set([...this.opts.client.guardIds(), ...tried]);
    for (const p of this.points) avoid.add(p.relay.id);
    const candidates = consensus.relays.filter(
      (r) => r.flags.includes('Running') && versionAtLeast(r.version, MIN_RELAY_VERSION) && !avoid.has(r.id),
    );
    return candidates.length === 0 ? null : candidates[randomIntBetween(0, candidates.length)];
  }

  private async establish(relay: ConsensusRelay): Promise<void> {
    const circuit = await this.opts.client.buildOnionCircuit(relay);
    const authKey = IdentityKey.generate();
    const encKey = X25519Key.generate();
    const binding = circuit.hops[circuit.hops.length - 1].crypto.forward.circuitBinding();
    try {
      await circuit.request(
        RelayCommand.ESTABLISH_INTRO,
        encodeEstablishIntro(signEstablishIntro(authKey, { rate: 0, burst: 0 }, binding)),
        RelayCommand.INTRO_ESTABLISHED,
      );
    } catch (err) {
      circuit.destroy(DestroyReason.FINISHED, 'the introduction point did not come up');
      throw err;
    }
    if (this.closed) {
      circuit.destroy(DestroyReason.FINISHED, 'the service closed');
      throw new ServiceError('ALLIUM_CLIENT_CLOSED', 'the service closed');
    }
    const point: IntroPoint = {
      relay,
      circuit,
      authKey,
      encKey,
      replay: new IntroReplayCache(),
      retiring: false,
    };
    circuit.onUnexpected = (command, data) => {
      if (command === RelayCommand.INTRODUCE2) this.opts.onIntroduce(point, data);
      else
        circuit.destroy(
          DestroyReason.PROTOCOL,
          `protocol error: relay command ${command} on an introduction circuit`,
        );
    };
    circuit.onClose(() => this.lost(point));
    this.points.add(point);
    this.counts.established++;
    this.opts.onChange();
  }

  /** `point`'s circuit closed: replace it (unless it was retiring, or the service is closing). */
  private lost(point: IntroPoint): void {
    if (!this.points.delete(point) || this.closed) return;
    if (point.retiring) return;
    this.counts.lost++;
    this.opts.log.info({ introPoints: this.active.length }, 'an introduction point was lost; replacing it');
    this.opts.onChange();
    this.later(REPLACE_DELAY_MS, () => void this.fill());
  }

  /** `point` took all the introductions it may (§8.8): a successor, a new descriptor, then it goes. */
  retire(point: IntroPoint): void {
    if (point.retiring || this.closed) return;
    point.retiring = true;
    this.counts.retired++;
    void this.fill().then(() =>
      this.later(RETIRE_GRACE_MS, () =>
        point.circuit.destroy(DestroyReason.FINISHED, 'introduction point retired'),
      ),
    );
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Every point's circuit goes: clients get INTRODUCE_ACK(1) at once from then on. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const p of [...this.points]) p.circuit.destroy(DestroyReason.FINISHED, 'the service closed');
    this.points.clear();
  }
}
