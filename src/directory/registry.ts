// Implements docs/directory-api.md (POST and DELETE /v1/relays rules) for docs/protocol.md §6.2: which relays
// are listed. Pure state: the caller passes the time in and does the I/O.
import { openDescriptor, openWithdraw } from '../core/documents.js';
import { isPrivateAddress } from '../core/exit-policy.js';
import type { AlliumCode } from '../errors.js';
import {
  parseEnvelope,
  type RelayDescriptor,
  type SignedEnvelope,
  serializeDescriptor,
} from '../wire/directory-docs.js';
import {
  CONSENSUS_RELAYS_BUDGET,
  consensusEntryBytes,
  normalizeDescriptor,
  relayFlags,
} from './consensus.js';
import { DirectoryError } from './errors.js';
import { isLoopback, rateKey } from './rate-limit.js';
import type { ListedSince, LoadedState, StoredRelay, Tombstone } from './store.js';

/** A descriptor's `published` must be this close to the directory's clock, so a captured one soon goes stale. */
export const PUBLISHED_WINDOW_MS = 10 * 60_000;

/** Tor's rule: at most two relays per public IPv4 address (IPv6: per /64). */
export const DEFAULT_MAX_RELAYS_PER_ADDRESS = 2;
/** Loopback and private addresses: a test network runs every relay on one such address. */
export const DEFAULT_MAX_RELAYS_PER_LOCAL_ADDRESS = 32;

/**
 * How long the directory remembers when a relay that left was first listed (§8.3): one that comes back
 * within this keeps its listedSince, so a restart or an outage does not take it off the onion ring.
 */
export const LISTED_SINCE_RETENTION_MS = 14 * 86_400_000;
/** At most this many relays that left are remembered (the oldest departures are forgotten first). */
export const MAX_REMEMBERED_GONE = 100_000;

export interface ListingLimits {
  /** New relays listed per public address (IPv6: per /64), by advertised and by registering address. */
  maxRelaysPerAddress?: number;
  /** The same for loopback, private and link-local addresses. */
  maxRelaysPerLocalAddress?: number;
  /** Bytes the consensus's relay entries may add up to (default: its cap less a header reserve). */
  relaysBudget?: number;
}

export interface RelayRecord {
  /** As the consensus lists it (normalizeDescriptor); the envelope holds what the relay signed. */
  descriptor: RelayDescriptor;
  envelope: SignedEnvelope;
  /** When this identity was first listed (kept across refreshes and re-registrations): uptime. */
  firstSeen: number;
  /** The last accepted registration or refresh. */
  lastSeen: number;
  /** The address key (addressKey) the relay was registered from; undefined when not known. */
  source?: string;
  /** Its consensus flags, worked out once (a long policy takes milliseconds to judge). */
  flags: string[];
  /** Bytes its entry adds to the consensus body. */
  entryBytes: number;
}

export type AdmitResult = 'new' | 'changed' | 'refreshed';

