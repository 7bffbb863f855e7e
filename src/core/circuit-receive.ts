// Implements docs/protocol.md §3.4 (backward cells) and §4.2 (who may speak for a stream) at the
// client: the receive path of one circuit's relay cells, no I/O. In order:
//   1. receiveRelayCells: the relay cells of one circuit that arrived together, as one batch.
//   2. peelHop: one hop's layer off every cell still unclaimed, in one cipher call.
//   3. the cells whose tag came out as zeros were sent by that hop (isOrigin): relayMessage;
//      the others go on to the next hop.
//   4. a cell no hop claims was changed on the way: the circuit is destroyed (INTEGRITY); on a
//      circuit joined at a rendezvous point (§8.7) it is first opened with the end-to-end layer,
//      whose sender (the far end) is hop `hops.length`.
//   5. relayMessage: EXTENDED from the last hop to the build, TRUNCATED ends the circuit, a stream
//      message from the exit to the streams, an onion service message (§8.5) from the last hop to
//      the circuit (from any other hop each is a protocol violation).
// What the circuit does with each outcome is its own (CircuitReceiver); nothing here keeps a cell.

import { Scratch } from '../buffers/scratch.js';
import { BACKWARD_TAG_LEN, isOrigin } from '../crypto/backward-layer.js';
import { FORWARD_MARKER_LEN, type ForwardLayer } from '../crypto/forward-onion.js';
import {
  CELL_BODY_LEN,
  CellCommand,
  DestroyReason,
  destroyReasonName,
  RelayCommand,
} from '../wire/constants.js';
import { decodeRelayMessage, readRelayHeader, relayData } from '../wire/relay-cell.js';
import { decodeExtended, decodeTruncated } from '../wire/relay-messages.js';
import type { CircuitHop } from './circuit-build.js';

/** What the receive path tells the circuit it serves. */
export interface CircuitReceiver {
  readonly closed: boolean;
  readonly hops: readonly CircuitHop[];
  /** An EXTENDED from the last hop: its handshake data, for the build. */
  extended(hdata: Buffer): void;
  /** CONNECTED, END, DATA or SENDME from the exit; `tag` is what a circuit SENDME for the cell echoes. */
  streamMessage(command: number, streamId: number, data: Buffer, tag: Buffer): void;
  /**
   * Once the circuit is joined at a rendezvous point (§8.7): the layer that opens what the far end
   * sent, which is then the circuit's exit, hop `hops.length`. Absent or null on any other circuit.
   */
  readonly endToEnd?: ForwardLayer | null;
  /** An onion service message (§8.5) from the last hop; without this method it destroys the circuit. */
  onionMessage?(command: number, data: Buffer): void;
  /** A BEGIN from the far end of a joined circuit (a service's streams); without it, PROTOCOL. */
  begin?(streamId: number, data: Buffer): void;
  /** Tear the circuit down for `why`, telling the entry `reason` (`remoteReason`: what the network said). */
  destroy(reason: number, why: string, remoteReason?: number): void;
}

/** Where the cells of one batch are joined for one cipher call per hop (reused, never kept). */
const peelBatch = new Scratch();

/** Step 1: relay cell bodies of one circuit, in the order they arrived; any error costs the circuit. */
export function receiveRelayCells(circuit: CircuitReceiver, bodies: Buffer[]): void {
  try {
    let pending = bodies;
    // When no cell stopped at the previous hop, its output is already one contiguous buffer.
    let joined: Buffer | null = null;
    for (let hop = 0; hop < circuit.hops.length && pending.length > 0; hop++) {
      const tagsIn = Buffer.allocUnsafe(pending.length * BACKWARD_TAG_LEN);
      const peeled = peelHop(circuit, hop, pending, joined, tagsIn);
      // Step 3: each cell this hop sent is handled now, in order; the rest go on.
      const rest: Buffer[] = [];
      for (let k = 0; k < pending.length; k++) {
        if (circuit.closed) return;
        const body = peeled.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN);
        if (isOrigin(body)) {
          relayMessage(circuit, hop, body, tagsIn.subarray(k * BACKWARD_TAG_LEN, (k + 1) * BACKWARD_TAG_LEN));
        } else rest.push(body);
      }
      joined = rest.length === pending.length ? peeled : null;
      pending = rest;
    }
    // Step 4.
    if (pending.length > 0 && !circuit.closed) {
      if (circuit.endToEnd) receiveEndToEnd(circuit, circuit.endToEnd, pending);
      else tampered(circuit);
    }
  } catch (err) {
    circuit.destroy(DestroyReason.PROTOCOL, `protocol error: ${(err as Error).message}`);
  }
}

function tampered(circuit: CircuitReceiver): void {
  circuit.destroy(
    DestroyReason.INTEGRITY,
    'a cell from the network failed its integrity check (tampered or corrupt)',
  );
}

/**
 * Step 4 on a joined circuit: cells no relay of the circuit sent, each checked and opened by the
 * end-to-end layer as the far end sealed it (§8.7). A tag that fails is a change on the way.
 */
