// Implements docs/protocol.md §3.4 (layers) at a relay: one circuit's two sides and its hop crypto.

import type { CircuitHopCrypto } from '../crypto/forward-onion.js';
import type { IntroRateLimiter } from './intro-rate-limiter.js';
import type { StreamMux } from './stream-mux.js';

/**
 * What the relay's cell handling needs of a link (net/link.ts's Link is one): where its cells go,
 * who is at the other end, and how backed up it is. Tests stand in with plain objects.
 */
export interface CellLink {
  /** Queues one cell toward the peer. */
  send(circId: number, command: number, body: Buffer): void;
  /** The relay id the peer proved, or null: a client. */
  readonly peerRelayId: Buffer | null;
  /** This side opened the link (its circuit ids have the high bit set, §2.2). */
  readonly initiator: boolean;
  /** The secret of the link's handshake: a link-bound first hop's keys come from it (§3.6). */
  readonly linkSecret: Buffer;
  readonly isClosed: boolean;
  /** The queue toward the peer is past its pressure mark (an exit stops reading its destinations). */
  readonly pressured: boolean;
  /** Cells of `circId` waiting in the link's queue. */
  queuedCellsOf(circId: number): number;
}

/**
 * What a circuit is to this relay as an onion service's introduction point, rendezvous point or its
 * client (§8.5), once a message gave it a role; a circuit with a role carries nothing else.
 */
export type OnionRole =
  /** A service's circuit registered for `key` (an auth key, hex), its INTRODUCE2s within `limiter`. */
  | { kind: 'intro'; key: string; limiter: IntroRateLimiter }
  /** A client's circuit that sent its one INTRODUCE1. */
  | { kind: 'introduced' }
  /** A client's circuit waiting under `cookie` (hex) for the service's RENDEZVOUS1. */
  | { kind: 'rendezvous'; cookie: string }
  /** Joined at this rendezvous point: cells for the hop past this one go to `other` (§8.7). */
  | { kind: 'joined'; other: RelayCircuit };

export interface CircuitSide {
  link: CellLink;
  circId: number;
}

export class RelayCircuit {
  next: CircuitSide | null = null;
  extending = false;
  /** EXTENDs this hop has handled on the circuit (at most MAX_EXTENDS_PER_CIRCUIT, §4.1). */
  extends = 0;
  earlyForwarded = 0;
  mux: StreamMux | null = null;
  /** At the exit: the client said in a BEGIN that it takes windows past 1024 cells (§4.2, §5). */
  largeWindows = false;
  closed = false;
  cellsForward = 0;
  cellsBackward = 0;
  /** Its role in an onion service's introduction or rendezvous at this relay (§8.5), if any. */
  onion: OnionRole | null = null;
  /** The idle sweep's view (RelayCells.idleCircuits): the cells it last counted, and since when none came. */
  sweptCells = 0;

  constructor(
    readonly prev: CircuitSide,
    readonly crypto: CircuitHopCrypto,
    /** This relay is the circuit's entry: the circuit came over a client's link (§3.4, §4.2). */
    readonly firstHop: boolean,
    public quietSince: number,
  ) {}
}

/** Where a circuit id of one link leads: the circuit, and which of its sides that link is. */
export interface CircuitEntry {
  circ: RelayCircuit;
  side: 'prev' | 'next';
}
