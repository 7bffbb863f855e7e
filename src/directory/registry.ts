// Implements docs/directory-api.md (POST and DELETE /v1/relays rules) for docs/protocol.md §6.2: which relays
// are listed. Pure state: the caller passes the time in and does the I/O.
import { openDescriptor, openWithdraw } from '../core/documents.js';
import {
  parseEnvelope,
  type RelayDescriptor,
  type SignedEnvelope,
  serializeDescriptor,
} from '../wire/directory-docs.js';
import { DirectoryError } from './errors.js';
import type { LoadedState, StoredRelay, Tombstone } from './store.js';

/** A descriptor's `published` must be this close to the directory's clock, so a captured one soon goes stale. */
export const PUBLISHED_WINDOW_MS = 10 * 60_000;

export interface RelayRecord {
  descriptor: RelayDescriptor;
  envelope: SignedEnvelope;
  /** When this identity was first listed (kept across refreshes and re-registrations): uptime. */
  firstSeen: number;
  /** The last accepted registration or refresh. */
  lastSeen: number;
}

export type AdmitResult = 'new' | 'changed' | 'refreshed';

function envelopeOf(json: unknown, code: string): SignedEnvelope {
  try {
    return parseEnvelope(json);
  } catch (err) {
    throw new DirectoryError(code, 400, (err as Error).message, { cause: err });
  }
}

/** Everything a consensus lists of a relay, i.e. the descriptor less `published`. */
function listingKey(d: RelayDescriptor): string {
  return serializeDescriptor({ ...d, published: 0 });
}

function clockError(code: string, what: string, published: number, now: number): DirectoryError {
  const mins = ((published - now) / 60_000).toFixed(1);
  return new DirectoryError(
    code,
    400,
    `${what} was published ${mins} min from the directory's clock (allowed: ±${PUBLISHED_WINDOW_MS / 60_000} min): ` +
      "check the relay's clock",
  );
}

export class Registry {
  private readonly relays = new Map<string, RelayRecord>();
  private readonly tombstones = new Map<string, Tombstone>();
  /** Bumped whenever what a consensus would list changes; a cached consensus is stale when it differs. */
  private versionCounter = 0;

  constructor(readonly ttlMs: number) {}

  get version(): number {
    return this.versionCounter;
  }

  /** Restores records from the store (already signature-checked there). */
  load(state: LoadedState): void {
    for (const r of state.relays) {
      this.relays.set(r.descriptor.id, {
        descriptor: r.descriptor,
        envelope: r.envelope,
        firstSeen: r.firstSeen,
        lastSeen: r.lastSeen,
      });
    }
    for (const t of state.withdrawn) this.tombstones.set(t.id, t);
    this.versionCounter++;
  }

  /**
   * Verifies a registration without changing anything: the envelope shape, the signature and id
   * (openDescriptor), the clock window, and that it is not older than what is held.
   */
  check(json: unknown, now: number): { envelope: SignedEnvelope; descriptor: RelayDescriptor } {
    const envelope = envelopeOf(json, 'ALLIUM_ENVELOPE_INVALID');
    const descriptor = openDescriptor(envelope);
    if (Math.abs(descriptor.published - now) > PUBLISHED_WINDOW_MS) {
      throw clockError('ALLIUM_DESCRIPTOR_CLOCK', 'the descriptor', descriptor.published, now);
    }
    this.checkNotOutdated(descriptor);
    return { envelope, descriptor };
  }

  private checkNotOutdated(d: RelayDescriptor): void {
    const held = this.relays.get(d.id);
    if (held && d.published < held.descriptor.published) {
      throw new DirectoryError(
        'ALLIUM_DESCRIPTOR_OUTDATED',
        400,
        `the directory holds a newer descriptor for ${d.id} (published ${held.descriptor.published}, ` +
          `this one ${d.published}): publish a fresh one`,
      );
    }
    const tomb = this.tombstones.get(d.id);
    if (tomb && d.published <= tomb.published) {
      throw new DirectoryError(
        'ALLIUM_DESCRIPTOR_OUTDATED',
        400,
        `relay ${d.id} withdrew itself after this descriptor was published: publish a fresh one`,
      );
    }
  }

