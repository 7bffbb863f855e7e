// A client's open circuits, by isolation key (docs/architecture.md "The life of a request", step 2):
// which one a stream may use, the spares built ahead of need, one build at a time per key, and the
// circuits no stream needs any more closed.

import { exitMayAllow } from '../core/path-selection.js';
import type { Logger } from '../log.js';
import { DestroyReason } from '../wire/constants.js';
import type { ClientCircuit } from './client-circuit.js';

/** The isolation key of circuits built ahead of need; no caller can pass it (it starts with a NUL). */
export const SPARE = '\u0000spare';
/** How long after handing out a spare circuit its replacement starts building. */
const SPARE_REFILL_DELAY_MS = 25;
export const DEFAULT_CIRCUIT_LIFETIME_MS = 10 * 60_000;
export const DEFAULT_CIRCUIT_IDLE_MS = 60_000;

type Target = { host: string; port: number };

export interface CircuitPoolOptions {
  pathLength: number;
  circuitLifetimeMs?: number;
  circuitIdleMs?: number;
  /** Circuits built ahead of need (default 2). */
  spareCircuits?: number;
  /** Builds a fresh circuit for `isolation` (whose exit may allow `target`). */
  build(opts: { isolation: string; target?: Target }): Promise<ClientCircuit>;
  /** Relays a spare must not go through now (they just failed). */
  avoid(): Set<string>;
  /** The client is closed: build nothing more. */
  closed(): boolean;
  log: Logger;
}

export class CircuitPool {
  readonly circuits = new Set<ClientCircuit>();
  private readonly building = new Map<string, Promise<ClientCircuit>>();
  private spareBuilds = 0;
  private refillTimer: NodeJS.Timeout | null = null;
  private retireTimer: NodeJS.Timeout | null = null;
  private readonly lifetime: number;

  constructor(private readonly opts: CircuitPoolOptions) {
    this.lifetime = opts.circuitLifetimeMs ?? DEFAULT_CIRCUIT_LIFETIME_MS;
  }

  /** A circuit for a stream of `isolation` to `target`: an open one, a build in progress, a spare, or a new one. */
  async circuitFor(isolation: string, target: Target, fresh: boolean): Promise<ClientCircuit> {
    if (!fresh) {
      for (const c of this.circuits) if (this.usable(c, isolation, target)) return c;
      // Share a build in progress for the same isolation key rather than start a second one.
      const pending = this.building.get(isolation);
      if (pending) {
        const c = await pending.catch(() => null);
        if (c && this.usable(c, isolation, target)) return c;
      }
    }
    const spare = this.takeSpare(isolation, target);
    if (spare) return spare;
    const p = this.opts.build({ isolation, target });
    this.building.set(isolation, p);
    try {
      return await p;
    } finally {
      if (this.building.get(isolation) === p) this.building.delete(isolation);
    }
  }

  private usable(c: ClientCircuit, isolation: string, target: Target): boolean {
    return (
      !c.closed &&
      c.general &&
      c.isolation === isolation &&
      c.hops.length === this.opts.pathLength &&
      Date.now() - c.createdAt < this.lifetime &&
      exitMayAllow(c.exit, target)
    );
  }

  /** Hands a never-used spare circuit (whose exit may allow `target`) to `isolation`, and builds another. */
  private takeSpare(isolation: string, target: Target): ClientCircuit | null {
    const avoid = this.opts.avoid();
    for (const c of this.circuits) {
      if (c.isolation !== SPARE || c.closed || !c.general || c.hops.length !== this.opts.pathLength) continue;
      // Not through a relay that just failed us, and only to an exit that may take the stream.
      if (!exitMayAllow(c.exit, target) || c.hops.some((h) => avoid.has(h.relay.id))) continue;
      c.isolation = isolation;
      this.refillSparesSoon();
      return c;
    }
    this.refillSpares();
    return null;
  }

  /**
   * Replaces a spare that was just handed out, a moment later: built at once, the replacement's
   * handshakes would compete (same processes, same two cores here) with the first request on the
   * spare, which is what the spare was for (fresh-circuit TTFB).
   */
  private refillSparesSoon(): void {
    if (this.refillTimer) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.refillSpares();
    }, SPARE_REFILL_DELAY_MS);
    this.refillTimer.unref();
  }

  /** Builds spare circuits in the background up to the configured number (failures just wait for next time). */
  refillSpares(): void {
    const want = this.opts.spareCircuits ?? 2;
    if (this.opts.closed() || want <= 0) return;
    let have = this.spareBuilds;
    for (const c of this.circuits) if (c.isolation === SPARE && !c.closed) have++;
    for (; have < want; have++) {
      this.spareBuilds++;
      this.opts
        .build({ isolation: SPARE })
        .catch((err) =>
          this.opts.log.debug({ err: (err as Error).message }, 'building a spare circuit failed'),
        )
        .finally(() => this.spareBuilds--);
    }
  }

  /**
   * Closes, now and then, the circuits no stream needs any more: past their lifetime, idle for
   * circuitIdleMs, or retired by newCircuits(). Each would otherwise hold its slot and memory at every
   * relay on its path until the link closed.
   */
  startRetiring(): void {
    const idle = this.opts.circuitIdleMs ?? DEFAULT_CIRCUIT_IDLE_MS;
    const every = Math.max(100, Math.min(10_000, this.lifetime / 2, idle / 2));
    this.retireTimer = setInterval(() => this.retireUnused(idle), every);
    this.retireTimer.unref();
  }

  private retireUnused(idle: number): void {
    const now = Date.now();
    for (const c of [...this.circuits]) {
      if (c.closed || c.keepOpen || c.isolation === SPARE || c.inUse) continue;
      if (c.general && c.hops.length !== this.opts.pathLength) continue;
      const retired = c.isolation.startsWith('\u0000retired-');
      if (retired || now - c.createdAt >= this.lifetime || now - c.lastUsed >= idle) {
        c.destroy(DestroyReason.FINISHED, 'no stream, and its lifetime is over or it was idle');
      }
    }
  }

  /** Circuits through guard `id` take no new streams (those open run to their end); its spares go. */
  retireGuard(id: string): void {
    for (const c of [...this.circuits]) {
      if (c.hops[0]?.relay.id !== id) continue;
      if (c.isolation === SPARE) c.destroy(DestroyReason.FINISHED, 'its entry guard was dropped');
      else c.isolation = `\u0000retired-${c.serial}`;
    }
  }

  /** Marks every circuit as used up, so the next streams get new ones. */
  newCircuits(): void {
    // Like Tor's NEWNYM: nothing built before the request serves a stream after it, spares included.
    for (const c of [...this.circuits]) {
      if (c.isolation === SPARE) c.destroy(DestroyReason.FINISHED, 'new circuits requested');
      else c.isolation = `\u0000retired-${c.serial}`;
    }
    this.refillSpares();
  }

  /** Stops the timers and closes every circuit. */
  close(): void {
    if (this.refillTimer) clearTimeout(this.refillTimer);
    if (this.retireTimer) clearInterval(this.retireTimer);
    for (const c of [...this.circuits]) {
      // Closing the client is not an error for streams still open: end them quietly.
      for (const s of c.streams()) s.destroy();
      c.destroy(DestroyReason.FINISHED, 'client closed');
    }
  }
}
