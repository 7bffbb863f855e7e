// The link-bound first hop (protocol §3.6): the client's first EXTEND follows its CREATE without
// waiting for the entry's answer, the keys work end to end, and a relay takes the handshake only as
// the first hop of a client's own link.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { text } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { AlliumClient } from '../src/client/client.js';
import { ClientCircuit } from '../src/client/client-circuit.js';
import { isOrigin } from '../src/crypto/backward-layer.js';
import { circuitHopCrypto, wrapForward } from '../src/crypto/forward-onion.js';
import { IdentityKey, X25519Key } from '../src/crypto/keys.js';
import { linkBoundHop } from '../src/crypto/link-bound-hop.js';
import { makeLinkCert } from '../src/crypto/link-cert.js';
import { streamGet } from '../src/net/http-fetch.js';
import { connectLink, Link } from '../src/net/link.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType, RelayCommand } from '../src/wire/constants.js';
import { encodeRelayMessage, readRelayHeader, relayData } from '../src/wire/relay-cell.js';
import { decodeTruncated, encodeExtend } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { waitFor } from './helpers/wait.js';
import { startHttpServer, type WebServer } from './helpers/web.js';

let net: InProcessNetwork;
let web: WebServer;

before(async () => {
  web = await startHttpServer({ '/page': Buffer.from('through a link-bound first hop\n') });
  net = await startNetwork({ relays: 3, exits: 1 });
});
after(async () => {
  await net?.stop();
  await web?.close();
});

/** What went out on links and which CREATEDs came back to client circuits, in order, while `fn` runs. */
async function recordOrder<T>(fn: () => Promise<T>): Promise<{ result: T; events: string[] }> {
  const events: string[] = [];
  const send = Link.prototype.send;
  const onCell = ClientCircuit.prototype.onCell;
  Link.prototype.send = function (this: Link, circId: number, command: number, body: Buffer) {
    if (command === CellCommand.CREATE) events.push(`${circId} send CREATE`);
    if (command === CellCommand.RELAY_EARLY) events.push(`${circId} send RELAY_EARLY`);
    return send.call(this, circId, command, body);
  };
  ClientCircuit.prototype.onCell = function (this: ClientCircuit, cell: Cell) {
    if (cell.command === CellCommand.CREATED) events.push(`${cell.circId} got CREATED`);
    return onCell.call(this, cell);
  };
  try {
    return { result: await fn(), events };
  } finally {
    Link.prototype.send = send;
    ClientCircuit.prototype.onCell = onCell;
  }
}

function pathOf(client: AlliumClient) {
  const [exit, entry, middle] = net.relays; // relay1 is the only exit
  const byId = (id: string) => client.currentConsensus!.relays.find((r) => r.id === id)!;
  return { entry, middle, exit, path: [byId(entry.idHex), byId(middle.idHex), byId(exit.idHex)] };
}

describe('a client with the link-bound first hop (the default)', () => {
  test('sends its first EXTEND right behind the CREATE, and the circuit carries a page', async () => {
    const { entry, middle, exit, path } = pathOf(net.client);
    const before = net.relays.map((r) => r.stats.linkBoundCreates);
    const { result: circ, events } = await recordOrder(() => net.client.buildCircuit({ path }));
    const mine = events
      .filter((e) => e.startsWith(`${circ.circId} `))
      .map((e) => e.split(' ').slice(1).join(' '));
    assert.deepEqual(mine.slice(0, 3), ['send CREATE', 'send RELAY_EARLY', 'got CREATED']);
    assert.equal(entry.stats.linkBoundCreates - before[1], 1, 'the entry answered a link-bound CREATE');
    assert.equal(middle.stats.linkBoundCreates, before[2], 'the middle ran ntor');
    assert.equal(exit.stats.linkBoundCreates, before[0], 'the exit ran ntor');
    assert.equal(circ.confirmedHops, 3);
    const res = await streamGet(`${web.url}/page`, { connect: (h, p) => circ.openStream(h, p) });
    assert.equal(await text(res), 'through a link-bound first hop\n');
  });

  test('fails the build when the entry answers with the wrong confirmation', async () => {
    const { path } = pathOf(net.client);
    const onCell = ClientCircuit.prototype.onCell;
    ClientCircuit.prototype.onCell = function (this: ClientCircuit, cell: Cell) {
      if (cell.command === CellCommand.CREATED) {
        const body = Buffer.from(cell.body);
        body[5] ^= 1; // inside the 32-byte confirmation, after hlen(u16)
        return onCell.call(this, { ...cell, body });
      }
      return onCell.call(this, cell);
    };
    try {
      await assert.rejects(net.client.buildCircuit({ path }), /did not confirm the link-bound first hop/);
    } finally {
      ClientCircuit.prototype.onCell = onCell;
    }
  });
});