  /** Lists (or relists) a relay checked by `check`; re-checks ordering in case another registration won. */
  commit(envelope: SignedEnvelope, descriptor: RelayDescriptor, now: number): AdmitResult {
    this.checkNotOutdated(descriptor);
    // A record past its TTL but not yet swept counts as gone: the relay comes back as new.
    const held = this.get(descriptor.id, now);
    this.tombstones.delete(descriptor.id);
    this.relays.set(descriptor.id, {
      descriptor,
      envelope,
      firstSeen: held ? held.firstSeen : now,
      lastSeen: now,
    });
    if (!held) {
      this.versionCounter++;
      return 'new';
    }
    if (listingKey(held.descriptor) !== listingKey(descriptor)) {
      this.versionCounter++;
      return 'changed';
    }
    return 'refreshed';
  }

  /** Removes a relay on its signed request (DELETE /v1/relays/:id). */
  withdraw(id: string, json: unknown, now: number): void {
    const held = this.get(id, now);
    if (!held) throw new DirectoryError('ALLIUM_RELAY_NOT_FOUND', 404, `relay ${id} is not listed`);
    const envelope = envelopeOf(json, 'ALLIUM_ENVELOPE_INVALID');
    const w = openWithdraw(envelope, Buffer.from(held.descriptor.identityKey, 'base64'));
    if (w.id !== id) {
      throw new DirectoryError(
        'ALLIUM_WITHDRAW_MISMATCH',
        400,
        `the withdraw is signed for ${w.id}, not ${id}`,
      );
    }
    if (Math.abs(w.published - now) > PUBLISHED_WINDOW_MS) {
      throw clockError('ALLIUM_WITHDRAW_CLOCK', 'the withdraw', w.published, now);
    }
    if (w.published < held.descriptor.published) {
      throw new DirectoryError(
        'ALLIUM_WITHDRAW_OUTDATED',
        400,
        `the withdraw predates the relay's current descriptor (${w.published} < ${held.descriptor.published}): ` +
          'sign a fresh one',
      );
    }
    this.relays.delete(id);
    // Refuse replays of descriptors older than the withdraw for as long as they could pass the clock window.
    this.tombstones.set(id, { id, published: w.published, expires: now + 2 * PUBLISHED_WINDOW_MS });
    this.versionCounter++;
  }

  /** A listed relay that has not outlived its TTL. */
  get(id: string, now: number): RelayRecord | undefined {
    const r = this.relays.get(id);
    return r && this.isLive(r, now) ? r : undefined;
  }

  private isLive(r: RelayRecord, now: number): boolean {
    return now - r.lastSeen < this.ttlMs;
  }

  /** Live relays, ordered by id so equal sets give byte-equal consensuses. */
  live(now: number): RelayRecord[] {
    return [...this.relays.values()]
      .filter((r) => this.isLive(r, now))
      .sort((a, b) => (a.descriptor.id < b.descriptor.id ? -1 : a.descriptor.id > b.descriptor.id ? 1 : 0));
  }

  get size(): number {
    return this.relays.size;
  }

  /** Drops relays past their TTL and expired tombstones; returns the ids of the relays dropped. */
  sweep(now: number): RelayRecord[] {
    const dropped: RelayRecord[] = [];
    for (const [id, r] of this.relays) {
      if (!this.isLive(r, now)) {
        this.relays.delete(id);
        dropped.push(r);
      }
    }
    for (const [id, t] of this.tombstones) if (t.expires <= now) this.tombstones.delete(id);
    if (dropped.length > 0) this.versionCounter++;
    return dropped;
  }

  /** What the store keeps. */
  snapshot(): { relays: StoredRelay[]; withdrawn: Tombstone[] } {
    return {
      relays: [...this.relays.values()].map((r) => ({
        envelope: r.envelope,
        firstSeen: r.firstSeen,
        lastSeen: r.lastSeen,
      })),
      withdrawn: [...this.tombstones.values()],
    };
  }
}
