// Replays: a recorded CREATE sent again gets a fresh answer (new keys for a new circuit, so nothing
// recorded on the first circuit can be played into the second), and a recorded relay cell sent again
// is caught by the per-hop sequence number in its tag.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isOrigin } from '../src/crypto/backward-layer.js';
import { circuitHopCrypto, wrapForward } from '../src/crypto/forward-onion.js';
import { X25519Key } from '../src/crypto/keys.js';
import { ntorClientFinish, ntorClientStart } from '../src/crypto/ntor.js';
import { decodeCreated, decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType, RelayCommand } from '../src/wire/constants.js';
import { encodeRelayMessage, readRelayHeader } from '../src/wire/relay-cell.js';
import { encodeBegin } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { rawClient } from './helpers/raw-circuit.js';
import { rawLink } from './helpers/raw-client.js';

let netw: InProcessNetwork;
before(async () => {
  netw = await startNetwork({ relays: 3, exits: 1 });
});
after(async () => {
  await netw?.stop();
});

const dirPort = () => Number(new URL(netw.directory.url).port);

test("a replayed CREATE is answered with new keys: a second circuit that the first circuit's keys cannot drive", async () => {
  const relay = netw.relays[0]; // an exit
  const raw = await rawLink(relay);
  try {
    // The client's x, kept so both answers can be checked: the replayer has only what was on the wire.
    const x = X25519Key.generate();
    const original = ntorClientStart(relay.id, relay.onionKey.publicKey, x);
    const replay = ntorClientStart(relay.id, relay.onionKey.publicKey, x);
    assert.deepEqual(replay.onionskin, original.onionskin, 'the same CREATE, byte for byte');
    const [first, second] = [0x80000001, 0x80000002];
    for (const circId of [first, second]) {
      raw.link.send(
        circId,
        CellCommand.CREATE,
        encodeCreate(HandshakeType.NTOR_X25519_SHA256, original.onionskin),
      );
    }
    const answers = [await raw.next(first), await raw.next(second)];
    assert.deepEqual(
      answers.map((c) => c.command),
      [CellCommand.CREATED, CellCommand.CREATED],
    );
    // Both answers prove the onion key (AUTH checks out for the holder of x) ...
    const k1 = ntorClientFinish(original.state, decodeCreated(answers[0].body).hdata);
    const k2 = ntorClientFinish(replay.state, decodeCreated(answers[1].body).hdata);
    // ... and each is keyed from a fresh relay ephemeral: no key of the replayed circuit is the original's.
    for (const name of ['kf', 'kb', 'mf', 'mb', 'kt'] as const) {
      assert.notDeepEqual(k2[name], k1[name], `the replayed circuit's ${name} is the original's`);
    }
    assert.notDeepEqual(
      decodeCreated(answers[1].body).hdata.subarray(0, 32),
      decodeCreated(answers[0].body).hdata.subarray(0, 32),
      'a fresh Y for the replay',
    );
    // The relay holds the replayed circuit to its own keys: a cell made with the first circuit's keys
    // (what a recording of the first circuit holds) is refused there.
    const begin = encodeRelayMessage(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', dirPort()));
    const integrityBefore = relay.stats.integrityFailures;
    raw.link.send(
      second,
      CellCommand.RELAY,
      wrapForward([circuitHopCrypto(k1, { firstHop: true }).forward], begin).body,
    );
    const destroy = await raw.next(second, (c) => c.command === CellCommand.DESTROY);
    assert.ok(destroy);
    assert.equal(relay.stats.integrityFailures, integrityBefore + 1);
    // While the first circuit, driven with its own keys, still takes the cell: a one-hop circuit
    // opens no stream (§4.2), so the relay answers END under the first circuit's backward layer.
    const first1 = circuitHopCrypto(k1, { firstHop: true });
    raw.link.send(first, CellCommand.RELAY, wrapForward([first1.forward], begin).body);
    const answer = await raw.next(first, (c) => c.command !== CellCommand.CREATED);
    assert.equal(answer.command, CellCommand.RELAY, 'the first circuit is still up');
    const peeled = first1.backward.peel(answer.body);
    assert.ok(isOrigin(peeled), "the answer is sealed with the first circuit's keys");
    assert.equal(readRelayHeader(peeled).command, RelayCommand.END);
    assert.equal(relay.stats.integrityFailures, integrityBefore + 1, 'no failure on the first circuit');
  } finally {
    raw.close();
  }
});

test('a relay cell sent again is rejected: the circuit is destroyed and no second stream opens', async () => {
  const [exit, entry] = netw.relays; // relays[0] is the exit; a stream needs a hop before it (§4.2)
  const client = await rawClient(entry);
  try {
    const circ = await client.circuit(0x80000010, [entry, exit]);
    const streamsBefore = exit.stats.streams;
    const integrityBefore = entry.stats.integrityFailures;
    const recorded = circ.send(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', dirPort()));
    const connected = circ.peel(await circ.nextCell());
    assert.deepEqual([connected.hop, connected.command], [1, RelayCommand.CONNECTED], 'the exit connected');
    assert.equal(exit.stats.streams, streamsBefore + 1, 'the original BEGIN opened a stream');
    client.link.send(circ.circId, CellCommand.RELAY, recorded); // the replay
    let cell = await circ.nextCell();
    while (cell.command !== CellCommand.DESTROY) cell = await circ.nextCell();
    assert.equal(decodeDestroy(cell.body).reason, DestroyReason.INTEGRITY);
    assert.equal(entry.stats.integrityFailures, integrityBefore + 1, 'the entry caught the replay');
    assert.equal(exit.stats.streams, streamsBefore + 1, 'the replay opened nothing');
  } finally {
    client.close();
  }
});
