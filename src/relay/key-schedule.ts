// Implements docs/protocol.md §3.1 "Onion key rotation" and §1.1 (link keys) on a relay's clock:
// when each key is replaced, and who is told (the handshake answerers, the directory).

import type { Logger } from '../log.js';
import type { HandshakePool } from './handshake-pool.js';
import type { LinkKeys } from './link-keys.js';
import type { OnionKeyPolicy, OnionKeys } from './onion-keys.js';

export interface KeyScheduleOptions {
  onionKeys: OnionKeys;
  onionKeyPolicy: OnionKeyPolicy;
  linkKeys: LinkKeys;
  handshakes: HandshakePool;
  stats: { onionKeyRotations: number; linkKeyRotations: number };
  log: Logger;
  /** A new onion key was made: publish it (a fresh descriptor). */
  onOnionKeyRotated(): void;
}

/** setTimeout holds at most 2^31-1 ms (~24.8 days); waking early only re-checks. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class KeySchedule {
  private onionKeyTimer: NodeJS.Timeout | null = null;
  private linkKeyTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly opts: KeyScheduleOptions) {}

  /**
   * Rotates the onion key when it is due and forgets the previous one when its grace ends (protocol
   * §3.1); a new key goes to the handshake answerers and into a fresh descriptor at once. Then waits
   * for the next change.
   */
  async maintainOnionKeys(): Promise<void> {
    const { onionKeys, onionKeyPolicy: policy, handshakes, stats, log } = this.opts;
    if (this.stopped) return;
    const { rotated, dropped } = await onionKeys.maintain(policy);
    if (rotated || dropped) {
      const { onionKey, previousOnionKey } = onionKeys.active();
      handshakes.setKeys(onionKey, previousOnionKey);
    }
    if (rotated) {
      stats.onionKeyRotations++;
      log.info({ graceHours: policy.graceMs / 3600_000 }, 'onion key rotated');
      this.opts.onOnionKeyRotated();
    }
    this.scheduleOnionKeys(onionKeys.nextChangeAt(policy) - Date.now());
  }

  private scheduleOnionKeys(inMs: number): void {
    if (this.onionKeyTimer) clearTimeout(this.onionKeyTimer);
    const wait = Math.min(MAX_TIMER_MS, Math.max(100, inMs));
    this.onionKeyTimer = setTimeout(() => {
      this.maintainOnionKeys().catch((err) => {
        this.opts.log.error(
          { err: (err as Error).message },
          'onion key rotation failed (cannot write onion-keys.json?); the current key stays, retrying in a minute',
        );
        this.scheduleOnionKeys(60_000);
      });
    }, wait);
    this.onionKeyTimer.unref();
  }

  /** Replaces the link key when it is due (§1.1); links made with the old one stay until its certificate expires. */
  scheduleLinkKeys(): void {
    const { linkKeys, stats, log } = this.opts;
    if (this.stopped) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(100, linkKeys.nextChangeAt - Date.now()));
    this.linkKeyTimer = setTimeout(() => {
      if (linkKeys.maintain()) {
        stats.linkKeyRotations++;
        log.info('link key rotated');
      }
      this.scheduleLinkKeys();
    }, wait);
    this.linkKeyTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.onionKeyTimer) clearTimeout(this.onionKeyTimer);
    if (this.linkKeyTimer) clearTimeout(this.linkKeyTimer);
  }
}
