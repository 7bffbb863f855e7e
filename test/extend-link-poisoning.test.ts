// A hostile client against a middle relay's links to other relays (protocol §4.1): an EXTEND naming an
// honest relay's id at a black-hole address must not hold up the honest EXTENDs to that relay, and
// TRUNCATE-then-EXTEND cannot make the middle dial again and again on one circuit.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { isOrigin } from '../src/crypto/backward-layer.js';
import { type CircuitHopCrypto, circuitHopCrypto, wrapForward } from '../src/crypto/forward-onion.js';
import { ntorClientFinish, ntorClientStart } from '../src/crypto/ntor.js';
import { connectLink, type Link } from '../src/net/link.js';
import type { Relay } from '../src/relay/relay.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import {
  CellCommand,
  DestroyReason,
  HandshakeType,
  MAX_EXTENDS_PER_CIRCUIT,
  RelayCommand,
} from '../src/wire/constants.js';
import { encodeRelayMessage, readRelayHeader, relayData } from '../src/wire/relay-cell.js';
import { decodeTruncated, encodeExtend } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';

let network: InProcessNetwork;

before(async () => {
  network = await startNetwork({ relays: 3, exits: 1 });
});
after(async () => {
  await network?.stop();
});

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A hostile client's raw link to `relay`, with the cells that come back sorted by circuit. */
async function rawClient(relay: Relay) {
  const link = await connectLink({
    host: '127.0.0.1',
    port: relay.port,
    relayId: relay.id,
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
  const next = async (circId: number): Promise<Cell> => {
    await until(`a cell on circuit ${circId}`, () => (inbox.get(circId)?.length ?? 0) > 0);
    return inbox.get(circId)!.shift()!;
  };
  const pending = (circId: number) => inbox.get(circId)?.length ?? 0;
  return { link, next, pending };
}

/** A one-hop circuit to `relay` by ntor: the hostile client's handle on the middle. */
async function oneHop(
  c: Awaited<ReturnType<typeof rawClient>>,
  circId: number,
  relay: Relay,
): Promise<CircuitHopCrypto> {
  const { onionskin, state } = ntorClientStart(relay.id, relay.onionKey.publicKey);
  c.link.send(circId, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin));
  const created = await c.next(circId);
  assert.equal(created.command, CellCommand.CREATED);
  return circuitHopCrypto(ntorClientFinish(state, decodeCreated(created.body).hdata), { firstHop: true });
}

function sendToHop(
  link: Link,
  circId: number,
  hop: CircuitHopCrypto,
  command: number,
  data: Buffer,
  early = false,
) {
  const cellCommand = early ? CellCommand.RELAY_EARLY : CellCommand.RELAY;
  const { body } = wrapForward([hop.forward], encodeRelayMessage(command, 0, data), cellCommand);
  link.send(circId, cellCommand, body);
}

function extendTo(relay: Relay, address: string, port: number): Buffer {
  return encodeExtend({
    address,
    port,
    relayId: relay.id,
    htype: HandshakeType.NTOR_X25519_SHA256,
    hdata: ntorClientStart(relay.id, relay.onionKey.publicKey).onionskin,
  });
}

/** The relay message a backward cell from the one hop carries. */
function fromHop(hop: CircuitHopCrypto, cell: Cell): { command: number; data: Buffer } {
  assert.equal(cell.command, CellCommand.RELAY, `a relay cell, not command ${cell.command}`);
  const back = hop.backward.peel(cell.body);
  assert.ok(isOrigin(back), 'a cell from the hop itself');
  return { command: readRelayHeader(back).command, data: relayData(back) };
}

test("an EXTEND naming an honest relay's id at a black-hole address does not hold up honest EXTENDs to it", async () => {
  const [exit, entry, middle] = network.relays;
  // Accepts TCP and never answers: the middle's link handshake to it waits for its timeout.
  const held: net.Socket[] = [];
  const blackHole = net.createServer((s) => {
    s.on('error', () => {});
    held.push(s);
  });
  await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', () => r()));
  const hostile = await rawClient(middle);
  try {
    const hop = await oneHop(hostile, 0x80000101, middle);
    const holePort = (blackHole.address() as net.AddressInfo).port;
    sendToHop(
      hostile.link,
      0x80000101,
      hop,
      RelayCommand.EXTEND,
      extendTo(exit, '127.0.0.1', holePort),
      true,
    );
    await until('the middle to dial the black hole', () => held.length > 0);

    // An honest client's circuit through the same middle to that relay, while the poisoned attempt hangs.
    const byId = (id: string) => network.client.currentConsensus!.relays.find((r) => r.id === id)!;
    const circ = await network.client.buildCircuit({
      path: [byId(entry.idHex), byId(middle.idHex), byId(exit.idHex)],
    });
    assert.equal(circ.confirmedHops, 3, 'the honest circuit reached the relay the black hole claimed to be');
    assert.equal(hostile.pending(0x80000101), 0, 'the poisoned EXTEND is still waiting on the black hole');
    assert.ok(
      held.some((s) => !s.destroyed),
      'the black hole still holds the connection',
    );
    circ.destroy(DestroyReason.FINISHED, 'done');

    // Cut off, the black hole fails only the circuit that named it.
    for (const s of held) s.destroy();
    const answer = fromHop(hop, await hostile.next(0x80000101));
    assert.equal(answer.command, RelayCommand.TRUNCATED);
    assert.equal(decodeTruncated(answer.data).reason, DestroyReason.CONNECTFAILED);
  } finally {
    hostile.link.close();
    blackHole.close();
  }
});

test(`TRUNCATE-then-EXTEND past ${MAX_EXTENDS_PER_CIRCUIT} EXTENDs destroys the circuit`, async () => {
  const [exit, , middle] = network.relays;
  const hostile = await rawClient(middle);
  const circId = 0x80000201;
  try {
    const hop = await oneHop(hostile, circId, middle);
    for (let i = 0; i < MAX_EXTENDS_PER_CIRCUIT; i++) {
      sendToHop(hostile.link, circId, hop, RelayCommand.EXTEND, extendTo(exit, '127.0.0.1', exit.port), true);
      assert.equal(
        fromHop(hop, await hostile.next(circId)).command,
        RelayCommand.EXTENDED,
        `EXTEND ${i + 1}`,
      );
      sendToHop(hostile.link, circId, hop, RelayCommand.TRUNCATE, Buffer.alloc(0));
      const truncated = fromHop(hop, await hostile.next(circId));
      assert.equal(truncated.command, RelayCommand.TRUNCATED);
      assert.equal(decodeTruncated(truncated.data).reason, DestroyReason.REQUESTED);
    }
    sendToHop(hostile.link, circId, hop, RelayCommand.EXTEND, extendTo(exit, '127.0.0.1', exit.port), true);
    const last = await hostile.next(circId);
    assert.equal(last.command, CellCommand.DESTROY, 'one EXTEND too many destroys the circuit');
    assert.equal(decodeDestroy(last.body).reason, DestroyReason.PROTOCOL);
  } finally {
    hostile.link.close();
  }
});
