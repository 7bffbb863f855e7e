// Implements docs/protocol.md §1.1 "Link key rotation" at a relay: the link key its handshakes use
// now, the certificate that binds it to the identity, and when the next one replaces it. Held in
// memory only: a restart makes a fresh key, and no link key is ever written to disk.
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type IdentityKey, X25519Key } from '../crypto/keys.js';
import { LINK_CERT_MAX_VALIDITY_MS, makeLinkCert } from '../crypto/link-cert.js';
import { AlliumError } from '../errors.js';
import type { LinkIdentity } from '../net/link.js';

export interface LinkKeyPolicy {
  /** How long a link key serves new handshakes before a new one replaces it. */
  lifetimeMs: number;
  /**
   * How much longer its certificate stays valid: links made with it keep working that long after the
   * rotation (then close), and peers whose clocks run up to this much fast still accept it.
   */
  graceMs: number;
}

export const DEFAULT_LINK_KEY_POLICY: LinkKeyPolicy = {
  lifetimeMs: 7 * 24 * 3600_000,
  graceMs: 24 * 3600_000,
};

/** Where older releases kept the one link key: removed at start (it is never used again). */
const LEGACY_FILE = 'link.key';

export class LinkKeys {
  private me: LinkIdentity;
  private since: number;

  constructor(
    private readonly identity: IdentityKey,
    private readonly policy: LinkKeyPolicy,
    now = Date.now(),
  ) {
    if (!(policy.lifetimeMs > 0 && policy.graceMs > 0)) {
      throw new AlliumError(
        'ALLIUM_RELAY_OPTIONS',
        'the link key lifetime and grace period must be positive',
      );
    }
    if (policy.lifetimeMs + policy.graceMs > LINK_CERT_MAX_VALIDITY_MS) {
      throw new AlliumError(
        'ALLIUM_RELAY_OPTIONS',
        `the link key lifetime plus grace must be at most ${LINK_CERT_MAX_VALIDITY_MS / 86_400_000} days (peers refuse longer certificates)`,
      );
    }
    this.since = now;
    this.me = this.make(now);
  }

  /** Deletes a link key an earlier release stored in `dir`. */
  static forgetStored(dir: string): void {
    const legacy = join(dir, LEGACY_FILE);
    if (existsSync(legacy)) unlinkSync(legacy);
  }

  /** The key and certificate new links use. */
  get current(): LinkIdentity {
    return this.me;
  }

  /** When maintain() next has something to do. */
  get nextChangeAt(): number {
    return this.since + this.policy.lifetimeMs;
  }

  /** Replaces the key once it is `lifetimeMs` old; true when it did. Links made with the old one stay. */
  maintain(now = Date.now()): boolean {
    if (now < this.nextChangeAt) return false;
    this.since = now;
    this.me = this.make(now);
    return true;
  }

  private make(now: number): LinkIdentity {
    const linkKey = X25519Key.generate();
    const expiresAt = now + this.policy.lifetimeMs + this.policy.graceMs;
    return {
      identity: this.identity,
      linkKey,
      linkCert: makeLinkCert(this.identity, linkKey.publicKey, expiresAt),
    };
  }
}
