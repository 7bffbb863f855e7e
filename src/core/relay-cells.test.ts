// One machine's whole contract (CREATE, forward and backward cells, EXTEND's answers, teardown) with
// the hostile case of each: longer than 400 lines so that it reads as one specification.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { isOrigin } from '../crypto/backward-layer.js';
import {
  type CircuitHopCrypto,
  circuitHopCrypto,
  type ForwardOpen,
  wrapForward,
} from '../crypto/forward-onion.js';
import { IdentityKey, randomBytes, X25519Key } from '../crypto/keys.js';
import { linkBoundHopStart } from '../crypto/link-bound-hop.js';
import { type HopKeys, ntorClientFinish, ntorClientStart, ntorServerRespond } from '../crypto/ntor.js';
import { silentLogger } from '../log.js';
import type { Cell } from '../wire/cell.js';
import {
  decodeCreated,
  decodeDestroy,
  encodeCreate,
  encodeCreated,
  encodeDestroy,
} from '../wire/cell-bodies.js';
import {
  CELL_BODY_LEN,
  CellCommand,
  CIRC_ID_INITIATOR_BIT,
  DestroyReason,
  EndReason,
  HandshakeType,
  MAX_RELAY_EARLY,
  RelayCommand,
} from '../wire/constants.js';
import { encodeRelayMessage, readRelayHeader, relayData, writeRelayBody } from '../wire/relay-cell.js';
import { decodeEnd, decodeExtended, encodeBegin, encodeExtend } from '../wire/relay-messages.js';
import { type RelayCellStats, RelayCells, type RelayCellsHost } from './relay-cells.js';
import type { CellLink, RelayCircuit } from './relay-circuit.js';

interface Sent {
  circId: number;
  command: number;
  body: Buffer;
}

/** A link as the cell handling sees one: it records what is sent on it. */
class FakeLink implements CellLink {
  readonly sent: Sent[] = [];
  isClosed = false;
  pressured = false;
  constructor(
    readonly initiator: boolean,
    readonly peerRelayId: Buffer | null,
    readonly linkSecret: Buffer = randomBytes(32),
  ) {}
  send(circId: number, command: number, body: Buffer): void {
    this.sent.push({ circId, command, body: Buffer.from(body) });
  }
  queuedCellsOf(): number {
    return 0;
  }
  /** What was sent since the last take(). */
  take(): Sent[] {
    return this.sent.splice(0);
  }
}

const identity = IdentityKey.generate();
const onionKey = X25519Key.generate();
const me = { relayId: identity.id, onionKey };
const CLIENT_CIRC = (7 | CIRC_ID_INITIATOR_BIT) >>> 0;

/** The relay around the cell handling: answers handshakes (now, or when told) and records the rest. */
class FakeHost implements RelayCellsHost {
  readonly calls: [string, ...unknown[]][] = [];
  /** Answers held back until release(). */
  readonly held: (() => void)[] = [];
  holdAnswers = false;
  cells!: RelayCells<FakeLink>;
  answerCreate(hdata: Buffer, done: (err: Error | null, r?: { reply: Buffer; keys: HopKeys }) => void): void {
    const answer = () => {
      try {
        done(null, ntorServerRespond(hdata, me));
      } catch (err) {
        done(err as Error);
      }
    };
    if (this.holdAnswers) this.held.push(answer);
    else answer();
  }
  onForwardOpened(circ: RelayCircuit, cell: Cell, opened: ForwardOpen): void {
    this.cells.forwardOpened(circ, cell, opened);
  }
  onExtend(circ: RelayCircuit, data: Buffer): void {
    circ.extending = true;
    this.calls.push(['extend', circ, data]);
  }
  begin(_circ: RelayCircuit, streamId: number, data: Buffer): void {
    this.calls.push(['begin', streamId, data.toString('hex')]);
  }
  streamMessage(_circ: RelayCircuit, command: number, streamId: number, data: Buffer): void {
    this.calls.push(['stream', command, streamId, data.toString()]);
  }
  closing(circ: RelayCircuit): void {
    this.calls.push(['closing', circ.prev.circId]);
  }
}

