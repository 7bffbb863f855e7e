// Client circuits as onion service circuits (protocol §8.5-§8.7), over a real in-process network: the
// client's own circuits (OnionCircuit) carry onion messages to and from their last hop, an
// introduction and a rendezvous join two of them, and streams then run end to end with flow control
// both ways. The service's part is played here by hand; src/service plays it for real.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AlliumClient } from '../src/client/client.js';
import type { OnionCircuit } from '../src/client/onion-circuit.js';
import type { CircuitStream } from '../src/core/stream-mux.js';
import {
  clientIntroduce,
  clientRendezvous,
  serviceOpenIntroduce,
  serviceRendezvous,
} from '../src/crypto/hs-ntor.js';
import { signEstablishIntro } from '../src/crypto/intro-auth.js';
import { IdentityKey, randomBytes, X25519Key } from '../src/crypto/keys.js';
import { RelayCommand } from '../src/wire/constants.js';
import type { ConsensusRelay } from '../src/wire/directory-docs.js';
import {
  decodeIntroduce,
  decodeIntroduceAck,
  decodeRendezvous2,
  encodeEstablishIntro,
  encodeEstablishRendezvous,
  encodeIntroduce,
  encodeRendezvous1,
  IntroduceAckStatus,
} from '../src/wire/onion-messages.js';
import { encodeConnected } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';

let net: InProcessNetwork;
let serviceClient: AlliumClient;

before(async () => {
  net = await startNetwork({ relays: 6, exits: 1 });
  serviceClient = await AlliumClient.start({
    directoryUrl: net.directory.url,
    directoryKey: net.directory.publicKey,
    minRelays: 6,
    spareCircuits: 0,
  });
});
after(async () => {
  await serviceClient?.close();
  await net?.stop();
});

/** A relay of the consensus that is not among `avoid`'s guards. */
function relayFor(client: AlliumClient, index: number): ConsensusRelay {
  const id = net.relays[index].id.toString('hex');
  return client.currentConsensus!.relays.find((r) => r.id === id)!;
}

/** A relay (by index) that is neither client's guard. */
function nonGuards(): number[] {
  const guards = new Set([...net.client.guardIds(), ...serviceClient.guardIds()]);
  return net.relays.map((_, i) => i).filter((i) => !guards.has(net.relays[i].id.toString('hex')));
}

/** An introduction and a rendezvous by hand, both ends on real client circuits; returns the two joined ones. */
async function rendezvous(
  introAt: number,
  rendAt: number,
): Promise<{ client: OnionCircuit; service: OnionCircuit }> {
  const authKey = IdentityKey.generate();
  const encKey = X25519Key.generate();
  const sub = randomBytes(32);

  const intro = await serviceClient.buildOnionCircuit(relayFor(serviceClient, introAt));
  const binding = intro.hops[2].crypto.forward.circuitBinding();
  await intro.request(
    RelayCommand.ESTABLISH_INTRO,
    encodeEstablishIntro(signEstablishIntro(authKey, { rate: 0, burst: 0 }, binding)),
    RelayCommand.INTRO_ESTABLISHED,
  );
  const introduce2 = intro.expect(RelayCommand.INTRODUCE2);

  const cookie = randomBytes(32);
  const rend = await net.client.buildOnionCircuit(relayFor(net.client, rendAt));
  await rend.request(
    RelayCommand.ESTABLISH_RENDEZVOUS,
    encodeEstablishRendezvous(cookie),
    RelayCommand.RENDEZVOUS_ESTABLISHED,
  );
  const rendezvous2 = rend.expect(RelayCommand.RENDEZVOUS2);

  const { message, state } = clientIntroduce({ authKey: authKey.publicKey, encKey: encKey.publicKey }, sub, {
    cookie,
    rendezvousId: net.relays[rendAt].id,
  });
  const introducing = await net.client.buildOnionCircuit(relayFor(net.client, introAt));
  const ack = await introducing.request(
    RelayCommand.INTRODUCE1,
    encodeIntroduce(message),
    RelayCommand.INTRODUCE_ACK,
  );
  assert.equal(decodeIntroduceAck(ack), IntroduceAckStatus.SUCCESS);
  introducing.destroy(9, 'done');

  const opened = serviceOpenIntroduce(
    decodeIntroduce(await introduce2),
    { authKey: authKey.publicKey, encKey },
    sub,
  );
  const { handshake, keys } = serviceRendezvous(opened.state);
  const service = await serviceClient.buildOnionCircuit(relayFor(serviceClient, rendAt));
  service.sendOnion(RelayCommand.RENDEZVOUS1, encodeRendezvous1(cookie, handshake));
  service.join(keys, 'service');
  rend.join(clientRendezvous(state, decodeRendezvous2(await rendezvous2)), 'client');
  intro.destroy(9, 'done');
  return { client: rend, service };
}

/** The service end answers every BEGIN with CONNECTED and hands the stream to `serve`. */
function serveStreams(circuit: OnionCircuit, serve: (s: CircuitStream) => void): void {
  circuit.onBeginStream = (streamId) => {
    const s = circuit.acceptStream(streamId);
    assert.ok(s);
    circuit.answerStream(RelayCommand.CONNECTED, streamId, encodeConnected('127.0.0.1'));
    serve(s);
  };
}

/**
 * Reads `s` to its end; a service's stream says what it took (its socket would). Not with for-await,
 * which destroys the stream at the end of what it read, and so its writing side too.
 */
function drain(s: CircuitStream, service: boolean): Promise<{ bytes: number; sha: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Promise((resolve, reject) => {
    s.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (service) s.written(chunk.length);
    });
    s.once('end', () => resolve({ bytes, sha: hash.digest('hex') }));
    s.once('error', reject);
  });
}

describe('onion service circuits of a client', () => {
  it('joins two client circuits at a rendezvous point and carries 10 MiB each way, byte for byte', async () => {
    const [introAt, rendAt] = nonGuards();
    const { client, service } = await rendezvous(introAt, rendAt);
    const up = randomBytes(10 * 1024 * 1024);
    const down = randomBytes(10 * 1024 * 1024);
    const received = new Promise<{ bytes: number; sha: string }>((resolve) =>
      serveStreams(service, (s) => {
        drain(s, true).then(resolve);
        s.end(down);
      }),
    );
    const s = await client.openStream('anything.allium', 80);
    const [atClient, atService] = await Promise.all([drain(s, false), received, s.end(up)]);
    assert.equal(atService.bytes, up.length);
    assert.equal(atService.sha, createHash('sha256').update(up).digest('hex'));
    assert.equal(atClient.bytes, down.length);
    assert.equal(atClient.sha, createHash('sha256').update(down).digest('hex'));
    // Closing one end's circuit takes the other's with it (the rendezvous point tears it down).
    const gone = new Promise<string>((r) => service.onClose(r));
    client.destroy(9, 'done');
    assert.match(await gone, /destroyed/);
  });

  it('refuses BEGIN toward the client end', async () => {
    const [introAt, rendAt] = nonGuards().reverse();
    const { client, service } = await rendezvous(introAt, rendAt);
    const closed = new Promise<string>((r) => client.onClose(r));
    const serviceClosed = new Promise<string>((r) => service.onClose(r));
    // The service acts as a client would: its BEGIN reaches the client's end, which refuses it.
    serveStreams(client, () => assert.fail('the client end accepted a stream'));
    client.onBeginStream = null;
    void service.openStream('x', 1).catch(() => {});
    assert.match(await closed, /BEGIN toward a client/);
    await serviceClosed;
  });
});
