// Replays: a recorded CREATE answered again gives the replayer nothing (fresh relay keys it cannot
// compute), and a recorded relay cell sent again is caught by the per-hop sequence in the mac.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ntorClientFinish, ntorClientStart } from '../src/crypto/ntor.js';
import { connectLink, type Link } from '../src/net/link.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType, RelayCommand } from '../src/wire/constants.js';
import { encodeBegin } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { rawClient } from './helpers/raw-circuit.js';

let netw: InProcessNetwork;
before(async () => {
  netw = await startNetwork({ relays: 3, exits: 1 });
});
after(async () => {
  await netw?.stop();
});

function collect(link: Link): Cell[] {
  const got: Cell[] = [];
  link.on({ cells: (cells) => got.push(...cells) });
  return got;
}

async function waitFor(pred: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

test('a replayed CREATE gets a fresh answer whose keys only the original client could derive', async () => {
  const relay = netw.relays[0];
  const onionKey = relay.onionKey.publicKey;
  const link = await connectLink({
    host: '127.0.0.1',
    port: relay.port,
    relayId: relay.id,
    me: { identity: null },
  });
  const got = collect(link);
  const { onionskin, state } = ntorClientStart(relay.id, onionKey);
  link.send(0x80000001, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin));
  link.send(0x80000002, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin)); // the replay
  await waitFor(() => got.length >= 2);
  const [first, second] = got.map((c) => decodeCreated(c.body).hdata);
  assert.notDeepEqual(first, second, 'the relay used a fresh ephemeral key for the replay');
  ntorClientFinish(state, first); // the real client completes
  const { state: replayer } = ntorClientStart(relay.id, onionKey); // anyone without x cannot
  assert.throws(() => ntorClientFinish(replayer, second), { code: 'ALLIUM_HANDSHAKE_AUTH' });
  link.close();
});

test('a relay cell sent again is rejected: the circuit is destroyed and no second stream opens', async () => {
  const [exit, entry] = netw.relays; // relays[0] is the exit; a stream needs a hop before it (§4.2)
  const client = await rawClient(entry);
  const circ = await client.circuit(0x80000010, [entry, exit]);
  const dirPort = Number(new URL(netw.directory.url).port);
  const streamsBefore = exit.stats.streams;
  const integrityBefore = entry.stats.integrityFailures;
  const recorded = circ.send(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', dirPort));
  const connected = circ.peel(await circ.nextCell());
  assert.deepEqual([connected.hop, connected.command], [1, RelayCommand.CONNECTED], 'the exit connected');
  assert.equal(exit.stats.streams, streamsBefore + 1, 'the original BEGIN opened a stream');
  client.link.send(circ.circId, CellCommand.RELAY, recorded); // the replay
  let cell = await circ.nextCell();
  while (cell.command !== CellCommand.DESTROY) cell = await circ.nextCell();
  assert.equal(decodeDestroy(cell.body).reason, DestroyReason.INTEGRITY);
  assert.equal(entry.stats.integrityFailures, integrityBefore + 1, 'the entry caught the replay');
  assert.equal(exit.stats.streams, streamsBefore + 1, 'the replay opened nothing');
  client.close();
});
