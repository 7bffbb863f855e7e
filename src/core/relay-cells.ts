// Implements docs/protocol.md §2-§4 at a relay: what it does with every cell, no I/O. The receive
// path of the cells of one link, in order:
//   1. cells: counts them and cuts them into runs of relay cells of one circuit.
//   2. a run from the client's side: forwardRun checks every tag and removes this hop's layer in one
//      call (ForwardLayer.openMany), and a joined circuit's run gets the other circuit's layer in one
//      call too (OnionRelay.passJoined); a run toward the client: backwardRun adds this hop's layer to
//      all of them in one call (BackwardLayer.add). Anything else goes cell by cell.
//   3. cell: by command. CREATE (relay-create.ts's CreateHandling), CREATED (an EXTEND's answer: EXTENDED goes back),
//      DESTROY (teardown), RELAY and RELAY_EARLY (forwardCell, backwardCell).
//   4. forwardOpened: a tampered cell ends the circuit (INTEGRITY); one for this hop is a relayMessage;
//      any other goes on to the next hop (RELAY_EARLY counted).
//   5. backwardCell: on toward the client.
//   6. relayMessage: EXTEND (the rules here, the dialing at the host), TRUNCATE, BEGIN and stream
//      messages (the host's exit side); onion service messages, and every message of a circuit that
//      has a role in one, go to onion-relay.ts (§8.5), as do the cells a joined circuit passes on (§8.7).
// Cells leave through each link's send(). What needs I/O or a relay's own resources (an ntor answer,
// a link for an EXTEND, the exit's streams) goes to the host, whose answers come back as calls here.
// Just over 400 lines for a reason: the receive path above reads as one numbered pipeline, as
// wireguard-go's receive.go does; its rules (CREATE, EXTEND, onion roles) are in their own modules.

import { Scratch } from '../buffers/scratch.js';
import { FORWARD_MARKER_LEN, type ForwardOpen } from '../crypto/forward-onion.js';
import type { HopKeys } from '../crypto/ntor.js';
import type { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Cell } from '../wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate } from '../wire/cell-bodies.js';
import {
  CELL_BODY_LEN,
  CellCommand,
  DestroyReason,
  destroyReasonName,
  EndReason,
  MAX_EXTENDS_PER_CIRCUIT,
  MAX_RELAY_EARLY,
  RelayCommand,
} from '../wire/constants.js';
import { decodeRelayMessage } from '../wire/relay-cell.js';
import { encodeEnd, encodeExtended, encodeTruncated } from '../wire/relay-messages.js';
import { DescriptorStore } from './descriptor-store.js';
import {
  DEFAULT_ONION_RELAY_LIMITS,
  isOnionCommand,
  OnionRelay,
  type OnionRelayLimits,
} from './onion-relay.js';
import type { CellLink, CircuitEntry, RelayCircuit } from './relay-circuit.js';
import { type CellInspector, RelayCircuitTable } from './relay-circuit-table.js';
import { CreateHandling, type CreateLimits } from './relay-create.js';

/** What the cell handling asks of the relay around it. */
export interface RelayCellsHost {
  /** Answers an ntor onionskin (maybe on a worker thread); then `done`, once: with a result, or an error. */
  answerCreate(
    hdata: Buffer,
    done: (err: Error | null, result?: { reply: Buffer; keys: HopKeys }) => void,
  ): void;
  /**
   * Every forward cell this hop opened passes here on its way to forwardOpened() (step 4): a relay's
   * own method, where a test stands in for a hostile relay.
   */
  onForwardOpened(circ: RelayCircuit, cell: Cell, opened: ForwardOpen): void;
  /**
   * An EXTEND the circuit may make here (§4.1): the relay checks where it leads and, while it finds or
   * opens a link (`circ.extending` set), calls extendTo() or extendFailed() when it has one or not.
   */
  onExtend(circ: RelayCircuit, data: Buffer): void;
  /** A BEGIN at this hop: the exit side. */
  begin(circ: RelayCircuit, streamId: number, data: Buffer): void;
  /** DATA, END or SENDME for a stream of this hop; `tag` is what a circuit SENDME echoes. */
  streamMessage(circ: RelayCircuit, command: number, streamId: number, data: Buffer, tag: Buffer): void;
  /** `circ` is being torn down: its streams end (before it is marked closed). */
  closing(circ: RelayCircuit): void;
}

/** The counters the cell handling adds to (Relay.stats). */
export interface RelayCellStats {
  cellsIn: number;
  cellsOut: number;
  circuits: number;
  linkBoundCreates: number;
  limitRejections: number;
  handshakeFailures: number;
  integrityFailures: number;
  idleCircuitsClosed: number;
}

