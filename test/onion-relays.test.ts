// Relays of a real (in-process) network as descriptor stores, introduction points and rendezvous
// points (protocol §8.5, §8.7), driven by hand-built 3-hop circuits whose keys the test holds: a
// service's and a client's part played with the real onion service crypto, every cell over real links.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseExposition, renderFamilies } from '../src/core/prometheus.js';
import { isOrigin } from '../src/crypto/backward-layer.js';
import { type EndToEndLayers, endToEndLayers } from '../src/crypto/end-to-end-layer.js';
import { FORWARD_MARKER_LEN, wrapForward } from '../src/crypto/forward-onion.js';
import {
  clientIntroduce,
  clientRendezvous,
  serviceOpenIntroduce,
  serviceRendezvous,
} from '../src/crypto/hs-ntor.js';
import { circuitBinding, signEstablishIntro } from '../src/crypto/intro-auth.js';
import { blindPublicKey, blindSecret, subcredential } from '../src/crypto/key-blinding.js';
import { IdentityKey, randomBytes, X25519Key } from '../src/crypto/keys.js';
import { openDescriptor, sealDescriptor } from '../src/crypto/onion-descriptor.js';
import { relayFamilies } from '../src/relay/metrics.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeDestroy, encodeDestroy } from '../src/wire/cell-bodies.js';
import { CellCommand, DestroyReason, RelayCommand } from '../src/wire/constants.js';
import {
  DescriptorStoreStatus,
  decodeDescriptorFetched,
  decodeDescriptorStored,
  decodeIntroduce,
  decodeIntroduceAck,
  decodeRendezvous2,
  encodeDescriptorFetch,
  encodeDescriptorStore,
  encodeEstablishIntro,
  encodeEstablishRendezvous,
  encodeIntroduce,
  encodeRendezvous1,
  IntroduceAckStatus,
} from '../src/wire/onion-messages.js';
import { decodeRelayMessage, encodeRelayMessage } from '../src/wire/relay-cell.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { type RawCircuit, type RawClient, rawClient } from './helpers/raw-circuit.js';

let net: InProcessNetwork;
const clients: RawClient[] = [];
let nextCircId = 0x80000100;

before(async () => {
  net = await startNetwork({ relays: 5, exits: 1 });
});
after(async () => {
  for (const c of clients) c.close();
  await net?.stop();
});

/** A fresh 3-hop circuit through relays `path` (indexes), from a link of its own to the first. */
async function circuit(path: number[]): Promise<RawCircuit & { client: RawClient }> {
  const client = await rawClient(net.relays[path[0]]);
  clients.push(client);
  const c = await client.circuit(
    nextCircId++,
    path.map((i) => net.relays[i]),
  );
  return Object.assign(c, { client });
}

/** The next cell on `c`, which must be a relay message sent by its last hop. */
async function answer(c: RawCircuit, command: number): Promise<Buffer> {
  const got = c.peel(await c.nextCell());
  assert.equal(got.hop, c.hops.length - 1, 'sent by the last hop');
  assert.equal(got.command, command, `relay command ${command}, got ${got.command}`);
  return got.data;
}

async function destroyReason(c: RawCircuit): Promise<number> {
  const cell: Cell = await c.nextCell();
  assert.equal(cell.command, CellCommand.DESTROY, `DESTROY, got command ${cell.command}`);
  return decodeDestroy(cell.body).reason;
}

/** Sends a relay message one hop past the last (the end-to-end layer, §8.7) on `c`. */
function sendEndToEnd(c: RawCircuit & { client: RawClient }, layers: EndToEndLayers, text: string): void {
  const { body } = wrapForward(
    [...c.hops.map((h) => h.forward), layers.send],
    encodeRelayMessage(RelayCommand.DATA, 1, Buffer.from(text)),
  );
  c.client.link.send(c.circId, CellCommand.RELAY, body);
}

