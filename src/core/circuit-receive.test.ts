import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CircuitHopCrypto,
  circuitHopCrypto,
  type ForwardLayer,
  ForwardLayer as Layer,
  wrapForward,
} from '../crypto/forward-onion.js';
import { randomBytes } from '../crypto/keys.js';
import type { HopKeys } from '../crypto/ntor.js';
import { CELL_BODY_LEN, DestroyReason, RelayCommand } from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { encodeRelayMessage, writeRelayBody } from '../wire/relay-cell.js';
import { encodeEnd, encodeExtended, encodeTruncated } from '../wire/relay-messages.js';
import type { CircuitHop } from './circuit-build.js';
import { type CircuitReceiver, receiveRelayCells } from './circuit-receive.js';

const NAMES = ['entry', 'middle', 'exit'];

/** A 3-hop circuit: the client's hops, and the same keys as each relay holds them. */
function circuit(): { client: CircuitHop[]; relays: CircuitHopCrypto[] } {
  const keys: HopKeys[] = NAMES.map(() => ({
    kf: randomBytes(32),
    kb: randomBytes(32),
    mf: randomBytes(32),
    mb: randomBytes(32),
    kt: randomBytes(32),
  }));
  return {
    client: keys.map((k, i) => ({
      relay: { nickname: NAMES[i] } as ConsensusRelay,
      crypto: circuitHopCrypto(k, { firstHop: i === 0 }),
    })),
    relays: keys.map((k, i) => circuitHopCrypto(k, { firstHop: i === 0 })),
  };
}

/**
 * A relay message sent by hop `from` toward the client: sealed by that hop (originate), then a layer
 * added by every hop before it, as the relays do. Returns the cell body and the tag a SENDME echoes.
 */
function fromHop(
  relays: CircuitHopCrypto[],
  from: number,
  command: number,
  streamId: number,
  data: Buffer,
): { body: Buffer; tag: Buffer } {
  const plain = Buffer.alloc(CELL_BODY_LEN);
  writeRelayBody(plain, command, streamId, data);
  const { out, tags } = relays[from].backward.originate(plain);
  let body = out;
  for (let i = from - 1; i >= 0; i--) body = relays[i].backward.add(body);
  return { body, tag: tags[0] };
}

type Event = [string, ...unknown[]];

/** A circuit that records what the receive path tells it, and closes on destroy as a real one does. */
function recorder(hops: CircuitHop[]): CircuitReceiver & { events: Event[] } {
  const events: Event[] = [];
  return {
    events,
    closed: false,
    hops,
    extended(hdata) {
      events.push(['extended', hdata.toString()]);
    },
    streamMessage(command, streamId, data, tag) {
      events.push(['stream', command, streamId, data.toString(), tag.toString('hex')]);
    },
    destroy(reason, why, remoteReason) {
      events.push(['destroy', reason, why, remoteReason]);
      (this as { closed: boolean }).closed = true;
    },
  };
}

/** A circuit joined at its last hop (§8.7): `far` seals as the far end, `circuit` opens with `near`. */
function joined(): {
  relays: CircuitHopCrypto[];
  far: ForwardLayer;
  c: ReturnType<typeof recorder> & { endToEnd: ForwardLayer };
} {
  const { client, relays } = circuit();
  const kf = randomBytes(32);
  const mf = randomBytes(32);
  const c = Object.assign(recorder(client), {
    endToEnd: new Layer(kf, mf),
    onionMessage(command: number, data: Buffer) {
      c.events.push(['onion', command, data.toString()]);
    },
    begin(streamId: number, data: Buffer) {
      c.events.push(['begin', streamId, data.toString()]);
    },
  });
  return { relays, far: new Layer(kf, mf), c };
}

/**
 * A message from the far end: sealed under its end-to-end layer (what reaches the rendezvous point
 * past the far end's own relays), passed into this circuit by the point and layered by each hop.
 */
function fromFarEnd(
  relays: CircuitHopCrypto[],
  far: ForwardLayer,
  command: number,
  streamId: number,
  data: Buffer,
) {
  const { body, tag } = wrapForward([far], encodeRelayMessage(command, streamId, data));
  let out = body;
  for (let i = relays.length - 1; i >= 0; i--) out = relays[i].backward.add(out);
  return { body: out, tag };
}

