// A client built by hand for tests that must send what the real client never would: a link to a
// relay as an anonymous client, every cell it receives kept in order, and one-hop circuits whose keys
// the test holds (so it can wrap any relay message, replay a cell, forge a SENDME).
import { isOrigin } from '../../src/crypto/backward-layer.js';
import { type CircuitHopCrypto, circuitHopCrypto, wrapForward } from '../../src/crypto/forward-onion.js';
import { type HopKeys, ntorClientFinish, ntorClientStart } from '../../src/crypto/ntor.js';
import { connectLink, type Link } from '../../src/net/link.js';
import type { Cell } from '../../src/wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate } from '../../src/wire/cell-bodies.js';
import { CellCommand, HandshakeType } from '../../src/wire/constants.js';
import { encodeRelayMessage, readRelayHeader, relayData } from '../../src/wire/relay-cell.js';
import { waitFor } from './wait.js';

/** Where a relay listens and who it is: an in-process `Relay` fits as it is. */
export interface RelayTarget {
  port: number;
  id: Buffer;
  onionKey: { publicKey: Buffer };
  host?: string;
}

export interface RawLink {
  link: Link;
  /** Every cell received on the link, in order. */
  cells: Cell[];
  /** The first cell received on `circId` (after `skip` of them) that `match` accepts. */
  next(circId: number, match?: (c: Cell) => boolean, skip?: number): Promise<Cell>;
  /** The cells of `circId` in order, each once: the first one not taken yet (waiting for it). */
  take(circId: number): Promise<Cell>;
  /** How many cells of `circId` arrived and were not taken yet. */
  untaken(circId: number): number;
  close(): void;
}

/** A link to `relay` as an anonymous client, collecting what arrives. */
export async function rawLink(relay: RelayTarget): Promise<RawLink> {
  const link = await connectLink({
    host: relay.host ?? '127.0.0.1',
    port: relay.port,
    relayId: relay.id,
    me: { identity: null },
  });
  const cells: Cell[] = [];
  link.on({ cells: (cs) => cells.push(...cs) });
  const taken = new Map<number, number>();
  const next = (circId: number, match: (c: Cell) => boolean = () => true, skip = 0) =>
    waitFor(`a cell on circuit ${circId.toString(16)}`, () => {
      let seen = 0;
      for (const c of cells) if (c.circId === circId && match(c) && seen++ === skip) return c;
      return null;
    });
  const onCircuit = (circId: number) => cells.filter((c) => c.circId === circId).length;
  return {
    link,
    cells,
    next,
    async take(circId) {
      const n = taken.get(circId) ?? 0;
      const cell = await next(circId, undefined, n);
      taken.set(circId, n + 1);
      return cell;
    },
    untaken: (circId) => onCircuit(circId) - (taken.get(circId) ?? 0),
    close: () => link.close(),
  };
}

export interface RawHop {
  raw: RawLink;
  circId: number;
  keys: HopKeys;
  hop: CircuitHopCrypto;
  /** The onionskin the CREATE carried (a replay sends it again). */
  onionskin: Buffer;
  /** Wraps a relay message for this hop and sends it (RELAY unless told otherwise); returns the body. */
  send(relayCommand: number, streamId: number, data: Buffer, cellCommand?: number): Buffer;
  /** The cells that came back on this circuit, CREATED first. */
  received(): Cell[];
  /** The next cell on this circuit not taken yet (CREATED was). */
  take(): Promise<Cell>;
  /** The relay message in a backward cell this hop sent (its layer peeled); throws for any other cell. */
  read(cell: Cell): { command: number; streamId: number; data: Buffer };
  /** Resolves with the reason of the DESTROY the relay sends on this circuit. */
  destroyed(): Promise<number>;
}

/** CREATE (ntor) to the relay at the end of `raw`, waits for CREATED and derives the hop's keys. */
export async function createHop(raw: RawLink, relay: RelayTarget, circId: number): Promise<RawHop> {
  const { onionskin, state } = ntorClientStart(relay.id, relay.onionKey.publicKey);
  raw.link.send(circId, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin));
  const created = await raw.take(circId);
  if (created.command !== CellCommand.CREATED) {
    throw new Error(`CREATE on ${circId.toString(16)} was answered with cell command ${created.command}`);
  }
  const keys = ntorClientFinish(state, decodeCreated(created.body).hdata);
  // The relay this link reaches is the circuit's entry: it keys as one (§3.4).
  const hop = circuitHopCrypto(keys, { firstHop: true });
  return {
    raw,
    circId,
    keys,
    hop,
    onionskin,
    send(relayCommand, streamId, data, cellCommand = CellCommand.RELAY) {
      const { body } = wrapForward(
        [hop.forward],
        encodeRelayMessage(relayCommand, streamId, data),
        cellCommand,
      );
      raw.link.send(circId, cellCommand, body);
      return body;
    },
    received: () => raw.cells.filter((c) => c.circId === circId),
    take: () => raw.take(circId),
    read(cell) {
      if (cell.command !== CellCommand.RELAY)
        throw new Error(`a relay cell, not cell command ${cell.command}`);
      const body = hop.backward.peel(cell.body);
      if (!isOrigin(body)) throw new Error('a cell that did not come from the hop itself');
      const { command, streamId } = readRelayHeader(body);
      return { command, streamId, data: relayData(body) };
    },
    async destroyed() {
      const c = await raw.next(circId, (x) => x.command === CellCommand.DESTROY);
      return decodeDestroy(c.body).reason;
    },
  };
}