test('with linkBoundFirstHop false, the client waits for the CREATED before extending', async () => {
  const client = await AlliumClient.start({
    directoryUrl: net.directory.url,
    directoryKey: net.directory.publicKey,
    minRelays: 3,
    spareCircuits: 0,
    linkBoundFirstHop: false,
  });
  try {
    const { entry, path } = pathOf(client);
    const before = entry.stats.linkBoundCreates;
    const { result: circ, events } = await recordOrder(() => client.buildCircuit({ path }));
    const mine = events
      .filter((e) => e.startsWith(`${circ.circId} `))
      .map((e) => e.split(' ').slice(1).join(' '));
    assert.deepEqual(mine.slice(0, 3), ['send CREATE', 'got CREATED', 'send RELAY_EARLY']);
    assert.equal(entry.stats.linkBoundCreates, before);
    const res = await streamGet(`${web.url}/page`, { connect: (h, p) => circ.openStream(h, p) });
    assert.equal(await text(res), 'through a link-bound first hop\n');
  } finally {
    await client.close();
  }
});

describe('a relay', () => {
  async function rawLink(identity: IdentityKey | null) {
    const relay = net.relays[1];
    const linkKey = identity ? X25519Key.generate() : undefined;
    const link = await connectLink({
      host: '127.0.0.1',
      port: relay.port,
      relayId: relay.id,
      me: identity
        ? { identity, linkKey, linkCert: makeLinkCert(identity, linkKey!.publicKey) }
        : { identity: null },
    });
    const got: Cell[] = [];
    link.on({ cells: (cells) => got.push(...cells) });
    const next = (): Promise<Cell> => waitFor('an answer', () => got.shift());
    return { link, next };
  }

  /** Sends a link-bound CREATE with `hdata` and expects DESTROY(PROTOCOL) for it. */
  async function refusedWithProtocol(link: Link, next: () => Promise<Cell>, circId: number, hdata: Buffer) {
    link.send(circId, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, hdata));
    const refused = await next();
    assert.equal(refused.command, CellCommand.DESTROY);
    assert.equal(refused.circId, circId);
    assert.equal(decodeDestroy(refused.body).reason, DestroyReason.PROTOCOL);
  }

  test("answers a client's link-bound CREATE with the confirmation of the link's secret", async () => {
    const { link, next } = await rawLink(null);
    try {
      const X = randomBytes(32);
      link.send(0x80000011, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, X));
      const created = await next();
      assert.equal(created.command, CellCommand.CREATED);
      const expected = linkBoundHop(link.linkSecret, X);
      assert.deepEqual(decodeCreated(created.body).hdata, expected.confirm);

      // The keys are the relay's: it understands an EXTEND sealed with them, and refuses to pass a
      // link-bound handshake on to the next relay (whose link is not the client's).
      const hop = circuitHopCrypto(expected.keys, { firstHop: true });
      const extend = encodeExtend({
        address: '127.0.0.1',
        port: net.relays[2].port,
        relayId: net.relays[2].id,
        htype: HandshakeType.LINK_BOUND,
        hdata: randomBytes(32),
      });
      const { body } = wrapForward(
        [hop.forward],
        encodeRelayMessage(RelayCommand.EXTEND, 0, extend),
        CellCommand.RELAY_EARLY,
      );
      link.send(0x80000011, CellCommand.RELAY_EARLY, body);
      const answer = await next();
      const back = hop.backward.peel(answer.body);
      assert.ok(isOrigin(back), 'a cell from the entry itself');
      assert.equal(readRelayHeader(back).command, RelayCommand.TRUNCATED);
      assert.equal(decodeTruncated(relayData(back)).reason, DestroyReason.PROTOCOL);

      await refusedWithProtocol(link, next, 0x80000012, randomBytes(31));
    } finally {
      link.close();
    }
  });

  test('refuses a link-bound CREATE on a link from a relay', async () => {
    const { link, next } = await rawLink(IdentityKey.generate());
    try {
      await refusedWithProtocol(link, next, 0x80000021, randomBytes(32));
    } finally {
      link.close();
    }
  });
});