describe('receiveRelayCells', () => {
  it('hands on each message from the exit with the tag a SENDME echoes, batched or one by one', () => {
    const { client, relays } = circuit();
    const c = recorder(client);
    const cells = [1, 2, 3].map((n) => fromHop(relays, 2, RelayCommand.DATA, 7, Buffer.from(`data ${n}`)));
    receiveRelayCells(
      c,
      cells.slice(0, 2).map((x) => x.body),
    );
    receiveRelayCells(c, [cells[2].body]);
    assert.deepEqual(
      c.events,
      cells.map((x, i) => ['stream', RelayCommand.DATA, 7, `data ${i + 1}`, x.tag.toString('hex')]),
    );
  });

  it('tells which hop sent each cell of one batch, and keeps each hop in step', () => {
    const { client, relays } = circuit();
    const c = recorder(client);
    const batch = [
      fromHop(relays, 2, RelayCommand.DATA, 1, Buffer.from('a')),
      fromHop(relays, 1, RelayCommand.DROP, 0, Buffer.alloc(0)), // the middle's own, ignored
      fromHop(relays, 2, RelayCommand.DATA, 1, Buffer.from('b')),
      fromHop(relays, 0, RelayCommand.DROP, 0, Buffer.alloc(0)),
      fromHop(relays, 2, RelayCommand.EXTENDED, 0, encodeExtended(Buffer.from('hdata'))),
    ];
    receiveRelayCells(
      c,
      batch.map((x) => x.body),
    );
    assert.deepEqual(
      c.events.map((e) => e.slice(0, 4)),
      [
        ['stream', RelayCommand.DATA, 1, 'a'],
        ['stream', RelayCommand.DATA, 1, 'b'],
        ['extended', 'hdata'],
      ],
    );
  });

  it('TRUNCATED ends the circuit, naming the hop and what the network said', () => {
    const { client, relays } = circuit();
    const c = recorder(client);
    receiveRelayCells(c, [
      fromHop(relays, 1, RelayCommand.TRUNCATED, 0, encodeTruncated(DestroyReason.CONNECTFAILED)).body,
    ]);
    assert.equal(c.events.length, 1);
    const [, reason, why, remote] = c.events[0];
    assert.equal(reason, DestroyReason.DESTROYED);
    assert.match(why as string, /^middle could not extend the circuit/);
    assert.equal(remote, DestroyReason.CONNECTFAILED);
  });

  describe('hostile or broken cells', () => {
    it('a changed cell is claimed by no hop: the circuit is destroyed for integrity', () => {
      const { client, relays } = circuit();
      const c = recorder(client);
      const { body } = fromHop(relays, 2, RelayCommand.DATA, 1, Buffer.from('x'));
      body[100] ^= 1;
      receiveRelayCells(c, [body]);
      assert.deepEqual(
        c.events.map((e) => e.slice(0, 2)),
        [['destroy', DestroyReason.INTEGRITY]],
      );
    });

    for (const [name, command, data] of [
      ['END', RelayCommand.END, encodeEnd(0)],
      ['DATA', RelayCommand.DATA, Buffer.from('forged')],
      ['SENDME', RelayCommand.SENDME, Buffer.alloc(0)],
      ['CONNECTED', RelayCommand.CONNECTED, Buffer.alloc(0)],
    ] as const) {
      it(`a stream message (${name}) sealed by the middle takes the circuit, and nothing after it is read`, () => {
        const { client, relays } = circuit();
        const c = recorder(client);
        receiveRelayCells(c, [
          fromHop(relays, 1, command, 1, data).body,
          fromHop(relays, 2, RelayCommand.DATA, 1, Buffer.from('after')).body,
        ]);
        assert.equal(c.events.length, 1);
        assert.equal(c.events[0][1], DestroyReason.PROTOCOL);
        assert.match(c.events[0][2] as string, /not the exit: middle/);
      });
    }

    it('EXTENDED from a hop that is not the last is a protocol error', () => {
      const { client, relays } = circuit();
      const c = recorder(client);
      receiveRelayCells(c, [
        fromHop(relays, 0, RelayCommand.EXTENDED, 0, encodeExtended(Buffer.from('h'))).body,
      ]);
      assert.deepEqual(c.events, [
        [
          'destroy',
          DestroyReason.PROTOCOL,
          'protocol error: EXTENDED from a hop that is not the last',
          undefined,
        ],
      ]);
    });

    it('a message with truncated data (an EXTENDED without its handshake) is a protocol error', () => {
      const { client, relays } = circuit();
      const c = recorder(client);
      receiveRelayCells(c, [fromHop(relays, 2, RelayCommand.EXTENDED, 0, Buffer.alloc(1)).body]);
      assert.equal(c.events.length, 1);
      assert.equal(c.events[0][1], DestroyReason.PROTOCOL);
      assert.match(c.events[0][2] as string, /^protocol error: /);
    });

    it('a cell replayed from earlier in the circuit fails (each hop counts its cells)', () => {
      const { client, relays } = circuit();
      const c = recorder(client);
      const first = fromHop(relays, 2, RelayCommand.DATA, 1, Buffer.from('once'));
      receiveRelayCells(c, [Buffer.from(first.body)]);
      receiveRelayCells(c, [first.body]);
      assert.deepEqual(
        c.events.map((e) => e.slice(0, 2)),
        [
          ['stream', RelayCommand.DATA],
          ['destroy', DestroyReason.INTEGRITY],
        ],
      );
    });
  });

  describe('onion service messages and joined circuits (§8.5, §8.7)', () => {
    it('an onion answer from the last hop goes to the circuit; from a middle it takes the circuit', () => {
      const { relays, c } = joined();
      receiveRelayCells(c, [fromHop(relays, 2, RelayCommand.INTRODUCE_ACK, 0, Buffer.from([0])).body]);
      assert.deepEqual(c.events, [['onion', RelayCommand.INTRODUCE_ACK, '\u0000']]);
      receiveRelayCells(c, [fromHop(relays, 1, RelayCommand.RENDEZVOUS2, 0, Buffer.alloc(64)).body]);
      assert.equal(c.events[1][0], 'destroy');
      assert.equal(c.events[1][1], DestroyReason.PROTOCOL);
    });

    it('an onion answer on a circuit that asked for none is a protocol error', () => {
      const { client, relays } = circuit();
      const c = recorder(client);
      receiveRelayCells(c, [fromHop(relays, 2, RelayCommand.INTRODUCE2, 0, Buffer.alloc(8)).body]);
      assert.deepEqual(
        c.events.map((e) => e.slice(0, 2)),
        [['destroy', DestroyReason.PROTOCOL]],
      );
    });

    it("opens the far end's cells with the end-to-end layer, tags and all, between the relays' own", () => {
      const { relays, far, c } = joined();
      const one = fromFarEnd(relays, far, RelayCommand.DATA, 3, Buffer.from('from the service'));
      const two = fromFarEnd(relays, far, RelayCommand.BEGIN, 4, Buffer.from('host:80'));
      receiveRelayCells(c, [one.body, two.body]);
      assert.deepEqual(c.events, [
        ['stream', RelayCommand.DATA, 3, 'from the service', one.tag.toString('hex')],
        ['begin', 4, 'host:80'],
      ]);
    });

    it("a far end's cell changed on the way fails its end-to-end tag: INTEGRITY", () => {
      const { relays, far, c } = joined();
      const { body } = fromFarEnd(relays, far, RelayCommand.DATA, 3, Buffer.from('x'));
      body[200] ^= 1;
      receiveRelayCells(c, [body]);
      assert.deepEqual(
        c.events.map((e) => e.slice(0, 2)),
        [['destroy', DestroyReason.INTEGRITY]],
      );
    });

    it('on a joined circuit the rendezvous point cannot speak for the streams', () => {
      const { relays, c } = joined();
      receiveRelayCells(c, [fromHop(relays, 2, RelayCommand.END, 1, encodeEnd(0)).body]);
      assert.deepEqual(
        c.events.map((e) => e.slice(0, 2)),
        [['destroy', DestroyReason.PROTOCOL]],
      );
    });

    it("BEGIN from the far end of a circuit that takes none (a client's) is a protocol error", () => {
      const { relays, far, c } = joined();
      (c as { begin?: unknown }).begin = undefined;
      receiveRelayCells(c, [fromFarEnd(relays, far, RelayCommand.BEGIN, 1, Buffer.from('x:1')).body]);
      assert.deepEqual(
        c.events.map((e) => e.slice(0, 2)),
        [['destroy', DestroyReason.PROTOCOL]],
      );
    });
  });
});