/** The next cell on `c`, peeled through every hop (none sent it), opened by the end-to-end layer. */
async function receiveEndToEnd(c: RawCircuit, layers: EndToEndLayers): Promise<string> {
  const cell = await c.nextCell();
  assert.equal(cell.command, CellCommand.RELAY);
  let body = cell.body;
  for (const hop of c.hops) {
    body = hop.backward.peel(body);
    assert.ok(!isOrigin(body), 'no relay of the circuit sent it');
  }
  const opened = layers.receive.open(body, CellCommand.RELAY);
  assert.equal(opened.kind, 'mine', 'the end-to-end tag checks');
  if (opened.kind !== 'mine') return '';
  return decodeRelayMessage(opened.payload, FORWARD_MARKER_LEN).data.toString();
}

describe('relays for onion services, over a network', () => {
  const seed = randomBytes(32);
  const identityKey = IdentityKey.fromSeed(seed).publicKey;
  const period = { number: Math.floor(Date.now() / 1000 / 86_400), length: 86_400 };
  const blindedKey = blindPublicKey(identityKey, period);
  const sub = subcredential(identityKey, blindedKey);
  const authKey = IdentityKey.generate();
  const encKey = X25519Key.generate();

  it('stores a descriptor through one 3-hop circuit and fetches it back through another', async () => {
    const store = net.relays[2];
    const descriptor = sealDescriptor({
      identityKey,
      blindedSecret: blindSecret(seed, period),
      revision: 1,
      expires: Math.floor(Date.now() / 1000) + 3600,
      introPoints: [{ relayId: net.relays[3].id, authKey: authKey.publicKey, encKey: encKey.publicKey }],
    });
    const service = await circuit([0, 1, 2]);
    service.send(RelayCommand.HS_DESC_STORE, 0, encodeDescriptorStore(descriptor));
    assert.equal(
      decodeDescriptorStored(await answer(service, RelayCommand.HS_DESC_STORED)),
      DescriptorStoreStatus.STORED,
    );
    // What the store holds is the descriptor as sent: no introduction point can be read from it.
    assert.equal(store.descriptors.size, 1);
    const held = store.descriptors.fetch(blindedKey)!;
    assert.equal(held.indexOf(net.relays[3].id.subarray(0, 8)), -1);
    assert.equal(held.indexOf(authKey.publicKey.subarray(0, 8)), -1);

    const client = await circuit([4, 3, 2]);
    client.send(RelayCommand.HS_DESC_FETCH, 0, encodeDescriptorFetch(blindedKey));
    const fetched = decodeDescriptorFetched(await answer(client, RelayCommand.HS_DESC_FETCHED));
    assert.ok(fetched, 'found');
    const opened = openDescriptor(fetched, { identityKey, period, now: Math.floor(Date.now() / 1000) });
    assert.deepEqual(opened.introPoints[0].relayId, net.relays[3].id);
  });

  it('passes an introduction to the service and joins the two circuits at the rendezvous point, carrying cells both ways', async () => {
    // The service's introduction point: relay 3.
    const introCircuit = await circuit([0, 1, 3]);
    introCircuit.send(
      RelayCommand.ESTABLISH_INTRO,
      0,
      encodeEstablishIntro(
        signEstablishIntro(authKey, { rate: 0, burst: 0 }, circuitBinding(introCircuit.keys[2].mf)),
      ),
    );
    await answer(introCircuit, RelayCommand.INTRO_ESTABLISHED);

    // The client's rendezvous point: relay 4.
    const cookie = randomBytes(32);
    const rendezvous = await circuit([1, 2, 4]);
    rendezvous.send(RelayCommand.ESTABLISH_RENDEZVOUS, 0, encodeEstablishRendezvous(cookie));
    await answer(rendezvous, RelayCommand.RENDEZVOUS_ESTABLISHED);

    const { message, state } = clientIntroduce(
      { authKey: authKey.publicKey, encKey: encKey.publicKey },
      sub,
      { cookie, rendezvousId: net.relays[4].id },
    );
    const intro = await circuit([2, 0, 3]);
    intro.send(RelayCommand.INTRODUCE1, 0, encodeIntroduce(message));
    assert.equal(
      decodeIntroduceAck(await answer(intro, RelayCommand.INTRODUCE_ACK)),
      IntroduceAckStatus.SUCCESS,
    );
    const introduce2 = decodeIntroduce(await answer(introCircuit, RelayCommand.INTRODUCE2));
    const opened = serviceOpenIntroduce(introduce2, { authKey: authKey.publicKey, encKey }, sub);
    assert.deepEqual(opened.plaintext.cookie, cookie);
    assert.deepEqual(opened.plaintext.rendezvousId, net.relays[4].id);

    const { handshake, keys: serviceKeys } = serviceRendezvous(opened.state);
    const serviceSide = await circuit([3, 0, 4]);
    serviceSide.send(RelayCommand.RENDEZVOUS1, 0, encodeRendezvous1(cookie, handshake));
    const clientKeys = clientRendezvous(
      state,
      decodeRendezvous2(await answer(rendezvous, RelayCommand.RENDEZVOUS2)),
    );
    const atClient = endToEndLayers(clientKeys, 'client');
    const atService = endToEndLayers(serviceKeys, 'service');
    for (let i = 0; i < 3; i++) {
      sendEndToEnd(rendezvous, atClient, `request ${i}`);
      assert.equal(await receiveEndToEnd(serviceSide, atService), `request ${i}`);
      sendEndToEnd(serviceSide, atService, `response ${i}`);
      assert.equal(await receiveEndToEnd(rendezvous, atClient), `response ${i}`);
    }

    // The client's circuit goes: the rendezvous point tears down the service's half.
    rendezvous.client.link.send(
      rendezvous.circId,
      CellCommand.DESTROY,
      encodeDestroy(DestroyReason.FINISHED),
    );
    assert.equal(await destroyReason(serviceSide), DestroyReason.DESTROYED);

    // What an operator's scrape shows of it: the store's descriptor, the introduction point's one
    // introduction, the rendezvous point's join.
    const scrape = (i: number) => parseExposition(renderFamilies(relayFamilies(net.relays[i])));
    assert.equal(scrape(2).get('allium_relay_onion_descriptors'), 1);
    assert.equal(
      scrape(2).get('allium_relay_onion_descriptor_requests_total{request="store",result="stored"}'),
      1,
    );
    // Two: the client's fetch, and the test's own look at what the store holds.
    assert.equal(
      scrape(2).get('allium_relay_onion_descriptor_requests_total{request="fetch",result="found"}'),
      2,
    );
    assert.equal(scrape(3).get('allium_relay_intro_points'), 1);
    assert.equal(scrape(3).get('allium_relay_introductions_total{result="passed"}'), 1);
    assert.equal(scrape(4).get('allium_relay_rendezvous_joined_total'), 1);
    assert.equal(scrape(4).get('allium_relay_rendezvous_waiting'), 0);
  });

  it("refuses onion service messages on a one-hop circuit: the relay would see the sender's address", async () => {
    const fetched = net.relays[2].descriptors.counts.fetched;
    for (const [command, data] of [
      [RelayCommand.HS_DESC_FETCH, encodeDescriptorFetch(blindedKey)],
      [RelayCommand.ESTABLISH_RENDEZVOUS, encodeEstablishRendezvous(randomBytes(32))],
    ] as const) {
      const oneHop = await circuit([2]);
      oneHop.send(command, 0, data);
      assert.equal(await destroyReason(oneHop), DestroyReason.PROTOCOL);
    }
    assert.equal(net.relays[2].descriptors.counts.fetched, fetched, 'nothing was served');
    assert.equal(net.relays[2].descriptors.counts.notFound, 0);
  });
});
