// Implements docs/protocol.md §8.4-§8.5 at a store: the descriptors a relay holds for onion
// services, filed under their blinded keys. It checks what it can without the address (layout,
// signature, expiry), keeps only the highest revision per key, and is bounded in count and bytes so
// a flood of valid descriptors (anyone can make blinded keys) costs its senders, not the relay's memory.
import { checkDescriptor } from '../crypto/onion-descriptor.js';
import type { AlliumError } from '../errors.js';
import { DescriptorStoreStatus } from '../wire/onion-messages.js';

export interface DescriptorStoreLimits {
  /** Descriptors held at most; past it a store of a new key is answered FULL. */
  count: number;
  /** Descriptor bytes held at most (descriptors are one size today; a later version may vary). */
  bytes: number;
}

/** About 4.5 MiB of descriptors: Tor's stores hold a few thousand services' descriptors each. */
export const DEFAULT_DESCRIPTOR_STORE_LIMITS: DescriptorStoreLimits = {
  count: 4096,
  bytes: 8 * 1024 * 1024,
};

interface Held {
  bytes: Buffer;
  revision: number;
  /** Unix seconds. */
  expires: number;
}

export class DescriptorStore {
  /** By blinded key (hex); a Map keeps insertion order, which the sweep does not rely on. */
  private readonly held = new Map<string, Held>();
  private heldBytes = 0;
  readonly counts = { stored: 0, refused: 0, fetched: 0, notFound: 0, expired: 0 };

  constructor(
    private readonly limits: DescriptorStoreLimits = DEFAULT_DESCRIPTOR_STORE_LIMITS,
    /** The clock, ms. */
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.held.size;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  /** HS_DESC_STORE: files `bytes` under its blinded key, or says why not (§8.5's statuses). */
  store(bytes: Buffer): DescriptorStoreStatus {
    const status = this.tryStore(bytes);
    if (status === DescriptorStoreStatus.STORED) this.counts.stored++;
    else this.counts.refused++;
    return status;
  }

  private tryStore(bytes: Buffer): DescriptorStoreStatus {
    let outer: ReturnType<typeof checkDescriptor>;
    try {
      outer = checkDescriptor(bytes, { now: this.nowSeconds() });
    } catch (err) {
      return (err as AlliumError).code === 'ALLIUM_ONION_DESCRIPTOR_EXPIRED'
        ? DescriptorStoreStatus.EXPIRED
        : DescriptorStoreStatus.INVALID;
    }
    const key = outer.blindedKey.toString('hex');
    const old = this.held.get(key);
    if (old && old.expires > this.nowSeconds() && old.revision >= outer.revision) {
      return DescriptorStoreStatus.NOT_NEWER;
    }
    const freed = old ? old.bytes.length : 0;
    if (!old && !this.hasRoom(bytes.length)) {
      this.sweep();
      if (!this.hasRoom(bytes.length)) return DescriptorStoreStatus.FULL;
    } else if (old && this.heldBytes - freed + bytes.length > this.limits.bytes) {
      return DescriptorStoreStatus.FULL;
    }
    this.heldBytes += bytes.length - freed;
    this.held.set(key, { bytes: Buffer.from(bytes), revision: outer.revision, expires: outer.expires });
    return DescriptorStoreStatus.STORED;
  }

  private hasRoom(len: number): boolean {
    return this.held.size < this.limits.count && this.heldBytes + len <= this.limits.bytes;
  }

  /** HS_DESC_FETCH: the descriptor held for `blindedKey` (the highest revision), unless expired. */
  fetch(blindedKey: Buffer): Buffer | null {
    const key = blindedKey.toString('hex');
    const held = this.held.get(key);
    if (held && held.expires <= this.nowSeconds()) this.drop(key, held);
    const found = held && held.expires > this.nowSeconds() ? held.bytes : null;
    if (found) this.counts.fetched++;
    else this.counts.notFound++;
    return found;
  }

  /** Drops every expired descriptor (the relay's periodic sweep, and a full store before it refuses). */
  sweep(): void {
    const now = this.nowSeconds();
    for (const [key, held] of this.held) if (held.expires <= now) this.drop(key, held);
  }

  private drop(key: string, held: Held): void {
    this.held.delete(key);
    this.heldBytes -= held.bytes.length;
    this.counts.expired++;
  }

  private nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }
}
