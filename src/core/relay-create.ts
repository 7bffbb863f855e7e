// Implements docs/protocol.md §2.2 (circuit ids), §3.2 and §3.6 (CREATE) at a relay, no I/O: which
// CREATEs a link may make (id rules, circuits per link, CREATE rate, link-bound X never repeated:
// CreateGate), and the answer to each (CreateHandling: DESTROY, or CREATED and a new circuit).
import { linkBoundHop } from '../crypto/link-bound-hop.js';
import type { HopKeys } from '../crypto/ntor.js';
import { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeCreate, encodeCreated, encodeDestroy } from '../wire/cell-bodies.js';
import {
  CellCommand,
  CIRC_ID_INITIATOR_BIT,
  DestroyReason,
  HandshakeType,
  MAX_LINK_BOUND_CREATES_PER_LINK,
} from '../wire/constants.js';
import type { CellLink, CircuitEntry } from './relay-circuit.js';
import type { RelayCircuitTable } from './relay-circuit-table.js';
import { TokenBucket } from './token-bucket.js';

/** The limits CREATEs are held to (RelayLimits has them). */
export interface CreateLimits {
  /** Circuits one link may have open, answered or being answered. */
  circuitsPerLink: number;
  /** CREATEs per link per second (sustained), and the burst allowed above it. */
  createsPerSecond: number;
  createBurst: number;
}

export type CreateVerdict =
  /** Answer DESTROY(`reason`). `limit`: a resource limit refused it; else `error` says what was wrong. */
  | { kind: 'refuse'; reason: number; limit: boolean; error: Error | null }
  /** An ntor handshake to answer (it costs CPU: the handshake pool answers, maybe on a worker). */
  | { kind: 'ntor'; hdata: Buffer }
  /** A link-bound first hop, answered at once: its keys and the confirmation CREATED carries. */
  | { kind: 'link-bound'; keys: HopKeys; confirm: Buffer };

const refuse = (reason: number, limit: boolean, error: Error | null): CreateVerdict => ({
  kind: 'refuse',
  reason,
  limit,
  error,
});

/** The CREATE rules of one relay, over all its links. */
export class CreateGate {
  private readonly buckets = new WeakMap<CellLink, TokenBucket>();
  /** Every X a link-bound CREATE carried on each link (§3.6: a repeated one is refused). */
  private readonly linkBoundXs = new WeakMap<CellLink, Set<string>>();
  /** CREATEs whose handshake is still being answered, per link. */
  private readonly pending = new WeakMap<CellLink, Set<number>>();

