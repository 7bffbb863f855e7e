// A hostile entry against the link-bound first hop (protocol §3.6): a client refuses every cell of the
// circuit the entry sends before its CREATED confirms the hop, and a relay refuses a repeated X.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Link } from '../src/net/link.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType } from '../src/wire/constants.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { rawLink } from './helpers/raw-client.js';

let net: InProcessNetwork;

before(async () => {
  net = await startNetwork({ relays: 3, exits: 1 });
});
after(async () => {
  await net?.stop();
});

function pathOf() {
  const [exit, entry, middle] = net.relays;
  const byId = (id: string) => net.client.currentConsensus!.relays.find((r) => r.id === id)!;
  return [byId(entry.idHex), byId(middle.idHex), byId(exit.idHex)];
}

/** A relay's side of a client's link: accepted, and the peer proved no relay id. */
function isEntrySideOfClientLink(link: Link): boolean {
  return !link.initiator && link.peerRelayId === null;
}

/**
 * Builds a circuit while every entry answers link-bound CREATEs as `entry` says, and records what the
 * client sent on that circuit afterwards.
 */
async function buildAgainst(
  entry: (send: (command: number, body: Buffer) => void, command: number, body: Buffer) => void,
): Promise<{ error: Error; relayEarly: number; destroyReasons: number[] }> {
  const send = Link.prototype.send;
  let clientLink: Link | null = null;
  let clientCirc = -1;
  let relayEarly = 0;
  const destroyReasons: number[] = [];
  Link.prototype.send = function (this: Link, circId: number, command: number, body: Buffer) {
    const plain = (c: number, b: Buffer) => send.call(this, circId, c, b);
    if (command === CellCommand.CREATE && body.readUInt16BE(0) === HandshakeType.LINK_BOUND) {
      clientLink = this;
      clientCirc = circId;
    }
    if (this === clientLink && circId === clientCirc) {
      if (command === CellCommand.RELAY_EARLY) relayEarly++;
      if (command === CellCommand.DESTROY) destroyReasons.push(decodeDestroy(body).reason);
    }
    if (isEntrySideOfClientLink(this) && (command === CellCommand.CREATED || command === CellCommand.RELAY)) {
      entry(plain, command, body);
      return;
    }
    return plain(command, body);
  };
  try {
    const error = await net.client.buildCircuit({ path: pathOf() }).then(
      () => assert.fail('the circuit was built'),
      (err: Error) => err,
    );
    return { error, relayEarly, destroyReasons };
  } finally {
    Link.prototype.send = send;
  }
}

describe('a client whose entry does not confirm the link-bound first hop first', () => {
  test('never sending CREATED: the EXTENDED behind it destroys the circuit unread', async () => {
    const got = await buildAgainst((send, command, body) => {
      if (command !== CellCommand.CREATED) send(command, body);
    });
    assert.match(got.error.message, /before confirming the first hop/);
    assert.equal(got.relayEarly, 1, 'the client did not act on the EXTENDED: no EXTEND to the exit');
    assert.deepEqual(got.destroyReasons, [DestroyReason.PROTOCOL]);
  });

  test('sending CREATED after the EXTENDED: the EXTENDED destroys the circuit unread', async () => {
    let held: Buffer | null = null;
    const got = await buildAgainst((send, command, body) => {
      if (command === CellCommand.CREATED) {
        held = Buffer.from(body);
        return;
      }
      send(command, body);
      if (held) send(CellCommand.CREATED, held);
      held = null;
    });
    assert.match(got.error.message, /before confirming the first hop/);
    assert.equal(got.relayEarly, 1, 'the client did not act on the EXTENDED: no EXTEND to the exit');
    assert.deepEqual(got.destroyReasons, [DestroyReason.PROTOCOL]);
  });

  test('a wrong CONFIRM destroys the circuit before anything behind it is read', async () => {
    const got = await buildAgainst((send, command, body) => {
      if (command === CellCommand.CREATED) {
        const wrong = Buffer.from(body);
        wrong[5] ^= 1; // inside the confirmation, after hlen(u16)
        send(command, wrong);
        return;
      }
      send(command, body);
    });
    assert.match(got.error.message, /did not confirm the link-bound first hop/);
    assert.equal(got.relayEarly, 1, 'the client did not act on the EXTENDED: no EXTEND to the exit');
    assert.deepEqual(got.destroyReasons, [DestroyReason.PROTOCOL]);
  });
});

test('a relay refuses a link-bound CREATE that repeats an X already used on the link', async () => {
  const relay = net.relays[1];
  const raw = await rawLink(relay);
  const answer = (circId: number, X: Buffer): Promise<Cell> => {
    raw.link.send(circId, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, X));
    return raw.next(circId);
  };
  try {
    const X = randomBytes(32);
    assert.equal((await answer(0x80000031, X)).command, CellCommand.CREATED);
    const repeated = await answer(0x80000032, X);
    assert.equal(repeated.command, CellCommand.DESTROY, 'the same X again is refused');
    assert.equal(decodeDestroy(repeated.body).reason, DestroyReason.PROTOCOL);
    assert.equal(
      (await answer(0x80000033, randomBytes(32))).command,
      CellCommand.CREATED,
      'a fresh X is not',
    );
  } finally {
    raw.close();
  }
});
