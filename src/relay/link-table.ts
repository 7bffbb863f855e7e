// A relay's links (docs/protocol.md §1, docs/relay.md "Limits"): which are open and to whom, the
// links EXTENDs may use or open (§4.1), and the limits on what queues toward peers: per link (the
// circuits that fill it are closed), in total (the link holding the most is closed), and idle links
// and circuits swept away.

import type { RelayCells } from '../core/relay-cells.js';
import { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import { connectLink, isQueueOverflow, type Link, LinkError, type LinkIdentity } from '../net/link.js';
import { CELL_LEN, DestroyReason } from '../wire/constants.js';
import type { ExitSide } from './exit.js';
import type { RelayLimits } from './limits.js';

/** How often, at most, a backlogged link makes the relay add up every link's queue. */
const TOTAL_QUEUE_CHECK_MS = 10;

export interface LinkTableOptions {
  limits: RelayLimits;
  cells: RelayCells<Link>;
  exit: ExitSide;
  stats: { limitRejections: number; queueShedCircuits: number };
  log: Logger;
  /** Who this relay is on a link it opens (its link key rotates). */
  me: () => LinkIdentity;
}

export class LinkTable {
  /** Open links whose peer proved a relay id (by its link certificate): any EXTEND naming that id may use one. */
  private readonly linksByPeer = new Map<string, Link>();
  /**
   * Links being opened for EXTENDs, by relay id, address and port: an EXTEND naming an honest relay's
   * id at a black-hole address holds only its own attempt, never the one to the relay's real address.
   */
  private readonly dialing = new Map<string, Promise<Link>>();
  private readonly idleSince = new Map<Link, number>();
  private idleTimer: NodeJS.Timeout | null = null;
  private lastTotalQueueCheck = Number.NEGATIVE_INFINITY;
  /** The largest queue of the links closed so far (see queuePeakBytes in Relay.gauges()). */
  closedLinksQueuePeak = 0;

  constructor(private readonly opts: LinkTableOptions) {}

  /** Every open link. */
  links(): IterableIterator<Link> {
    return this.opts.cells.table.circuits.keys();
  }

  get size(): number {
    return this.opts.cells.table.circuits.size;
  }

  /** Takes a link that finished its handshake (accepted, or opened for an EXTEND). */
  adopt(link: Link): void {
    const { limits, cells } = this.opts;
    const limit = limits.linkQueueBytes;
    link.setQueueLimits({
      pressureBytes: limit / 4,
      limitBytes: limit,
      hardBytes: 4 * limit,
      stallMs: limits.linkStallMs,
    });
    link.onBacklog = () => this.enforceTotalQueue();
    link.onOverLimit = () => this.shedQueue(link);
    link.onRelief = () => this.resumeHeld(link);
    cells.table.linkOpened(link);
    this.idleSince.set(link, Date.now());
    if (!this.idleTimer) {
      const every = Math.min(10_000, limits.idleLinkMs / 2, limits.idleCircuitMs / 2);
      this.idleTimer = setInterval(() => this.sweep(), Math.max(100, every));
      this.idleTimer.unref();
    }
    if (link.peerRelayId) {
      const hex = link.peerRelayId.toString('hex');
      const known = this.linksByPeer.get(hex);
      if (!known?.takesNewCircuits) this.linksByPeer.set(hex, link);
    }
    link.on({
      cells: (batch) => cells.cells(link, batch),
      close: (err) => this.closed(link, err),
    });
  }

  /**
   * A link to the relay an EXTEND names (§4.1): an open one whose peer proved that id, wherever it
   * was reached (unless it is near its expiry, §1.1), or else one to the EXTEND's address. Attempts
   * are shared only by EXTENDs naming the same id, address and port, so a wrong address fails only
   * the circuits that named it.
   */
  linkTo(relayId: Buffer, host: string, port: number): Promise<Link> {
    const hex = relayId.toString('hex');
    const open = this.linksByPeer.get(hex);
    if (open?.takesNewCircuits) return Promise.resolve(open);
    const key = `${hex} ${host} ${port}`;
    const pending = this.dialing.get(key);
    if (pending) return pending;
    const p = connectLink({ host, port, relayId, me: this.opts.me() }).then((link) => {
      this.adopt(link);
      return link;
    });
    this.dialing.set(key, p);
    const done = () => {
      if (this.dialing.get(key) === p) this.dialing.delete(key);
    };
    p.then(done, done);
    return p;
  }

  /** Stops the periodic sweep (the relay is stopping). */
  stopSweeping(): void {
    if (this.idleTimer) clearInterval(this.idleTimer);
  }

  /** Closes every link (the relay is stopping). */
  closeAll(): void {
    for (const link of [...this.links()]) link.close();
  }

  private closed(link: Link, err?: Error): void {
    if (isQueueOverflow(err)) this.opts.stats.limitRejections++;
    this.idleSince.delete(link);
    this.closedLinksQueuePeak = Math.max(this.closedLinksQueuePeak, link.queuePeak);
    if (link.peerRelayId) {
      const hex = link.peerRelayId.toString('hex');
      if (this.linksByPeer.get(hex) === link) this.linksByPeer.delete(hex);
    }
    if (err) this.opts.log.debug({ err: err.message }, 'link closed with an error');
    this.opts.cells.table.linkClosed(link);
  }

  /**
   * Keeps the bytes queued toward all peers under totalQueueBytes by closing the link with the most
   * queued (a stalled peer's), then the next. Summing every link costs a pass over them, so a busy
   * relay does it at most once per TOTAL_QUEUE_CHECK_MS; the periodic sweep also runs it.
   */
  private enforceTotalQueue(force = false): void {
    const now = performance.now();
    if (!force && now - this.lastTotalQueueCheck < TOTAL_QUEUE_CHECK_MS) return;
    this.lastTotalQueueCheck = now;
    const max = this.opts.limits.totalQueueBytes;
    let total = 0;
    for (const l of this.links()) total += l.writableLength;
    while (total > max) {
      let worst: Link | null = null;
      for (const l of this.links()) {
        if (!l.isClosed && (worst === null || l.writableLength > worst.writableLength)) worst = l;
      }
      if (worst === null) return;
      const queued = worst.writableLength;
      total -= queued;
      this.opts.log.warn(
        { queuedBytes: queued, limit: max },
        'closing the link with the most bytes queued: the total toward all peers passed --max-total-queue',
      );
      worst.close(
        new AlliumError(
          'ALLIUM_RELAY_QUEUE_FULL',
          `more than ${max} bytes queued toward all peers; this link held the most (${queued})`,
        ),
      );
    }
  }

  /**
   * The queue toward `link`'s peer passed --max-link-queue: closes the circuit with the most cells
   * waiting on it (they are dropped), then the next, until the queue is under the limit. The
   * circuits that fill the queue pay for it, not the others that share the link.
   */
  private shedQueue(link: Link): void {
    const { cells, stats, log } = this.opts;
    const map = cells.table.circuits.get(link);
    if (!map || link.isClosed) return;
    const limit = this.opts.limits.linkQueueBytes;
    while (!link.isClosed && link.writableLength > limit) {
      const worst = link.largestQueue();
      if (worst === null) {
        link.close(
          new LinkError('ALLIUM_LINK_QUEUE', `the peer stopped reading: more than ${limit} bytes queued`),
        );
        return;
      }
      link.dropQueued(worst.circId);
      const entry = map.get(worst.circId);
      if (!entry) continue; // cells of a circuit already gone (its DESTROY, say)
      stats.queueShedCircuits++;
      stats.limitRejections++;
      log.warn(
        { queuedBytes: worst.cells * CELL_LEN, limit },
        'closing the circuit with the most queued: its link passed --max-link-queue',
      );
      cells.table.teardown(entry.circ, DestroyReason.RESOURCELIMIT, null);
    }
  }

  /** The queue toward `link`'s peer fell back: the exit streams it held send again. */
  private resumeHeld(link: Link): void {
    const map = this.opts.cells.table.circuits.get(link);
    if (map) this.opts.exit.resumeHeld(map);
  }

  /**
   * Once every queue is empty, gives back the buffers a burst grew (link slabs, scratch space): a
   * flood's memory otherwise stays at its peak. The next burst allocates them again, once.
   */
  private giveBackMemory(): void {
    for (const link of this.links()) if (link.writableLength > 0) return;
    for (const link of this.links()) link.trimMemory();
    this.opts.cells.releaseScratch();
  }

  /**
   * Closes links that carried no circuit for idleLinkMs, circuits idle for idleCircuitMs, and
   * rendezvous circuits whose cookie waited too long; drops expired onion descriptors.
   */
  private sweep(): void {
    const { cells, limits } = this.opts;
    this.enforceTotalQueue(true);
    const now = Date.now();
    cells.table.closeIdleCircuits(limits.idleCircuitMs);
    cells.onion.sweep();
    this.giveBackMemory();
    for (const [link, map] of cells.table.circuits) {
      if (map.size > 0) {
        this.idleSince.set(link, now);
      } else if (now - (this.idleSince.get(link) ?? now) > limits.idleLinkMs) {
        link.close();
      }
    }
  }
}
