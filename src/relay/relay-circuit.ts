// Implements docs/protocol.md §3.4 (layers) at a relay: one circuit's two sides and its hop crypto.

import type { StreamMux } from '../core/stream-mux.js';
import type { CircuitHopCrypto } from '../crypto/forward-onion.js';
import type { Link } from '../net/link.js';

export interface CircuitSide {
  link: Link;
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
  /** The idle sweep's view (Relay.closeIdleCircuits): the cells it last counted, and since when none came. */
  sweptCells = 0;
  quietSince = Date.now();

  constructor(
    readonly prev: CircuitSide,
    readonly crypto: CircuitHopCrypto,
    /** This relay is the circuit's entry: the circuit came over a client's link (§3.4, §4.2). */
    readonly firstHop: boolean,
  ) {}
}