function newStats(): RelayCellStats {
  return {
    cellsIn: 0,
    cellsOut: 0,
    circuits: 0,
    linkBoundCreates: 0,
    limitRejections: 0,
    handshakeFailures: 0,
    integrityFailures: 0,
    idleCircuitsClosed: 0,
  };
}

let clock = 0;
let host: FakeHost;
let stats: RelayCellStats;
let cells: RelayCells<FakeLink>;
/** The link from a client (accepted: not the initiator, no relay id). */
let client: FakeLink;

function setup(limits = { circuitsPerLink: 100, createsPerSecond: 1000, createBurst: 1000 }) {
  clock = 1_000_000;
  host = new FakeHost();
  stats = newStats();
  cells = new RelayCells<FakeLink>({ host, limits, stats, log: silentLogger, now: () => clock });
  host.cells = cells;
  client = new FakeLink(false, null);
  cells.table.linkOpened(client);
}

const cell = (circId: number, command: number, body: Buffer): Cell => ({ circId, command, body });

/** Opens a circuit from `client` with a link-bound CREATE; returns the client's keys for this hop. */
function linkBoundCircuit(circId = CLIENT_CIRC): CircuitHopCrypto {
  const { hdata, hop } = linkBoundHopStart(client.linkSecret);
  cells.cells(client, [cell(circId, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, hdata))]);
  const [created] = client.take();
  assert.equal(created.command, CellCommand.CREATED);
  assert.deepEqual(decodeCreated(created.body).hdata, hop.confirm);
  return circuitHopCrypto(hop.keys, { firstHop: true });
}

/**
 * Opens a circuit with an ntor CREATE on a link from another relay (this hop is then not the entry);
 * returns the link and the client's keys for this hop.
 */
function relayLinkCircuit(): { prev: FakeLink; hop: CircuitHopCrypto } {
  const prev = new FakeLink(false, IdentityKey.generate().id);
  cells.table.linkOpened(prev);
  const { onionskin, state } = ntorClientStart(identity.id, onionKey.publicKey);
  cells.cells(prev, [
    cell(CLIENT_CIRC, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin)),
  ]);
  const [created] = prev.take();
  assert.equal(created.command, CellCommand.CREATED);
  const keys = ntorClientFinish(state, decodeCreated(created.body).hdata);
  return { prev, hop: circuitHopCrypto(keys, { firstHop: false }) };
}

/** A relay message from the client for hop `layers.length - 1`, in a cell of `command`. */
function forward(
  layers: CircuitHopCrypto[],
  relayCommand: number,
  data: Buffer,
  command: number = CellCommand.RELAY,
) {
  return wrapForward(
    layers.map((l) => l.forward),
    encodeRelayMessage(relayCommand, relayCommand === RelayCommand.EXTEND ? 0 : 1, data),
    command,
  ).body;
}

function destroyReasons(link: FakeLink): number[] {
  return link
    .take()
    .filter((s) => s.command === CellCommand.DESTROY)
    .map((s) => decodeDestroy(s.body).reason);
}