function envelopeOf(json: unknown, code: AlliumCode): SignedEnvelope {
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

function clockError(code: AlliumCode, what: string, published: number, now: number): DirectoryError {
  const mins = ((published - now) / 60_000).toFixed(1);
  return new DirectoryError(
    code,
    400,
    `${what} was published ${mins} min from the directory's clock (allowed: ±${PUBLISHED_WINDOW_MS / 60_000} min): ` +
      "check the relay's clock",
  );
}

/**
 * The key relays are counted under per address: IPv4 as is, IPv6 by /64, and every loopback address
 * (127/8, ::1) as one, since they are all this one machine.
 */
export function addressKey(address: string): string {
  return isLoopback(address) ? 'loopback' : rateKey(address);
}

/** The descriptor as listed; one whose policy no longer parses is kept as signed (the builder demotes it). */
function listed(d: RelayDescriptor): RelayDescriptor {
  try {
    return normalizeDescriptor(d);
  } catch {
    return d;
  }
}

export class Registry {
  private readonly relays = new Map<string, RelayRecord>();
  private readonly tombstones = new Map<string, Tombstone>();
  /** Bumped whenever what a consensus would list changes; a cached consensus is stale when it differs. */
  private versionCounter = 0;
  /** The sum of every held record's entryBytes. */
  private heldBytes = 0;
  /** When each relay id was first listed, and when it left, if it did. */
  private readonly since = new Map<string, { since: number; gone?: number }>();
  readonly maxRelaysPerAddress: number;
  readonly maxRelaysPerLocalAddress: number;
  readonly relaysBudget: number;

  constructor(
    readonly ttlMs: number,
    limits: ListingLimits = {},
  ) {
    this.maxRelaysPerAddress = limits.maxRelaysPerAddress ?? DEFAULT_MAX_RELAYS_PER_ADDRESS;
    this.maxRelaysPerLocalAddress = limits.maxRelaysPerLocalAddress ?? DEFAULT_MAX_RELAYS_PER_LOCAL_ADDRESS;
    this.relaysBudget = limits.relaysBudget ?? CONSENSUS_RELAYS_BUDGET;
    if (!(this.maxRelaysPerAddress >= 1 && this.maxRelaysPerLocalAddress >= 1 && this.relaysBudget > 0)) {
      throw new DirectoryError(
        'ALLIUM_DIRECTORY_CONFIG',
        0,
        'the relays-per-address limits must be at least 1 and the consensus budget positive',
      );
    }
  }

  /** Bytes the held relays' entries add up to (expired ones until swept). */
  get bytes(): number {
    return this.heldBytes;
  }

  private put(r: RelayRecord): void {
    const old = this.relays.get(r.descriptor.id);
    if (old) this.heldBytes -= old.entryBytes;
    this.relays.set(r.descriptor.id, r);
    this.heldBytes += r.entryBytes;
  }

  private remove(id: string, now: number): void {
    const old = this.relays.get(id);
    if (!old) return;
    this.heldBytes -= old.entryBytes;
    this.relays.delete(id);
    const s = this.since.get(id);
    if (s) s.gone = now;
  }

  /** When relay `id` was first listed (ms), or undefined for a relay never listed. */
  listedSince(id: string): number | undefined {
    return this.since.get(id)?.since;
  }

  /** The per-address limit for `address`: loopback and private addresses have their own. */
  limitFor(address: string): number {
    return isPrivateAddress(address) ? this.maxRelaysPerLocalAddress : this.maxRelaysPerAddress;
  }

  /**
   * Refuses a relay the directory does not list yet (or one moving to another address) when its
   * advertised address, or the address it registers from, already has its limit of listed relays.
   * Refreshes of listed relays are never refused, so lowering a limit drops no one.
   */
  private checkLimits(d: RelayDescriptor, source: string | undefined, now: number): void {
    const held = this.get(d.id, now);
    const addrKey = addressKey(d.address);
    if (!held || addressKey(held.descriptor.address) !== addrKey) {
      const limit = this.limitFor(d.address);
      const count = this.countLive(now, d.id, (r) => addressKey(r.descriptor.address) === addrKey);
      if (count >= limit) {
        throw new DirectoryError(
          'ALLIUM_RELAY_ADDRESS_LIMIT',
          403,
          `${count} relays at ${d.address} are listed already (at most ${limit} per address): ` +
            'run more relays on other addresses',
        );
      }
    }
    if (!held && source) {
      const srcKey = addressKey(source);
      const limit = this.limitFor(source);
      const count = this.countLive(now, d.id, (r) => r.source === srcKey);
      if (count >= limit) {
        throw new DirectoryError(
          'ALLIUM_RELAY_ADDRESS_LIMIT',
          403,
          `${count} listed relays were registered from this address already (at most ${limit} per address)`,
        );
      }
    }
  }

  private countLive(now: number, except: string, match: (r: RelayRecord) => boolean): number {
    let n = 0;
    for (const r of this.relays.values()) {
      if (r.descriptor.id !== except && this.isLive(r, now) && match(r)) n++;
    }
    return n;
  }

  get version(): number {
    return this.versionCounter;
  }

  /** Restores records from the store (already signature-checked there). */
  load(state: LoadedState): void {
    for (const r of state.relays) {
      const descriptor = listed(r.descriptor);
      const flags = relayFlags(descriptor);
      this.put({
        descriptor,
        envelope: r.envelope,
        firstSeen: r.firstSeen,
        lastSeen: r.lastSeen,
        source: r.source,
        flags,
        entryBytes: consensusEntryBytes(descriptor, flags),
      });
    }
    for (const t of state.withdrawn) this.tombstones.set(t.id, t);
    for (const l of state.listedSince ?? []) {
      this.since.set(l.id, l.gone === undefined ? { since: l.since } : { since: l.since, gone: l.gone });
    }
    // A file from before listedSince was kept: the relays it holds were listed since firstSeen.
    for (const r of state.relays) {
      if (!this.since.has(r.descriptor.id)) this.since.set(r.descriptor.id, { since: r.firstSeen });
    }
    this.versionCounter++;
  }

  /**
   * Verifies a registration without changing anything: the envelope shape, the signature and id
   * (openDescriptor), the clock window, that it is not older than what is held, and the per-address
   * limits (`source`: the address it is registered from). The descriptor returned is the one listed.
   */
  check(
    json: unknown,
    now: number,
    source?: string,
  ): { envelope: SignedEnvelope; descriptor: RelayDescriptor } {
    const envelope = envelopeOf(json, 'ALLIUM_ENVELOPE_INVALID');
    const descriptor = listed(openDescriptor(envelope));
    if (Math.abs(descriptor.published - now) > PUBLISHED_WINDOW_MS) {
      throw clockError('ALLIUM_DESCRIPTOR_CLOCK', 'the descriptor', descriptor.published, now);
    }
    this.checkNotOutdated(descriptor);
    this.checkLimits(descriptor, source, now);
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

  /**
   * Lists (or relists) a relay checked by `check`; re-checks ordering and limits in case another
   * registration won meanwhile. A new or changed listing that would take the consensus past its
   * budget is refused (ALLIUM_DIRECTORY_FULL), so the consensus keeps its size and its relays.
   */
  commit(envelope: SignedEnvelope, descriptor: RelayDescriptor, now: number, source?: string): AdmitResult {
    this.checkNotOutdated(descriptor);
    this.checkLimits(descriptor, source, now);
    // A record past its TTL but not yet swept counts as gone: the relay comes back as new.
    const held = this.get(descriptor.id, now);
    const inMap = this.relays.get(descriptor.id);
    const grows = !held || listingKey(held.descriptor) !== listingKey(descriptor);
    const flags = grows ? relayFlags(descriptor) : held.flags;
    const entryBytes = grows ? consensusEntryBytes(descriptor, flags) : held.entryBytes;
    if (grows && this.heldBytes - (inMap?.entryBytes ?? 0) + entryBytes > this.relaysBudget) {
      throw new DirectoryError(
        'ALLIUM_DIRECTORY_FULL',
        503,
        `the consensus is full (${this.heldBytes} of ${this.relaysBudget} bytes of relay entries are listed): ` +
          'the directory lists no further relays until some leave; retry later',
      );
    }
    this.tombstones.delete(descriptor.id);
    const since = this.since.get(descriptor.id);
    if (since) delete since.gone;
    else this.since.set(descriptor.id, { since: now });
    this.put({
      descriptor,
      envelope,
      firstSeen: held ? held.firstSeen : now,
      lastSeen: now,
      source: source ? addressKey(source) : held?.source,
      flags,
      entryBytes,
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
    this.remove(id, now);
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
        this.remove(id, now);
        dropped.push(r);
      }
    }
    for (const [id, t] of this.tombstones) if (t.expires <= now) this.tombstones.delete(id);
    this.forgetGone(now);
    if (dropped.length > 0) this.versionCounter++;
    return dropped;
  }

  /** Forgets relays gone longer than the retention, and the earliest-gone beyond the cap. */
  private forgetGone(now: number): void {
    const gone: [string, number][] = [];
    for (const [id, s] of this.since) {
      if (s.gone === undefined) continue;
      if (now - s.gone > LISTED_SINCE_RETENTION_MS) this.since.delete(id);
      else gone.push([id, s.gone]);
    }
    if (gone.length > MAX_REMEMBERED_GONE) {
      gone.sort((a, b) => a[1] - b[1]);
      for (const [id] of gone.slice(0, gone.length - MAX_REMEMBERED_GONE)) this.since.delete(id);
    }
  }

  /** What the store keeps. */
  snapshot(): { relays: StoredRelay[]; withdrawn: Tombstone[]; listedSince: ListedSince[] } {
    return {
      relays: [...this.relays.values()].map((r) => ({
        envelope: r.envelope,
        firstSeen: r.firstSeen,
        lastSeen: r.lastSeen,
        ...(r.source ? { source: r.source } : {}),
      })),
      withdrawn: [...this.tombstones.values()],
      listedSince: [...this.since].map(([id, s]) => ({ id, ...s })),
    };
  }
}
