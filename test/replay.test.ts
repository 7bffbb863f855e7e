// Replays: a recorded CREATE answered again gives the replayer nothing (fresh relay keys it cannot
// compute), and a recorded relay cell sent again is caught by the per-hop sequence in the mac.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { circuitHopCrypto, wrapForward } from '../src/crypto/forward-onion.js';
import { ntorClientFinish, ntorClientStart } from '../src/crypto/ntor.js';
import { connectLink, type Link } from '../src/net/link.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType, RelayCommand } from '../src/wire/constants.js';
import { encodeRelayMessage } from '../src/wire/relay-cell.js';
import { encodeBegin } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';

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
  const relay = netw.relays[0]; // an exit
  const link = await connectLink({
    host: '127.0.0.1',
    port: relay.port,
    relayId: relay.id,
    me: { identity: null },
  });
  const got = collect(link);
  const { onionskin, state } = ntorClientStart(relay.id, relay.onionKey.publicKey);
  const circId = 0x80000010;
  link.send(circId, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin));
  await waitFor(() => got.length >= 1);
  const hop = circuitHopCrypto(ntorClientFinish(state, decodeCreated(got[0].body).hdata));
  const dirPort = Number(new URL(netw.directory.url).port);
  const { body: recorded } = wrapForward(
    [hop.forward],
    encodeRelayMessage(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', dirPort)),
  );
  const streamsBefore = relay.stats.streams;
  const integrityBefore = relay.stats.integrityFailures;
  link.send(circId, CellCommand.RELAY, recorded);
  await waitFor(() => relay.stats.streams > streamsBefore);
  assert.equal(relay.stats.streams, streamsBefore + 1, 'the original BEGIN opened a stream');
  link.send(circId, CellCommand.RELAY, recorded); // the replay
  await waitFor(() => got.some((c) => c.command === CellCommand.DESTROY));
  const destroy = got.find((c) => c.command === CellCommand.DESTROY)!;
  assert.equal(decodeDestroy(destroy.body).reason, DestroyReason.INTEGRITY);
  assert.equal(relay.stats.integrityFailures, integrityBefore + 1);
  assert.equal(relay.stats.streams, streamsBefore + 1, 'the replay opened nothing');
  link.close();
});
