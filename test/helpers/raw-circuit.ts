// A client built by hand for attack tests: its own link to an entry relay, circuits built cell by cell
// (CREATE, then EXTEND through the hops so far), and every layer's keys in the test's hands, so a
// test can send what the client code never would and read each backward cell hop by hop.
import assert from 'node:assert/strict';
import { isOrigin } from '../../src/crypto/backward-layer.js';
import { type CircuitHopCrypto, circuitHopCrypto, wrapForward } from '../../src/crypto/forward-onion.js';
import { type HopKeys, ntorClientFinish, ntorClientStart } from '../../src/crypto/ntor.js';
import { connectLink, type Link } from '../../src/net/link.js';
import type { Relay } from '../../src/relay/relay.js';
import type { Cell } from '../../src/wire/cell.js';
import { decodeCreated, encodeCreate } from '../../src/wire/cell-bodies.js';
import { CellCommand, HandshakeType, RelayCommand } from '../../src/wire/constants.js';
import { encodeRelayMessage, readRelayHeader, relayData } from '../../src/wire/relay-cell.js';
import { decodeExtended, encodeExtend } from '../../src/wire/relay-messages.js';
import { waitFor } from './wait.js';

/** A backward cell with the layers peeled down to the hop that sent it (hop -1: none did). */
export interface Received {
  hop: number;
  command: number;
  streamId: number;
  data: Buffer;
  /** The cell's first 16 bytes as that hop sent them: the tag a SENDME acknowledging it echoes. */
  tag: Buffer;
}

export interface RawCircuit {
  circId: number;
  hops: CircuitHopCrypto[];
  keys: HopKeys[];
  /** Sends a relay message to hop `hop` (default: the last). */
  send(command: number, streamId: number, data: Buffer, opts?: { hop?: number; early?: boolean }): Buffer;
  /** The next cell on this circuit, as it came (RELAY, DESTROY, ...). */
  nextCell(): Promise<Cell>;
  /** Peels a backward RELAY cell hop by hop (advancing every peeled hop's seq). */
  peel(cell: Cell): Received;
  /** Cells received and not yet taken. */
  readonly queued: Cell[];
}

export interface RawClient {
  link: Link;
  /** Builds a circuit through `path` (path[0] is the relay this client is linked to). */
  circuit(circId: number, path: Relay[]): Promise<RawCircuit>;
  close(): void;
}

/** A raw client linked to `entry` as a client (its link does not authenticate as a relay). */
export async function rawClient(entry: Relay): Promise<RawClient> {
  const link = await connectLink({
    host: '127.0.0.1',
    port: entry.port,
    relayId: entry.id,
    me: { identity: null },
  });
  const inbox = new Map<number, Cell[]>();
  link.on({
    cells: (cells) => {
      for (const c of cells) {
        if (c.circId === 0) continue;
        const q = inbox.get(c.circId) ?? [];
        q.push(c);
        inbox.set(c.circId, q);
      }
    },
  });
  const queueOf = (circId: number): Cell[] => {
    let q = inbox.get(circId);
    if (!q) {
      q = [];
      inbox.set(circId, q);
    }
    return q;
  };
  return {
    link,
    close: () => link.close(),
    async circuit(circId, path) {
      assert.ok(path.length > 0 && path[0].id.equals(entry.id), 'a path that starts at the linked relay');
      const queued = queueOf(circId);
      const nextCell = async () => {
        await waitFor(`a cell on circuit ${circId.toString(16)}`, () => queued.length > 0, {
          timeoutMs: 30_000,
          everyMs: 5,
        });
        return queued.shift()!;
      };
      const hops: CircuitHopCrypto[] = [];
      const keys: HopKeys[] = [];
      const send: RawCircuit['send'] = (command, streamId, data, opts = {}) => {
        const to = opts.hop ?? hops.length - 1;
        const cellCommand = opts.early ? CellCommand.RELAY_EARLY : CellCommand.RELAY;
        const { body } = wrapForward(
          hops.slice(0, to + 1).map((h) => h.forward),
          encodeRelayMessage(command, streamId, data),
          cellCommand,
        );
        link.send(circId, cellCommand, body);
        return body;
      };
      const peel = (cell: Cell): Received => {
        assert.equal(cell.command, CellCommand.RELAY, `a relay cell, not command ${cell.command}`);
        let b = cell.body;
        let tag = Buffer.from(b.subarray(0, 16));
        for (let i = 0; i < hops.length; i++) {
          tag = Buffer.from(b.subarray(0, 16));
          b = hops[i].backward.peel(b);
          if (isOrigin(b)) {
            const { command, streamId } = readRelayHeader(b);
            return { hop: i, command, streamId, data: relayData(b), tag };
          }
        }
        return { hop: -1, command: -1, streamId: -1, data: Buffer.alloc(0), tag };
      };
      for (const relay of path) {
        const { onionskin, state } = ntorClientStart(relay.id, relay.onionKey.publicKey);
        let reply: Buffer;
        if (hops.length === 0) {
          link.send(circId, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin));
          const created = await nextCell();
          assert.equal(
            created.command,
            CellCommand.CREATED,
            `CREATED from the entry, not ${created.command}`,
          );
          reply = decodeCreated(created.body).hdata;
        } else {
          send(
            RelayCommand.EXTEND,
            0,
            encodeExtend({
              address: '127.0.0.1',
              port: relay.port,
              relayId: relay.id,
              htype: HandshakeType.NTOR_X25519_SHA256,
              hdata: onionskin,
            }),
            { early: true },
          );
          const got = peel(await nextCell());
          assert.equal(got.command, RelayCommand.EXTENDED, `EXTENDED, not relay command ${got.command}`);
          reply = decodeExtended(got.data).hdata;
        }
        const k = ntorClientFinish(state, reply);
        keys.push(k);
        hops.push(circuitHopCrypto(k, { firstHop: hops.length === 0 }));
      }
      return { circId, hops, keys, send, nextCell, peel, queued };
    },
  };
}