function receiveEndToEnd(circuit: CircuitReceiver, layer: ForwardLayer, bodies: Buffer[]): void {
  const results = layer.openMany(
    bodies,
    bodies.map(() => CellCommand.RELAY),
  );
  for (const opened of results) {
    if (circuit.closed) return;
    if (opened.kind === 'tampered') {
      tampered(circuit);
      return;
    }
    if (opened.kind === 'forward') {
      circuit.destroy(DestroyReason.PROTOCOL, 'protocol error: the far end sent a cell past itself');
      return;
    }
    const { command, streamId, data } = decodeRelayMessage(opened.payload, FORWARD_MARKER_LEN);
    farEndMessage(circuit, command, streamId, data, opened.tag);
  }
}

/** What the far end of a joined circuit may say: its streams' messages, BEGIN to a service, padding. */
function farEndMessage(
  circuit: CircuitReceiver,
  command: number,
  streamId: number,
  data: Buffer,
  tag: Buffer,
): void {
  switch (command) {
    case RelayCommand.CONNECTED:
    case RelayCommand.END:
    case RelayCommand.DATA:
    case RelayCommand.SENDME:
      circuit.streamMessage(command, streamId, data, tag);
      return;
    case RelayCommand.BEGIN:
      if (circuit.begin) circuit.begin(streamId, data);
      else
        circuit.destroy(DestroyReason.PROTOCOL, 'protocol error: BEGIN from the far end of a client circuit');
      return;
    case RelayCommand.DROP:
      return;
    default:
      circuit.destroy(
        DestroyReason.PROTOCOL,
        `protocol error: relay command ${command} from the far end of a joined circuit`,
      );
  }
}

/** The onion service messages a relay sends toward a circuit's origin (§8.5). */
const ONION_ANSWERS: ReadonlySet<number> = new Set([
  RelayCommand.INTRODUCE2,
  RelayCommand.RENDEZVOUS2,
  RelayCommand.INTRO_ESTABLISHED,
  RelayCommand.RENDEZVOUS_ESTABLISHED,
  RelayCommand.INTRODUCE_ACK,
  RelayCommand.HS_DESC_STORED,
  RelayCommand.HS_DESC_FETCHED,
]);

/**
 * Step 2: hop `hop`'s layer off every body of `pending` in one cipher call (the same keystream
 * positions as one cell at a time). Into `tagsIn`, the tag each cell arrived at this hop with: what a
 * circuit SENDME for it echoes (§5), kept apart since the input may be shared scratch space.
 */
function peelHop(
  circuit: CircuitReceiver,
  hop: number,
  pending: Buffer[],
  joined: Buffer | null,
  tagsIn: Buffer,
): Buffer {
  let input: Buffer;
  if (joined) input = joined;
  else if (pending.length === 1) input = pending[0];
  else {
    input = peelBatch.take(pending.length * CELL_BODY_LEN);
    for (let k = 0; k < pending.length; k++) pending[k].copy(input, k * CELL_BODY_LEN);
  }
  for (let k = 0; k < pending.length; k++) {
    input.copy(tagsIn, k * BACKWARD_TAG_LEN, k * CELL_BODY_LEN, k * CELL_BODY_LEN + BACKWARD_TAG_LEN);
  }
  return circuit.hops[hop].crypto.backward.peel(input);
}

/** Step 5: a relay message hop `hop` sent. Malformed data throws (step 1 destroys the circuit). */
function relayMessage(circuit: CircuitReceiver, hop: number, body: Buffer, tag: Buffer): void {
  const { command, streamId } = readRelayHeader(body);
  const data = relayData(body);
  const last = hop === circuit.hops.length - 1;
  switch (command) {
    case RelayCommand.EXTENDED:
      if (!last) {
        circuit.destroy(DestroyReason.PROTOCOL, 'protocol error: EXTENDED from a hop that is not the last');
        return;
      }
      circuit.extended(decodeExtended(data).hdata);
      return;
    case RelayCommand.TRUNCATED: {
      const { reason } = decodeTruncated(data);
      const relay = circuit.hops[hop].relay.nickname;
      circuit.destroy(
        DestroyReason.DESTROYED,
        `${relay} could not extend the circuit (${destroyReasonName(reason)})`,
        reason,
      );
      return;
    }
    case RelayCommand.CONNECTED:
    case RelayCommand.END:
    case RelayCommand.DATA:
    case RelayCommand.SENDME:
      // Streams are attached to the exit, and only the exit's layer may speak for them: an entry or
      // middle sealing one of these with its own keys could cut a download short (an END read as a
      // clean end of file) or fake a refusal, so it is a protocol violation that takes the circuit.
      // On a joined circuit they belong to the far end (step 4), not to the rendezvous point.
      if (!last || circuit.endToEnd) {
        circuit.destroy(
          DestroyReason.PROTOCOL,
          `protocol error: stream message ${command} from hop ${hop + 1}, not the exit: ${circuit.hops[hop].relay.nickname}`,
        );
        return;
      }
      circuit.streamMessage(command, streamId, data, tag);
      return;
    default:
      if (!ONION_ANSWERS.has(command)) return;
      // Only the last hop has a role (introduction point, rendezvous point, store): from an entry or
      // middle such a message is forged, and one the circuit did not ask for is as bad.
      if (!last || !circuit.onionMessage) {
        circuit.destroy(
          DestroyReason.PROTOCOL,
          `protocol error: onion service message ${command} from hop ${hop + 1} (${circuit.hops[hop].relay.nickname})`,
        );
        return;
      }
      circuit.onionMessage(command, data);
      return;
  }
}
