// Implements the request rate limit of docs/directory-api.md: a token bucket per client address, so
// one address cannot keep the directory busy (consensus fetches, registrations that each cost a
// signature check and a reachability probe) while others wait.
import { parseIp } from '../wire/bytes.js';
import { DirectoryError } from './errors.js';

export interface RateLimitOptions {
  /** Sustained requests per second per address (default 10). */
  requestsPerSecond?: number;
  /** Requests an address may make at once before the rate applies (default 60). */
  burst?: number;
  /** Addresses tracked at most; the longest-idle ones are forgotten first (default 10_000). */
  maxAddresses?: number;
  /**
   * Limit loopback addresses too (default false). Off by default: everything on 127.0.0.1 is this
   * machine (a test network on one host, or a reverse proxy in front, which must limit by itself
   * since every request would reach us from its one address).
   */
  limitLoopback?: boolean;
  /** Clock in ms, for tests. */
  now?: () => number;
}

export const DEFAULT_RATE_PER_SECOND = 10;
export const DEFAULT_RATE_BURST = 60;
const DEFAULT_MAX_ADDRESSES = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * The key an address is limited under: IPv4 as is, IPv6 by its /64 (one host usually holds a whole
 * /64, so per-address buckets would give it 2^64 of them).
 */
export function rateKey(address: string): string {
  const ip = parseIp(address);
  if (!ip) return address;
  if (ip.length === 4) return address;
  const mapped = ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff;
  if (mapped) return `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`;
  return `${ip.subarray(0, 8).toString('hex')}::/64`;
}

/** 127/8, ::1 and IPv4-mapped 127/8. */
export function isLoopback(address: string): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  if (ip.length === 4) return ip[0] === 127;
  const mapped = ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff;
  if (mapped) return ip[12] === 127;
  return ip.subarray(0, 15).every((b) => b === 0) && ip[15] === 1;
}

export class RateLimiter {
  readonly rate: number;
  readonly burst: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;
  private readonly limitLoopback: boolean;
  // Map order is recency order: a bucket is re-inserted on every use, so the first key is the most idle.
  private readonly buckets = new Map<string, Bucket>();
  /** Requests refused so far. */
  limited = 0;

  constructor(opts: RateLimitOptions = {}) {
    this.rate = opts.requestsPerSecond ?? DEFAULT_RATE_PER_SECOND;
    this.burst = opts.burst ?? DEFAULT_RATE_BURST;
    this.maxAddresses = opts.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
    this.now = opts.now ?? Date.now;
    this.limitLoopback = opts.limitLoopback ?? false;
    if (!(this.rate > 0 && this.burst >= 1 && this.maxAddresses >= 1)) {
      throw new DirectoryError(
        'ALLIUM_DIRECTORY_CONFIG',
        0,
        'rate limit: requestsPerSecond must be > 0, burst and maxAddresses >= 1',
      );
    }
  }

  /** Addresses being tracked right now. */
  get tracked(): number {
    return this.buckets.size;
  }

  /** Takes one request's token for `address`: true if allowed. */
  take(address: string): boolean {
    if (!this.limitLoopback && isLoopback(address)) return true;
    const key = rateKey(address);
    const now = this.now();
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key);
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
      b.at = now;
    } else {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxAddresses) {
        const oldest = this.buckets.keys().next().value as string;
        this.buckets.delete(oldest);
      }
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    this.limited++;
    return false;
  }

  /** Seconds until `address` has a token again (for Retry-After), at least 1. */
  retryAfterSeconds(address: string): number {
    const b = this.buckets.get(rateKey(address));
    if (!b) return 1;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
  }
}
