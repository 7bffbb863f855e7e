// A hostile client against a middle relay's links to other relays (protocol §4.1): an EXTEND naming an
// honest relay's id at a black-hole address must not hold up the honest EXTENDs to that relay, and
// TRUNCATE-then-EXTEND cannot make the middle dial again and again on one circuit.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { ntorClientStart } from '../src/crypto/ntor.js';
import type { Relay } from '../src/relay/relay.js';
import { decodeDestroy } from '../src/wire/cell-bodies.js';
import {
  CellCommand,
  DestroyReason,
  HandshakeType,
  MAX_EXTENDS_PER_CIRCUIT,
  RelayCommand,
} from '../src/wire/constants.js';
import { decodeTruncated, encodeExtend } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { createHop, rawLink } from './helpers/raw-client.js';
import { waitFor } from './helpers/wait.js';

let network: InProcessNetwork;

before(async () => {
  network = await startNetwork({ relays: 3, exits: 1 });
});
after(async () => {
  await network?.stop();
});

function extendTo(relay: Relay, address: string, port: number): Buffer {
  return encodeExtend({
    address,
    port,
    relayId: relay.id,
    htype: HandshakeType.NTOR_X25519_SHA256,
    hdata: ntorClientStart(relay.id, relay.onionKey.publicKey).onionskin,
  });
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
  const hostile = await rawLink(middle);
  try {
    const hop = await createHop(hostile, middle, 0x80000101);
    const holePort = (blackHole.address() as net.AddressInfo).port;
    hop.send(RelayCommand.EXTEND, 0, extendTo(exit, '127.0.0.1', holePort), CellCommand.RELAY_EARLY);
    await waitFor('the middle dials the black hole', () => held.length > 0);

    // An honest client's circuit through the same middle to that relay, while the poisoned attempt hangs.
    const byId = (id: string) => network.client.currentConsensus!.relays.find((r) => r.id === id)!;
    const circ = await network.client.buildCircuit({
      path: [byId(entry.idHex), byId(middle.idHex), byId(exit.idHex)],
    });
    assert.equal(circ.confirmedHops, 3, 'the honest circuit reached the relay the black hole claimed to be');
    assert.equal(hostile.untaken(0x80000101), 0, 'the poisoned EXTEND is still waiting on the black hole');
    assert.ok(
      held.some((s) => !s.destroyed),
      'the black hole still holds the connection',
    );
    circ.destroy(DestroyReason.FINISHED, 'done');

    // Cut off, the black hole fails only the circuit that named it.
    for (const s of held) s.destroy();
    const answer = hop.read(await hop.take());
    assert.equal(answer.command, RelayCommand.TRUNCATED);
    assert.equal(decodeTruncated(answer.data).reason, DestroyReason.CONNECTFAILED);
  } finally {
    hostile.close();
    blackHole.close();
  }
});

test(`TRUNCATE-then-EXTEND past ${MAX_EXTENDS_PER_CIRCUIT} EXTENDs destroys the circuit`, async () => {
  const [exit, , middle] = network.relays;
  const hostile = await rawLink(middle);
  try {
    const hop = await createHop(hostile, middle, 0x80000201);
    const extend = () =>
      hop.send(RelayCommand.EXTEND, 0, extendTo(exit, '127.0.0.1', exit.port), CellCommand.RELAY_EARLY);
    for (let i = 0; i < MAX_EXTENDS_PER_CIRCUIT; i++) {
      extend();
      assert.equal(hop.read(await hop.take()).command, RelayCommand.EXTENDED, `EXTEND ${i + 1}`);
      hop.send(RelayCommand.TRUNCATE, 0, Buffer.alloc(0));
      const truncated = hop.read(await hop.take());
      assert.equal(truncated.command, RelayCommand.TRUNCATED);
      assert.equal(decodeTruncated(truncated.data).reason, DestroyReason.REQUESTED);
    }
    extend();
    const last = await hop.take();
    assert.equal(last.command, CellCommand.DESTROY, 'one EXTEND too many destroys the circuit');
    assert.equal(decodeDestroy(last.body).reason, DestroyReason.PROTOCOL);
  } finally {
    hostile.close();
  }
});