  constructor(
    private readonly limits: CreateLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A CREATE on `link` for `circId`, whose circuits are `circuits` (by id). An 'ntor' verdict counts
   * as pending until answered() or forget().
   */
  admit(link: CellLink, circId: number, body: Buffer, circuits: ReadonlyMap<number, unknown>): CreateVerdict {
    // The peer allocates ids with the high bit set exactly when it opened the link (§2.2).
    const peerBit = (circId & CIRC_ID_INITIATOR_BIT) !== 0;
    const pendingHere = this.pending.get(link);
    if (circId === 0 || circuits.has(circId) || pendingHere?.has(circId) || peerBit === link.initiator) {
      return refuse(DestroyReason.PROTOCOL, false, null);
    }
    let bucket = this.buckets.get(link);
    if (!bucket) {
      bucket = new TokenBucket(this.limits.createsPerSecond, this.limits.createBurst, this.now);
      this.buckets.set(link, bucket);
    }
    if (circuits.size + (pendingHere?.size ?? 0) >= this.limits.circuitsPerLink || !bucket.take()) {
      return refuse(DestroyReason.RESOURCELIMIT, true, null);
    }
    try {
      const create = decodeCreate(body);
      if (create.htype === HandshakeType.LINK_BOUND) return this.linkBound(link, create.hdata);
      if (create.htype !== HandshakeType.NTOR_X25519_SHA256)
        throw new AlliumError('ALLIUM_HANDSHAKE_TYPE', 'unknown handshake');
      let pending = pendingHere;
      if (!pending) {
        pending = new Set();
        this.pending.set(link, pending);
      }
      pending.add(circId);
      return { kind: 'ntor', hdata: create.hdata };
    } catch (err) {
      return refuse(DestroyReason.PROTOCOL, false, err as Error);
    }
  }

  /** The handshake of an 'ntor' CREATE was answered: whether it is still wanted (not DESTROYed meanwhile). */
  answered(link: CellLink, circId: number): boolean {
    return this.pending.get(link)?.delete(circId) ?? false;
  }

  /** The peer DESTROYed a circuit whose CREATE is still being answered: its answer is dropped. */
  forget(link: CellLink, circId: number): void {
    this.pending.get(link)?.delete(circId);
  }

  /**
   * A link-bound first hop (§3.6), answered at once so the client's EXTEND right behind it finds the
   * circuit. Only from a client's own link: on a link from a relay it could only come from an EXTEND,
   * and the relay that sent it would hold the keys.
   */
  private linkBound(link: CellLink, hdata: Buffer): CreateVerdict {
    if (link.peerRelayId !== null) {
      throw new AlliumError('ALLIUM_HANDSHAKE_TYPE', 'a link-bound CREATE from a relay');
    }
    const { keys, confirm } = linkBoundHop(link.linkSecret, hdata);
    // The same X on one link would give two circuits the same keys (one keystream used twice).
    let seen = this.linkBoundXs.get(link);
    if (!seen) {
      seen = new Set();
      this.linkBoundXs.set(link, seen);
    }
    const x = hdata.toString('latin1');
    if (seen.has(x)) {
      throw new AlliumError(
        'ALLIUM_HANDSHAKE_REPEATED',
        'a link-bound CREATE repeated an X already used on this link',
      );
    }
    if (seen.size >= MAX_LINK_BOUND_CREATES_PER_LINK) return refuse(DestroyReason.RESOURCELIMIT, true, null);
    seen.add(x);
    return { kind: 'link-bound', keys, confirm };
  }
}

export interface CreateHandlingOptions<L extends CellLink> {
  /** Answers an ntor onionskin (maybe on a worker thread); then `done`, once: with a result, or an error. */
  host: {
    answerCreate(
      hdata: Buffer,
      done: (err: Error | null, result?: { reply: Buffer; keys: HopKeys }) => void,
    ): void;
  };
  table: RelayCircuitTable<L>;
  limits: CreateLimits;
  stats: { circuits: number; linkBoundCreates: number; limitRejections: number; handshakeFailures: number };
  log: Logger;
  now: () => number;
}

/** What a relay does with each CREATE: refuse it, or answer it and open the circuit. */
export class CreateHandling<L extends CellLink> {
  private readonly gate: CreateGate;

  constructor(private readonly opts: CreateHandlingOptions<L>) {
    this.gate = new CreateGate(opts.limits, opts.now);
  }

  /** A CREATE for `circId` on `link`, whose circuits are `circuits`. */
  create(link: L, circuits: Map<number, CircuitEntry>, circId: number, body: Buffer): void {
    const verdict = this.gate.admit(link, circId, body, circuits);
    switch (verdict.kind) {
      case 'refuse':
        if (verdict.limit) this.opts.stats.limitRejections++;
        if (verdict.error) this.noteRefused(verdict.error);
        link.send(circId, CellCommand.DESTROY, encodeDestroy(verdict.reason));
        return;
      case 'link-bound':
        this.open(link, circId, verdict.keys, verdict.confirm);
        this.opts.stats.linkBoundCreates++;
        return;
      case 'ntor':
        this.opts.host.answerCreate(verdict.hdata, (err, result) => this.answered(link, circId, err, result));
        return;
    }
  }

  /** The peer DESTROYed a circuit whose CREATE is still being answered: its answer is dropped. */
  forget(link: L, circId: number): void {
    this.gate.forget(link, circId);
  }

  /** The handshake answer for a CREATE (now, or from a worker): unless the link or circuit went meanwhile, reply. */
  private answered(
    link: L,
    circId: number,
    err: Error | null,
    result?: { reply: Buffer; keys: HopKeys },
  ): void {
    if (!this.gate.answered(link, circId)) return; // DESTROYed while waiting, or the link closed
    const map = this.opts.table.circuits.get(link);
    if (!map || link.isClosed) return;
    if (err || !result) {
      this.noteRefused(err);
      link.send(circId, CellCommand.DESTROY, encodeDestroy(DestroyReason.PROTOCOL));
      return;
    }
    this.open(link, circId, result.keys, result.reply);
  }

  /** A new circuit from a CREATE on `link`, answered with CREATED(`reply`). */
  private open(link: L, circId: number, keys: HopKeys, reply: Buffer): void {
    this.opts.table.open(link, circId, keys);
    this.opts.stats.circuits++;
    link.send(circId, CellCommand.CREATED, encodeCreated(reply));
  }

  private noteRefused(err: Error | null): void {
    this.opts.stats.handshakeFailures++;
    this.opts.log.debug({ err: err?.message }, 'CREATE refused');
  }
}
