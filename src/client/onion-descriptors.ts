// Implements docs/protocol.md §8.3-§8.4 at the client: an address's descriptor fetched from the stores
// the ring assigns its blinded key for the consensus's period (spread FETCH_SPREAD, asked one at a
// time in random order, each over a 3-hop circuit ending at it), checked and opened, and cached per
// address until it expires or the period changes.

import { consensusPeriod, storesFor } from '../core/onion-ring.js';
import { FETCH_SPREAD } from '../core/onion-stores.js';
import { blindPublicKey, type Period } from '../crypto/key-blinding.js';
import { openDescriptor } from '../crypto/onion-descriptor.js';
import { shuffled } from '../crypto/random.js';
import type { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import { DestroyReason, RelayCommand } from '../wire/constants.js';
import type { ConsensusRelay, ConsensusView } from '../wire/directory-docs.js';
import { WireError } from '../wire/errors.js';
import type { IntroPointEntry } from '../wire/onion-descriptor.js';
import { decodeDescriptorFetched, encodeDescriptorFetch } from '../wire/onion-messages.js';
import { ClientError } from './client-error.js';
import type { OnionCircuit } from './onion-circuit.js';

/** Addresses whose descriptor is kept at most; the oldest goes first. */
const MAX_CACHED = 1024;
/** No store is asked after this long (each is a circuit and an answer, each bounded on its own). */
export const FETCH_DEADLINE_MS = 60_000;

export interface OnionDescriptor {
  period: Period;
  introPoints: IntroPointEntry[];
  /** When it expires (ms). */
  expiresMs: number;
}

/** What fetching needs of the client. */
export interface DescriptorSource {
  readonly currentConsensus: ConsensusView | null;
  buildOnionCircuit(last: ConsensusRelay, opts?: { isolation?: string }): Promise<OnionCircuit>;
}

export class DescriptorCache {
  private readonly byAddress = new Map<string, OnionDescriptor>();

  /** The descriptor of service `key` (hex) while it is of `period` and has not expired. */
  get(key: string, period: Period, nowMs: number): OnionDescriptor | null {
    const d = this.byAddress.get(key);
    if (!d) return null;
    if (d.expiresMs <= nowMs || d.period.number !== period.number || d.period.length !== period.length) {
      this.byAddress.delete(key);
      return null;
    }
    return d;
  }

  set(key: string, d: OnionDescriptor): void {
    this.byAddress.delete(key);
    this.byAddress.set(key, d);
    if (this.byAddress.size > MAX_CACHED) this.byAddress.delete(this.byAddress.keys().next().value as string);
  }

  drop(key: string): void {
    this.byAddress.delete(key);
  }

  get size(): number {
    return this.byAddress.size;
  }
}

/** The period clients use now: the consensus's. Throws ALLIUM_ONION_NO_RING without onion fields. */
export function onionPeriod(consensus: ConsensusView): Period {
  const period = consensusPeriod(consensus);
  if (!period) {
    throw new ClientError(
      'ALLIUM_ONION_NO_RING',
      "the consensus carries no onion-service fields: the directory's release predates onion services",
    );
  }
  return period;
}

/**
 * Fetches and opens the descriptor of service `identityKey` for the consensus's period. A store's
 * refusal (a forged, stale or undecryptable descriptor) sends it to the next store; when every store
 * refused, the last refusal is thrown; when none had one, ALLIUM_ONION_DESCRIPTOR_NOT_FOUND.
 */
export async function fetchDescriptor(
  source: DescriptorSource,
  identityKey: Buffer,
  opts: { isolation: string; log: Logger },
): Promise<OnionDescriptor> {
  const consensus = source.currentConsensus;
  if (!consensus)
    throw new ClientError('ALLIUM_CLIENT_NO_CONSENSUS', 'no valid consensus to find the service in');
  const period = onionPeriod(consensus);
  const blindedKey = blindPublicKey(identityKey, period);
  const replicas = storesFor(consensus, blindedKey, period, FETCH_SPREAD);
  if (!replicas) {
    throw new ClientError(
      'ALLIUM_ONION_NO_RING',
      `the consensus carries no ring value for period ${period.number}: the directory publishes none`,
    );
  }
  const stores = shuffled(replicas.flat());
  let refusal: AlliumError | null = null;
  let unreachable = 0;
  const deadline = Date.now() + FETCH_DEADLINE_MS;
  for (const store of stores) {
    if (Date.now() > deadline) {
      unreachable++;
      continue;
    }
    let circuit: OnionCircuit | null = null;
    let fetched: Buffer | null;
    try {
      circuit = await source.buildOnionCircuit(store, { isolation: opts.isolation });
      fetched = decodeDescriptorFetched(
        await circuit.request(
          RelayCommand.HS_DESC_FETCH,
          encodeDescriptorFetch(blindedKey),
          RelayCommand.HS_DESC_FETCHED,
        ),
      );
    } catch (err) {
      unreachable++;
      opts.log.debug({ err: (err as Error).message }, 'a descriptor store could not be asked');
      continue;
    } finally {
      circuit?.destroy(DestroyReason.FINISHED, 'descriptor fetched');
    }
    if (!fetched) continue;
    try {
      const opened = openDescriptor(fetched, { identityKey, period, now: Math.floor(Date.now() / 1000) });
      return { period, introPoints: opened.introPoints, expiresMs: opened.outer.expires * 1000 };
    } catch (err) {
      // Bytes that do not parse are refused as a forged descriptor is, and said so with a descriptor
      // code (SOCKS 0xF1): the wire error alone would read as a fault of the client's own messages.
      refusal =
        err instanceof WireError
          ? new ClientError(
              'ALLIUM_ONION_DESCRIPTOR_MALFORMED',
              `a store served a descriptor that does not parse: ${err.message}`,
            )
          : (err as AlliumError);
      opts.log.debug({ err: refusal.message }, 'a store served a descriptor that was refused');
    }
  }
  if (refusal) throw refusal;
  throw new ClientError(
    'ALLIUM_ONION_DESCRIPTOR_NOT_FOUND',
    `no store had a descriptor for this address (${stores.length - unreachable} of ${stores.length} stores asked` +
      (unreachable > 0 ? `, ${unreachable} could not be reached` : '') +
      '): no such service, or it has not published yet',
  );
}