describe('RelayCells', () => {
  beforeEach(() => setup());

  describe('CREATE', () => {
    it('answers an ntor CREATE with CREATED, and both ends hold the same keys', () => {
      const { prev, hop } = relayLinkCircuit();
      assert.equal(stats.circuits, 1);
      cells.cells(prev, [
        cell(CLIENT_CIRC, CellCommand.RELAY, forward([hop], RelayCommand.DATA, Buffer.from('hi'))),
      ]);
      assert.deepEqual(host.calls, [['stream', RelayCommand.DATA, 1, 'hi']]);
    });

    it("at the entry (a client's link) no stream: BEGIN gets END(TORPROTOCOL), DATA ends the circuit", () => {
      const hop0 = linkBoundCircuit();
      cells.cells(client, [
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY,
          forward([hop0], RelayCommand.BEGIN, encodeBegin('example.org', 80)),
        ),
      ]);
      const [end] = client.take();
      const peeled = hop0.backward.peel(end.body);
      assert.equal(readRelayHeader(peeled).command, RelayCommand.END);
      assert.equal(decodeEnd(relayData(peeled)).reason, EndReason.TORPROTOCOL);
      cells.cells(client, [
        cell(CLIENT_CIRC, CellCommand.RELAY, forward([hop0], RelayCommand.DATA, Buffer.from('x'))),
      ]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.PROTOCOL]);
      assert.deepEqual(host.calls, [['closing', CLIENT_CIRC]], 'nothing reached the exit side');
    });

    it('answers a link-bound CREATE at once with the confirmation, and refuses its X a second time', () => {
      const { hdata } = linkBoundHopStart(client.linkSecret);
      const create = encodeCreate(HandshakeType.LINK_BOUND, hdata);
      cells.cells(client, [cell(CLIENT_CIRC, CellCommand.CREATE, create)]);
      assert.equal(client.take()[0].command, CellCommand.CREATED);
      assert.equal(stats.linkBoundCreates, 1);
      cells.cells(client, [cell(CLIENT_CIRC + 1, CellCommand.CREATE, create)]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.PROTOCOL]);
      assert.equal(stats.handshakeFailures, 1);
    });

    it('refuses a link-bound CREATE from a relay: only a client shares that link secret', () => {
      const relay = new FakeLink(false, IdentityKey.generate().id);
      cells.table.linkOpened(relay);
      const { hdata } = linkBoundHopStart(relay.linkSecret);
      cells.cells(relay, [
        cell(CLIENT_CIRC, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, hdata)),
      ]);
      assert.deepEqual(destroyReasons(relay), [DestroyReason.PROTOCOL]);
    });

    it('refuses ids that break §2.2: zero, the wrong high bit for the link, one in use', () => {
      linkBoundCircuit();
      const { hdata } = linkBoundHopStart(client.linkSecret);
      const create = encodeCreate(HandshakeType.LINK_BOUND, hdata);
      for (const id of [0, 7, CLIENT_CIRC]) cells.cells(client, [cell(id, CellCommand.CREATE, create)]);
      assert.deepEqual(destroyReasons(client), [
        DestroyReason.PROTOCOL,
        DestroyReason.PROTOCOL,
        DestroyReason.PROTOCOL,
      ]);
      assert.equal(stats.circuits, 1);
    });

    it('refuses truncated or unknown handshakes, counting them as handshake failures', () => {
      const bad = [
        Buffer.from([0, 2, 0]),
        encodeCreate(9, randomBytes(32)),
        encodeCreate(HandshakeType.NTOR_X25519_SHA256, randomBytes(10)),
      ];
      for (const [i, body] of bad.entries())
        cells.cells(client, [cell(CLIENT_CIRC + i, CellCommand.CREATE, body)]);
      assert.deepEqual(destroyReasons(client), [
        DestroyReason.PROTOCOL,
        DestroyReason.PROTOCOL,
        DestroyReason.PROTOCOL,
      ]);
      assert.equal(stats.handshakeFailures, 3);
      assert.equal(stats.circuits, 0);
    });

    it('holds a link to its circuits and its CREATE rate (RESOURCELIMIT), on the clock it is given', () => {
      setup({ circuitsPerLink: 2, createsPerSecond: 1, createBurst: 3 });
      linkBoundCircuit(CLIENT_CIRC);
      linkBoundCircuit(CLIENT_CIRC + 1);
      const { hdata } = linkBoundHopStart(client.linkSecret);
      cells.cells(client, [
        cell(CLIENT_CIRC + 2, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, hdata)),
      ]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.RESOURCELIMIT]);
      setup({ circuitsPerLink: 100, createsPerSecond: 1, createBurst: 2 });
      linkBoundCircuit(CLIENT_CIRC);
      linkBoundCircuit(CLIENT_CIRC + 1);
      const next = linkBoundHopStart(client.linkSecret).hdata;
      cells.cells(client, [
        cell(CLIENT_CIRC + 2, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, next)),
      ]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.RESOURCELIMIT]);
      assert.equal(stats.limitRejections, 1);
      clock += 1000;
      linkBoundCircuit(CLIENT_CIRC + 3);
    });

    it('drops the answer to a CREATE the client DESTROYed while it was being answered', () => {
      host.holdAnswers = true;
      const { onionskin } = ntorClientStart(identity.id, onionKey.publicKey);
      cells.cells(client, [
        cell(CLIENT_CIRC, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin)),
        cell(CLIENT_CIRC, CellCommand.DESTROY, encodeDestroy(DestroyReason.REQUESTED)),
      ]);
      for (const answer of host.held) answer();
      assert.deepEqual(client.take(), []);
      assert.equal(stats.circuits, 0);
    });
  });

  describe('forward cells', () => {
    it('past the entry a BEGIN for this hop goes to the exit side', () => {
      const { prev, hop } = relayLinkCircuit();
      cells.cells(prev, [
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY,
          forward([hop], RelayCommand.BEGIN, encodeBegin('example.org', 80)),
        ),
      ]);
      assert.deepEqual(host.calls, [['begin', 1, encodeBegin('example.org', 80).toString('hex')]]);
    });

    it('a cell for further on goes to the next link, on the circuit id the relay chose there', () => {
      const hop0 = linkBoundCircuit();
      // Extend to a next hop, whose keys the client shares with the relay there.
      const next = new FakeLink(true, IdentityKey.generate().id);
      cells.table.linkOpened(next);
      cells.cells(client, [
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY_EARLY,
          forward(
            [hop0],
            RelayCommand.EXTEND,
            encodeExtend({
              address: '10.0.0.2',
              port: 1,
              relayId: next.peerRelayId!,
              htype: HandshakeType.NTOR_X25519_SHA256,
              hdata: randomBytes(96),
            }),
            CellCommand.RELAY_EARLY,
          ),
        ),
      ]);
      const circ = host.calls[0][1] as unknown as RelayCircuit;
      cells.extendTo(circ, next, HandshakeType.NTOR_X25519_SHA256, Buffer.from('onionskin'));
      const [create] = next.take();
      assert.equal(create.command, CellCommand.CREATE);
      assert.ok(
        (create.circId & CIRC_ID_INITIATOR_BIT) !== 0,
        'the initiator of the next link sets the high bit',
      );
      const hop1Keys = {
        kf: randomBytes(32),
        kb: randomBytes(32),
        mf: randomBytes(32),
        mb: randomBytes(32),
        kt: randomBytes(32),
      };
      const hop1 = circuitHopCrypto(hop1Keys, { firstHop: false });
      const atNext = circuitHopCrypto(hop1Keys, { firstHop: false });
      cells.cells(client, [
        cell(CLIENT_CIRC, CellCommand.RELAY, forward([hop0, hop1], RelayCommand.DATA, Buffer.from('onward'))),
      ]);
      const [passed] = next.take();
      assert.equal(passed.circId, create.circId);
      const opened = atNext.forward.open(passed.body, passed.command);
      assert.equal(opened.kind, 'mine', 'the next hop opens what the relay passed on');
      assert.equal(stats.cellsOut, 1);
    });

    it('a CREATED from the next hop goes back to the client as EXTENDED, sealed by this hop', () => {
      const hop0 = linkBoundCircuit();
      const next = new FakeLink(true, IdentityKey.generate().id);
      cells.table.linkOpened(next);
      cells.cells(client, [
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY_EARLY,
          forward([hop0], RelayCommand.EXTEND, randomBytes(40), CellCommand.RELAY_EARLY),
        ),
      ]);
      const circ = host.calls[0][1] as unknown as RelayCircuit;
      cells.extendTo(circ, next, HandshakeType.NTOR_X25519_SHA256, Buffer.from('x'));
      const [create] = next.take();
      cells.cells(next, [cell(create.circId, CellCommand.CREATED, encodeCreated(Buffer.from('Y|AUTH')))]);
      const [back] = client.take();
      const peeled = hop0.backward.peel(back.body);
      assert.ok(isOrigin(peeled));
      assert.equal(readRelayHeader(peeled).command, RelayCommand.EXTENDED);
      assert.equal(decodeExtended(relayData(peeled)).hdata.toString(), 'Y|AUTH');
      // A second CREATED is not an answer to anything.
      cells.cells(next, [cell(create.circId, CellCommand.CREATED, encodeCreated(Buffer.from('again')))]);
      assert.deepEqual(client.take(), []);
    });

    it('a failed extend sends TRUNCATED back and lets the circuit extend again', () => {
      const hop0 = linkBoundCircuit();
      cells.cells(client, [
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY_EARLY,
          forward([hop0], RelayCommand.EXTEND, randomBytes(40), CellCommand.RELAY_EARLY),
        ),
      ]);
      const circ = host.calls[0][1] as unknown as RelayCircuit;
      cells.extendFailed(circ, DestroyReason.CONNECTFAILED);
      const peeled = hop0.backward.peel(client.take()[0].body);
      assert.equal(readRelayHeader(peeled).command, RelayCommand.TRUNCATED);
      assert.equal(circ.extending, false);
    });
  });

  describe('hostile forward cells', () => {
    it('a changed cell ends the circuit with INTEGRITY, and nothing reaches the exit side', () => {
      const hop0 = linkBoundCircuit();
      const body = forward([hop0], RelayCommand.DATA, Buffer.from('x'));
      body[200] ^= 1;
      cells.cells(client, [cell(CLIENT_CIRC, CellCommand.RELAY, body)]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.INTEGRITY]);
      assert.equal(stats.integrityFailures, 1);
      assert.deepEqual(host.calls, [['closing', CLIENT_CIRC]]);
    });

    it('RELAY_EARLY carrying anything but EXTEND is a marked cell: the circuit goes', () => {
      const hop0 = linkBoundCircuit();
      cells.cells(client, [
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY_EARLY,
          forward([hop0], RelayCommand.DATA, Buffer.from('x'), CellCommand.RELAY_EARLY),
        ),
      ]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.PROTOCOL]);
      assert.ok(!host.calls.some((c) => c[0] === 'stream'));
    });

    it('an EXTEND in a plain RELAY cell, or a second one while the first is under way, is refused', () => {
      const hop0 = linkBoundCircuit();
      cells.cells(client, [
        cell(CLIENT_CIRC, CellCommand.RELAY, forward([hop0], RelayCommand.EXTEND, randomBytes(40))),
      ]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.PROTOCOL]);
      setup();
      const again = linkBoundCircuit();
      const extend = () => forward([again], RelayCommand.EXTEND, randomBytes(40), CellCommand.RELAY_EARLY);
      cells.cells(client, [
        cell(CLIENT_CIRC, CellCommand.RELAY_EARLY, extend()),
        cell(CLIENT_CIRC, CellCommand.RELAY_EARLY, extend()),
      ]);
      assert.equal(host.calls.filter((c) => c[0] === 'extend').length, 1);
      assert.deepEqual(destroyReasons(client), [DestroyReason.PROTOCOL]);
    });

    it(`more than ${MAX_RELAY_EARLY} RELAY_EARLY cells passed on end the circuit`, () => {
      const hop0 = linkBoundCircuit();
      const next = new FakeLink(true, IdentityKey.generate().id);
      cells.table.linkOpened(next);
      cells.cells(client, [
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY_EARLY,
          forward([hop0], RelayCommand.EXTEND, randomBytes(40), CellCommand.RELAY_EARLY),
        ),
      ]);
      cells.extendTo(host.calls[0][1] as unknown as RelayCircuit, next, 2, Buffer.alloc(1));
      next.take();
      const hop1 = circuitHopCrypto(
        {
          kf: randomBytes(32),
          kb: randomBytes(32),
          mf: randomBytes(32),
          mb: randomBytes(32),
          kt: randomBytes(32),
        },
        { firstHop: false },
      );
      const run = Array.from({ length: MAX_RELAY_EARLY + 1 }, () =>
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY_EARLY,
          forward([hop0, hop1], RelayCommand.EXTEND, randomBytes(40), CellCommand.RELAY_EARLY),
        ),
      );
      cells.cells(client, run);
      assert.equal(next.take().filter((s) => s.command === CellCommand.RELAY_EARLY).length, MAX_RELAY_EARLY);
      assert.deepEqual(destroyReasons(client), [DestroyReason.PROTOCOL]);
    });

    it('a cell for further on with no next hop, a relay cell on an unknown circuit, an unknown command', () => {
      const hop0 = linkBoundCircuit();
      const hop1 = circuitHopCrypto(
        {
          kf: randomBytes(32),
          kb: randomBytes(32),
          mf: randomBytes(32),
          mb: randomBytes(32),
          kt: randomBytes(32),
        },
        { firstHop: false },
      );
      cells.cells(client, [
        cell(CLIENT_CIRC + 5, CellCommand.RELAY, randomBytes(CELL_BODY_LEN)),
        cell(CLIENT_CIRC, 99, Buffer.alloc(0)),
        cell(CLIENT_CIRC, CellCommand.CREATED, encodeCreated(Buffer.from('unasked'))),
      ]);
      assert.deepEqual(client.take(), [], 'ignored');
      cells.cells(client, [
        cell(CLIENT_CIRC, CellCommand.RELAY, forward([hop0, hop1], RelayCommand.DATA, Buffer.from('x'))),
      ]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.PROTOCOL]);
    });
  });

  describe('backward cells and teardown', () => {
    function extended(): { hop0: CircuitHopCrypto; next: FakeLink; nextCirc: number; circ: RelayCircuit } {
      const hop0 = linkBoundCircuit();
      const next = new FakeLink(true, IdentityKey.generate().id);
      cells.table.linkOpened(next);
      cells.cells(client, [
        cell(
          CLIENT_CIRC,
          CellCommand.RELAY_EARLY,
          forward([hop0], RelayCommand.EXTEND, randomBytes(40), CellCommand.RELAY_EARLY),
        ),
      ]);
      const circ = host.calls[0][1] as unknown as RelayCircuit;
      cells.extendTo(circ, next, 2, Buffer.alloc(1));
      const [create] = next.take();
      host.calls.length = 0;
      return { hop0, next, nextCirc: create.circId, circ };
    }

    it("adds this hop's layer to cells from further on, a run in one call the same as one by one", () => {
      const { hop0, next, nextCirc } = extended();
      const bodies = [1, 2, 3].map((n) => {
        const b = Buffer.alloc(CELL_BODY_LEN);
        writeRelayBody(b, RelayCommand.DATA, 1, Buffer.from(`cell ${n}`));
        return b;
      });
      cells.cells(
        next,
        bodies.slice(0, 2).map((b) => cell(nextCirc, CellCommand.RELAY, b)),
      );
      cells.cells(next, [cell(nextCirc, CellCommand.RELAY, bodies[2])]);
      const out = client.take();
      assert.equal(out.length, 3);
      out.forEach((s, i) => {
        assert.equal(s.circId, CLIENT_CIRC);
        assert.deepEqual(hop0.backward.peel(s.body), bodies[i], "the client peels the relay's layer off");
      });
      assert.equal(stats.cellsIn, 5, 'the CREATE, the EXTEND and three from further on');
    });

    it('DESTROY from either side goes on to the other side only; the exit side hears first', () => {
      const a = extended();
      cells.cells(a.next, [cell(a.nextCirc, CellCommand.DESTROY, encodeDestroy(DestroyReason.FINISHED))]);
      assert.deepEqual(destroyReasons(client), [DestroyReason.DESTROYED]);
      assert.deepEqual(destroyReasons(a.next), []);
      assert.deepEqual(host.calls, [['closing', CLIENT_CIRC]]);
      assert.equal(a.circ.closed, true);
      setup();
      const b = extended();
      cells.cells(client, [cell(CLIENT_CIRC, CellCommand.DESTROY, encodeDestroy(DestroyReason.FINISHED))]);
      assert.deepEqual(destroyReasons(b.next), [DestroyReason.DESTROYED]);
      assert.deepEqual(destroyReasons(client), []);
      assert.equal(cells.table.circuits.get(client)!.size, 0);
      assert.equal(cells.table.circuits.get(b.next)!.size, 0);
    });

    it('a closed link takes its circuits, and the other side hears CHANNEL_CLOSED', () => {
      const { next } = extended();
      cells.table.linkClosed(client);
      assert.deepEqual(destroyReasons(next), [DestroyReason.CHANNEL_CLOSED]);
      assert.equal(cells.table.circuits.has(client), false);
    });

    it('circuits that carried nothing for the idle time are destroyed both ways', () => {
      const { next } = extended();
      cells.table.closeIdleCircuits(60_000);
      clock += 59_000;
      cells.table.closeIdleCircuits(60_000);
      assert.deepEqual(destroyReasons(client), []);
      clock += 2000;
      cells.table.closeIdleCircuits(60_000);
      assert.deepEqual(destroyReasons(client), [DestroyReason.FINISHED]);
      assert.deepEqual(destroyReasons(next), [DestroyReason.FINISHED]);
      assert.equal(stats.idleCircuitsClosed, 1);
    });
  });
});