export interface RelayCellsOptions {
  host: RelayCellsHost;
  limits: CreateLimits;
  stats: RelayCellStats;
  log: Logger;
  inspect?: CellInspector;
  /** The clock (ms) of CREATE rates and idle circuits. */
  now?: () => number;
  /** The descriptors this relay stores (§8.4), and its bounds as introduction and rendezvous point. */
  onion?: { store?: DescriptorStore; limits?: Partial<OnionRelayLimits> };
}

/** Where runs of cells are joined for one cipher call. */
const runBodies = new Scratch();

/** A relay cell whose body already had this hop's layer added (in a backward run). */
type DecryptedCell = Cell & { decrypted?: boolean };

function isRelay(command: number): boolean {
  return command === CellCommand.RELAY || command === CellCommand.RELAY_EARLY;
}

function sameRelayRun(a: Cell, b: Cell): boolean {
  return a.circId === b.circId && isRelay(a.command) && isRelay(b.command);
}

/** The circuits of a relay, by link and circuit id, and what happens to each of their cells. */
export class RelayCells<L extends CellLink = CellLink> {
  /** The circuits of every link, what this hop sends on them, and their teardown. */
  readonly table: RelayCircuitTable<L>;
  private readonly host: RelayCellsHost;
  private readonly stats: RelayCellStats;
  private readonly log: Logger;
  private readonly inspect: CellInspector | undefined;
  private readonly creates: CreateHandling<L>;
  private readonly now: () => number;
  /** The relay as descriptor store, introduction point and rendezvous point (§8.5). */
  readonly onion: OnionRelay<L>;

  constructor(opts: RelayCellsOptions) {
    this.host = opts.host;
    this.stats = opts.stats;
    this.log = opts.log;
    this.inspect = opts.inspect;
    this.now = opts.now ?? Date.now;
    this.table = new RelayCircuitTable<L>({
      closing: (circ) => {
        if (circ.onion !== null) this.onion.closing(circ);
        this.host.closing(circ);
      },
      stats: opts.stats,
      inspect: opts.inspect,
      now: this.now,
    });
    this.onion = new OnionRelay<L>({
      table: this.table,
      store: opts.onion?.store ?? new DescriptorStore(undefined, this.now),
      limits: { ...DEFAULT_ONION_RELAY_LIMITS, ...opts.onion?.limits },
      log: opts.log,
      now: this.now,
    });
    this.creates = new CreateHandling<L>({
      host: opts.host,
      table: this.table,
      limits: opts.limits,
      stats: opts.stats,
      log: opts.log,
      now: this.now,
    });
  }

  // ---- the receive path ----

  /** Step 1: the cells of one frame from `link`, in order. */
  cells(link: L, cells: Cell[]): void {
    const map = this.table.circuits.get(link);
    if (!map) return;
    this.stats.cellsIn += cells.length;
    for (let i = 0; i < cells.length; ) {
      // Relay cells of one circuit that arrived together get their layer in one cipher call.
      let run = 1;
      while (i + run < cells.length && sameRelayRun(cells[i], cells[i + run])) run++;
      if (run > 1 && this.forwardRun(map, cells, i, run)) {
        i += run;
        continue;
      }
      if (run > 1) this.backwardRun(map, cells, i, run);
      for (let k = i; k < i + run; k++) this.cellSafely(link, map, cells[k]);
      i += run;
    }
  }

  /**
   * Step 2, forward: a run of relay cells from the client's side of one circuit, their tags checked
   * and this hop's layer removed in one go, then each handled in order. False when the run is not
   * one (a backward run, or an unknown circuit), for the caller to handle cell by cell.
   */
  private forwardRun(map: Map<number, CircuitEntry>, cells: Cell[], first: number, run: number): boolean {
    const head = cells[first];
    if (!isRelay(head.command)) return false;
    const entry = map.get(head.circId);
    if (entry?.side !== 'prev') return false;
    const circ = entry.circ;
    let opened: ForwardOpen[];
    try {
      const runCells = cells.slice(first, first + run);
      opened = circ.crypto.forward.openMany(
        runCells.map((c) => c.body),
        runCells.map((c) => c.command),
      );
    } catch (err) {
      this.cellFailed(circ, err as Error);
      return true;
    }
    // A joined circuit's cells for the other circuit get that circuit's layer together (§8.7).
    const joined = circ.onion !== null;
    if (joined) this.onion.holdPasses();
    for (let k = 0; k < opened.length && !circ.closed; k++) {
      try {
        this.host.onForwardOpened(circ, cells[first + k], opened[k]);
      } catch (err) {
        this.cellFailed(circ, err as Error);
      }
    }
    if (joined) this.onion.releasePasses();
    return true;
  }

