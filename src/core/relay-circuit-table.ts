// Implements docs/protocol.md §2.2-§2.3 and §3.4 at a relay: the circuits of each link by id, the
// cells this hop itself sends toward the client (sealed with its backward layer), and teardown (a
// DESTROY to each side that does not know yet). No I/O: cells leave through each link's send().

import { Scratch } from '../buffers/scratch.js';
import { circuitHopCrypto } from '../crypto/forward-onion.js';
import type { HopKeys } from '../crypto/ntor.js';
import { randomIntBetween } from '../crypto/random.js';
import { encodeDestroy } from '../wire/cell-bodies.js';
import { CELL_BODY_LEN, CellCommand, CIRC_ID_INITIATOR_BIT, DestroyReason } from '../wire/constants.js';
import { writeRelayBody } from '../wire/relay-cell.js';
import { type CellLink, type CircuitEntry, RelayCircuit } from './relay-circuit.js';

/**
 * Test hook (RelayOptions.inspect): every relay cell body after this hop's layer was removed (forward)
 * or added (backward), with where it came from; it may change the body, or `from.command`.
 */
export type CellInspector = (
  body: Buffer,
  direction: 'forward' | 'backward',
  from: { peerRelayId: Buffer | null; command?: number; own?: boolean },
) => void;

export interface CircuitTableOptions {
  /** `circ` is being torn down: its streams end (before it is marked closed). */
  closing(circ: RelayCircuit): void;
  stats: { cellsOut: number; idleCircuitsClosed: number };
  inspect?: CellInspector;
  /** The clock (ms) of idle circuits. */
  now: () => number;
}

/** Where outgoing cells are sealed. */
const sealBatch = new Scratch();

export class RelayCircuitTable<L extends CellLink = CellLink> {
  /** Every open link and its circuits by id (a circuit appears under both its links). */
  readonly circuits = new Map<L, Map<number, CircuitEntry>>();

  constructor(private readonly opts: CircuitTableOptions) {}

  linkOpened(link: L): void {
    this.circuits.set(link, new Map());
  }

  /** The link closed: every circuit on it goes, and the other side of each is told. */
  linkClosed(link: L): void {
    const map = this.circuits.get(link);
    this.circuits.delete(link);
    if (!map) return;
    for (const { circ, side } of map.values()) this.teardown(circ, DestroyReason.CHANNEL_CLOSED, side);
  }

  /** A circuit a CREATE on `link` made, with `keys` for its hop. */
  open(link: L, circId: number, keys: HopKeys): RelayCircuit {
    // This hop is the circuit's entry when the circuit came over a link whose peer did not
    // authenticate as a relay: a client's (its backward layer is then AES-CTR alone, §3.4).
    const firstHop = link.peerRelayId === null;
    const circ = new RelayCircuit(
      { link, circId },
      circuitHopCrypto(keys, { firstHop }),
      firstHop,
      this.opts.now(),
    );
    this.circuits.get(link)?.set(circId, { circ, side: 'prev' });
    return circ;
  }

  /** Continues `circ` on `link` (an EXTEND's), under a fresh circuit id; false if the link is gone. */
  attachNext(circ: RelayCircuit, link: L): boolean {
    const map = this.circuits.get(link);
    if (!map || link.isClosed) return false;
    let circId: number;
    for (;;) {
      circId = randomIntBetween(0, 0x80000000);
      if (circId === 0) continue;
      if (link.initiator) circId = (circId | CIRC_ID_INITIATOR_BIT) >>> 0;
      if (!map.has(circId)) break;
    }
    circ.next = { link, circId };
    map.set(circId, { circ, side: 'next' });
    return true;
  }

  /** Seals a relay message from this hop and sends it toward the client. Returns its mac. */
  sendBackward(circ: RelayCircuit, command: number, streamId: number, data: Buffer): Buffer {
    return this.sendBackwardMany(circ, command, streamId, [data])[0];
  }

  /** Seals one cell per entry of `datas`, adds this hop's layer to all of them in one call, and sends them. */
  sendBackwardMany(circ: RelayCircuit, command: number, streamId: number, datas: Buffer[]): Buffer[] {
    const batch = sealBatch.take(datas.length * CELL_BODY_LEN);
    for (let k = 0; k < datas.length; k++) {
      writeRelayBody(batch.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN), command, streamId, datas[k]);
    }
    const { out: sealed, tags } = circ.crypto.backward.originate(batch);
    if (circ.closed) return tags;
    if (this.opts.inspect) {
      for (let k = 0; k < datas.length; k++) {
        this.opts.inspect(sealed.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN), 'backward', {
          peerRelayId: circ.prev.link.peerRelayId,
          own: true,
        });
      }
    }
    for (let k = 0; k < datas.length; k++) {
      circ.prev.link.send(
        circ.prev.circId,
        CellCommand.RELAY,
        sealed.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN),
      );
    }
    this.opts.stats.cellsOut += datas.length;
    return tags;
  }

  /** Ends the part of `circ` beyond this hop (TRUNCATE), telling the next hop. */
  teardownNext(circ: RelayCircuit, reason: number): void {
    const next = circ.next;
    if (!next) return;
    circ.next = null;
    this.circuits.get(next.link as L)?.delete(next.circId);
    next.link.send(next.circId, CellCommand.DESTROY, encodeDestroy(reason));
  }

  /** Forgets a circuit and tells the side(s) that did not already know (`from` told us). */
  teardown(circ: RelayCircuit, reason: number, from: 'prev' | 'next' | null): void {
    if (circ.closed) return;
    this.opts.closing(circ);
    circ.closed = true;
    this.circuits.get(circ.prev.link as L)?.delete(circ.prev.circId);
    if (from !== 'prev') circ.prev.link.send(circ.prev.circId, CellCommand.DESTROY, encodeDestroy(reason));
    if (circ.next) {
      this.circuits.get(circ.next.link as L)?.delete(circ.next.circId);
      if (from !== 'next') circ.next.link.send(circ.next.circId, CellCommand.DESTROY, encodeDestroy(reason));
    }
  }

  /**
   * Destroys circuits that carried no cell for `idleMs` (with a stream open at this hop, or as an
   * introduction point, none is idle). Cell counts are compared with the previous pass, so relaying a cell costs nothing more.
   */
  closeIdleCircuits(idleMs: number): void {
    const now = this.opts.now();
    const idle: RelayCircuit[] = [];
    for (const map of this.circuits.values()) {
      for (const { circ, side } of map.values()) {
        if (side !== 'prev') continue;
        const cells = circ.cellsForward + circ.cellsBackward;
        // An introduction circuit waits, silent, for clients it cannot foresee (§8.5): not idle.
        if (cells !== circ.sweptCells || (circ.mux?.streams.size ?? 0) > 0 || circ.onion?.kind === 'intro') {
          circ.sweptCells = cells;
          circ.quietSince = now;
        } else if (now - circ.quietSince >= idleMs) idle.push(circ);
      }
    }
    for (const circ of idle) {
      this.opts.stats.idleCircuitsClosed++;
      this.teardown(circ, DestroyReason.FINISHED, null);
    }
  }

  /** Gives back the scratch space a burst grew (between turns, once every queue is empty). */
  releaseScratch(): void {
    sealBatch.release();
  }
}
