// Implements docs/protocol.md §3.4 (backward cells) and §4.2 (who may speak for a stream) at the
// client: the receive path of one circuit's relay cells, no I/O. In order:
//   1. receiveRelayCells: the relay cells of one circuit that arrived together, as one batch.
//   2. peelHop: one hop's layer off every cell still unclaimed, in one cipher call.
//   3. the cells whose tag came out as zeros were sent by that hop (isOrigin): relayMessage;
//      the others go on to the next hop.
//   4. a cell no hop claims was changed on the way: the circuit is destroyed (INTEGRITY).
//   5. relayMessage: EXTENDED from the last hop to the build, TRUNCATED ends the circuit, a stream
//      message from the exit to the streams (from any other hop it is a protocol violation).
// What the circuit does with each outcome is its own (CircuitReceiver); nothing here keeps a cell.

import { Scratch } from '../buffers/scratch.js';
import { BACKWARD_TAG_LEN, isOrigin } from '../crypto/backward-layer.js';
import { CELL_BODY_LEN, DestroyReason, destroyReasonName, RelayCommand } from '../wire/constants.js';
import { readRelayHeader, relayData } from '../wire/relay-cell.js';
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
      circuit.destroy(
        DestroyReason.INTEGRITY,
        'a cell from the network failed its integrity check (tampered or corrupt)',
      );
    }
  } catch (err) {
    circuit.destroy(DestroyReason.PROTOCOL, `protocol error: ${(err as Error).message}`);
  }
}

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
      if (!last) {
        circuit.destroy(
          DestroyReason.PROTOCOL,
          `protocol error: stream message ${command} from hop ${hop + 1}, not the exit: ${circuit.hops[hop].relay.nickname}`,
        );
        return;
      }
      circuit.streamMessage(command, streamId, data, tag);
      return;
    default:
      return;
  }
}