  /** Step 2, backward: this hop's layer added to `run` relay cells of one circuit at once; their bodies become the result. */
  private backwardRun(map: Map<number, CircuitEntry>, cells: Cell[], first: number, run: number): void {
    const head = cells[first];
    if (!isRelay(head.command)) return;
    const entry = map.get(head.circId);
    // Forward cells are opened one by one (each has its own tag to check first).
    if (entry?.side !== 'next') return;
    const cipher = entry.circ.crypto.backward;
    const joined = runBodies.take(run * CELL_BODY_LEN);
    for (let k = 0; k < run; k++) cells[first + k].body.copy(joined, k * CELL_BODY_LEN);
    const out = cipher.add(joined);
    for (let k = 0; k < run; k++) {
      cells[first + k] = {
        ...cells[first + k],
        body: out.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN),
        decrypted: true,
      } as Cell;
    }
  }

  private cellSafely(link: L, map: Map<number, CircuitEntry>, cell: Cell): void {
    try {
      this.cell(link, map, cell);
    } catch (err) {
      this.cellFailed(map.get(cell.circId)?.circ ?? null, err as Error);
    }
  }

  /** A bug or a hostile cell must cost one circuit at most, never the relay. */
  private cellFailed(circ: RelayCircuit | null, err: Error): void {
    this.log.warn({ err: err.message, code: (err as AlliumError).code }, 'cell handling failed');
    if (circ && !circ.closed) this.table.teardown(circ, DestroyReason.PROTOCOL, null);
  }

  /** Step 3: one cell, by its command. */
  private cell(link: L, map: Map<number, CircuitEntry>, cell: Cell): void {
    const { circId, command } = cell;
    switch (command) {
      case CellCommand.PADDING:
        return;
      case CellCommand.CREATE:
        this.creates.create(link, map, cell.circId, cell.body);
        return;
      case CellCommand.RELAY:
      case CellCommand.RELAY_EARLY: {
        const entry = map.get(circId);
        if (!entry) return;
        if (entry.side === 'prev') this.forwardCell(entry.circ, cell);
        else this.backwardCell(entry.circ, cell);
        return;
      }
      case CellCommand.CREATED: {
        const entry = map.get(circId);
        if (entry?.side !== 'next' || !entry.circ.extending) return;
        entry.circ.extending = false;
        const { hdata } = decodeCreated(cell.body);
        this.table.sendBackward(entry.circ, RelayCommand.EXTENDED, 0, encodeExtended(hdata));
        return;
      }
      case CellCommand.DESTROY: {
        const entry = map.get(circId);
        if (!entry) {
          this.creates.forget(link, circId); // its handshake answer is dropped
          return;
        }
        const { reason } = decodeDestroy(cell.body);
        this.log.debug({ reason: destroyReasonName(reason), side: entry.side }, 'circuit destroyed by peer');
        this.table.teardown(entry.circ, DestroyReason.DESTROYED, entry.side);
        return;
      }
      default:
        return; // unknown commands are dropped (protocol §2.1)
    }
  }

  private forwardCell(circ: RelayCircuit, cell: Cell): void {
    this.host.onForwardOpened(circ, cell, circ.crypto.forward.open(cell.body, cell.command));
  }

  /** Step 4: a forward cell this hop opened (through the host's onForwardOpened). */
  forwardOpened(circ: RelayCircuit, cell: Cell, opened: ForwardOpen): void {
    circ.cellsForward++;
    if (opened.kind === 'tampered') {
      // The previous hop (or the link before it) changed this cell: stop it here (protocol §3.4).
      this.stats.integrityFailures++;
      this.log.info('relay cell failed its integrity check; destroying the circuit');
      this.table.teardown(circ, DestroyReason.INTEGRITY, null);
      return;
    }
    const peer = { peerRelayId: circ.prev.link.peerRelayId, command: cell.command };
    if (opened.kind === 'mine') {
      this.inspect?.(opened.payload, 'forward', peer);
      const { command, streamId, data } = decodeRelayMessage(opened.payload, FORWARD_MARKER_LEN);
      // RELAY_EARLY is for EXTEND alone (§3.5): anything else in one is a marked cell.
      if (cell.command === CellCommand.RELAY_EARLY && command !== RelayCommand.EXTEND) {
        this.table.teardown(circ, DestroyReason.PROTOCOL, null);
        return;
      }
      this.relayMessage(circ, command, streamId, data, opened.tag, cell.command === CellCommand.RELAY_EARLY);
      return;
    }
    if (!circ.next) {
      // Past this hop there is only a circuit joined here (§8.7); otherwise nothing.
      const role = circ.onion;
      if (role?.kind === 'joined') {
        this.onion.passJoined(circ, role.other, cell.command, opened.body);
        this.stats.cellsOut++;
      } else this.table.teardown(circ, DestroyReason.PROTOCOL, null);
      return;
    }
    if (cell.command === CellCommand.RELAY_EARLY && ++circ.earlyForwarded > MAX_RELAY_EARLY) {
      this.table.teardown(circ, DestroyReason.PROTOCOL, null);
      return;
    }
    this.inspect?.(opened.body, 'forward', peer);
    circ.next.link.send(circ.next.circId, peer.command, opened.body);
    this.stats.cellsOut++;
  }

  /** Step 5: a cell from further down, on toward the client with this hop's layer (added in step 2 for a run). */
  private backwardCell(circ: RelayCircuit, cell: Cell): void {
    circ.cellsBackward++;
    const body = (cell as DecryptedCell).decrypted ? cell.body : circ.crypto.backward.add(cell.body);
    this.inspect?.(body, 'backward', { peerRelayId: circ.next?.link.peerRelayId ?? null });
    circ.prev.link.send(circ.prev.circId, CellCommand.RELAY, body);
    this.stats.cellsOut++;
  }

  /** Step 6: a relay message for this hop. */
  private relayMessage(
    circ: RelayCircuit,
    command: number,
    streamId: number,
    data: Buffer,
    tag: Buffer,
    early: boolean,
  ): void {
    // A circuit with a role in an onion service carries only that role's messages (§8.5).
    if (circ.onion !== null) {
      this.onion.message(circ, command, data);
      return;
    }
    switch (command) {
      case RelayCommand.EXTEND:
        // Each EXTEND may cost a connection attempt: TRUNCATE-then-EXTEND gets MAX_EXTENDS_PER_CIRCUIT.
        if (!early || circ.next || circ.extending || ++circ.extends > MAX_EXTENDS_PER_CIRCUIT) {
          this.table.teardown(circ, DestroyReason.PROTOCOL, null);
          return;
        }
        this.host.onExtend(circ, data);
        return;
      case RelayCommand.TRUNCATE:
        if (circ.next) this.table.teardownNext(circ, DestroyReason.REQUESTED);
        this.table.sendBackward(circ, RelayCommand.TRUNCATED, 0, encodeTruncated(DestroyReason.REQUESTED));
        return;
      case RelayCommand.BEGIN:
        // No streams at the entry (§4.2): its backward tags are keystream the client can compute,
        // so SENDMEs for its DATA could be forged; and a one-hop circuit shows the exit the client.
        if (circ.firstHop) {
          this.table.sendBackward(circ, RelayCommand.END, streamId, encodeEnd(EndReason.TORPROTOCOL));
          return;
        }
        this.host.begin(circ, streamId, data);
        return;
      case RelayCommand.DATA:
      case RelayCommand.END:
      case RelayCommand.SENDME:
        if (circ.firstHop) {
          this.table.teardown(circ, DestroyReason.PROTOCOL, null);
          return;
        }
        this.host.streamMessage(circ, command, streamId, data, tag);
        return;
      default:
        if (isOnionCommand(command)) this.onion.message(circ, command, data);
        return; // DROP and unknown relay commands are ignored
    }
  }

  // ---- EXTEND's answers ----

  /** The host has a link for `circ`'s EXTEND: CREATE goes out on it, on a fresh circuit id. */
  extendTo(circ: RelayCircuit, link: L, htype: number, hdata: Buffer): void {
    if (circ.closed) return;
    if (!this.table.attachNext(circ, link)) {
      this.extendFailed(circ, DestroyReason.CONNECTFAILED);
      return;
    }
    link.send(circ.next!.circId, CellCommand.CREATE, encodeCreate(htype, hdata));
  }

  /** `circ`'s EXTEND cannot be made: TRUNCATED(`reason`) goes back to the client. */
  extendFailed(circ: RelayCircuit, reason: number): void {
    if (circ.closed) return;
    circ.extending = false;
    this.table.sendBackward(circ, RelayCommand.TRUNCATED, 0, encodeTruncated(reason));
  }

  /** Gives back the scratch space a burst grew (between turns, once every queue is empty). */
  releaseScratch(): void {
    runBodies.release();
    this.table.releaseScratch();
    this.onion.releaseScratch();
  }
}
