// A relay as descriptor store, introduction point and rendezvous point (§8.5, §8.7), through its
// cell handling (RelayCells) with links that record what is sent: each rule with its hostile case.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { isOrigin } from '../crypto/backward-layer.js';
import { endToEndLayers } from '../crypto/end-to-end-layer.js';
import {
  type CircuitHopCrypto,
  circuitHopCrypto,
  FORWARD_MARKER_LEN,
  type ForwardLayer,
  type ForwardOpen,
  wrapForward,
} from '../crypto/forward-onion.js';
import { circuitBinding, signEstablishIntro } from '../crypto/intro-auth.js';
import { blindSecret } from '../crypto/key-blinding.js';
import { IdentityKey, randomBytes, X25519Key } from '../crypto/keys.js';
import { linkBoundHopStart } from '../crypto/link-bound-hop.js';
import { type HopKeys, ntorClientFinish, ntorClientStart, ntorServerRespond } from '../crypto/ntor.js';
import { sealDescriptor } from '../crypto/onion-descriptor.js';
import { silentLogger } from '../log.js';
import type { Cell } from '../wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate, encodeDestroy } from '../wire/cell-bodies.js';
import {
  CellCommand,
  CIRC_ID_INITIATOR_BIT,
  DestroyReason,
  HandshakeType,
  RelayCommand,
} from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import {
  DescriptorStoreStatus,
  decodeDescriptorFetched,
  decodeDescriptorStored,
  decodeIntroduceAck,
  decodeRendezvous2,
  encodeDescriptorFetch,
  encodeEstablishIntro,
  encodeEstablishRendezvous,
  encodeIntroduce,
  encodeRendezvous1,
  IntroduceAckStatus,
} from '../wire/onion-messages.js';
import { decodeRelayMessage, encodeRelayMessage, readRelayHeader, relayData } from '../wire/relay-cell.js';
import { encodeBegin } from '../wire/relay-messages.js';
import { type CircuitReceiver, receiveRelayCells } from './circuit-receive.js';
import { type RelayCellStats, RelayCells, type RelayCellsHost } from './relay-cells.js';
import type { CellLink, RelayCircuit } from './relay-circuit.js';

interface Sent {
  circId: number;
  command: number;
  body: Buffer;
}

class FakeLink implements CellLink {
  readonly sent: Sent[] = [];
  isClosed = false;
  pressured = false;
  readonly initiator = false;
  readonly linkSecret = randomBytes(32);
  constructor(readonly peerRelayId: Buffer | null) {}
  send(circId: number, command: number, body: Buffer): void {
    this.sent.push({ circId, command, body: Buffer.from(body) });
  }
  queuedCellsOf(): number {
    return 0;
  }
  /** What was sent on `circId` since the last take of it. */
  take(circId: number): Sent[] {
    const mine = this.sent.filter((s) => s.circId === circId);
    for (let i = this.sent.length - 1; i >= 0; i--)
      if (this.sent[i].circId === circId) this.sent.splice(i, 1);
    return mine;
  }
}

const identity = IdentityKey.generate();
const onionKey = X25519Key.generate();
const me = { relayId: identity.id, onionKey };

class FakeHost implements RelayCellsHost {
  readonly calls: string[] = [];
  cells!: RelayCells<FakeLink>;
  answerCreate(hdata: Buffer, done: (err: Error | null, r?: { reply: Buffer; keys: HopKeys }) => void): void {
    done(null, ntorServerRespond(hdata, me));
  }
  /** A hostile point: may change a cell it opened before handling it. */
  changeOpened: ((opened: ForwardOpen) => void) | null = null;
  onForwardOpened(circ: RelayCircuit, cell: Cell, opened: ForwardOpen): void {
    this.changeOpened?.(opened);
    this.cells.forwardOpened(circ, cell, opened);
  }
  onExtend(): void {
    this.calls.push('extend');
  }
  begin(): void {
    this.calls.push('begin');
  }
  streamMessage(): void {
    this.calls.push('stream');
  }
  closing(): void {}
}

let clock: number;
let cells: RelayCells<FakeLink>;
let host: FakeHost;
/** A link from the relay before this one: circuits on it reach this relay as their second hop or later. */
let fromRelay: FakeLink;
let nextCirc: number;

function setup(limits: { rendezvousCookies?: number; rendezvousCookieMs?: number } = {}): void {
  clock = 5_000_000;
  host = new FakeHost();
  const stats: RelayCellStats = {
    cellsIn: 0,
    cellsOut: 0,
    circuits: 0,
    linkBoundCreates: 0,
    limitRejections: 0,
    handshakeFailures: 0,
    integrityFailures: 0,
    idleCircuitsClosed: 0,
  };
  cells = new RelayCells<FakeLink>({
    host,
    limits: { circuitsPerLink: 100, createsPerSecond: 1000, createBurst: 1000 },
    stats,
    log: silentLogger,
    now: () => clock,
    onion: { limits },
  });
  host.cells = cells;
  fromRelay = new FakeLink(IdentityKey.generate().id);
  cells.table.linkOpened(fromRelay);
  nextCirc = 1;
}

/** One circuit's end as the test holds it: the keys of this relay's hop, and what came back. */
interface Hop {
  link: FakeLink;
  circId: number;
  keys: HopKeys;
  crypto: CircuitHopCrypto;
}

/** A circuit that reaches this relay from another relay (this hop is not its entry). */
function circuit(): Hop {
  const circId = (nextCirc++ | CIRC_ID_INITIATOR_BIT) >>> 0;
  const { onionskin, state } = ntorClientStart(identity.id, onionKey.publicKey);
  cells.cells(fromRelay, [
    { circId, command: CellCommand.CREATE, body: encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin) },
  ]);
  const [created] = fromRelay.take(circId);
  const keys = ntorClientFinish(state, decodeCreated(created.body).hdata);
  return { link: fromRelay, circId, keys, crypto: circuitHopCrypto(keys, { firstHop: false }) };
}

function send(hop: Hop, command: number, data: Buffer): void {
  const { body } = wrapForward([hop.crypto.forward], encodeRelayMessage(command, 0, data));
  cells.cells(hop.link, [{ circId: hop.circId, command: CellCommand.RELAY, body }]);
}

/** The relay messages this relay sent back on `hop` since last asked, peeled; DESTROYs as reasons. */
function back(hop: Hop): ({ command: number; data: Buffer } | { destroy: number })[] {
  return hop.link.take(hop.circId).map((s) => {
    if (s.command === CellCommand.DESTROY) return { destroy: decodeDestroy(s.body).reason };
    const peeled = hop.crypto.backward.peel(s.body);
    assert.ok(isOrigin(peeled), 'sent by this relay');
    return { command: readRelayHeader(peeled).command, data: relayData(peeled) };
  });
}

function only(hop: Hop, command: number): Buffer {
  const got = back(hop);
  assert.equal(got.length, 1, `one answer, got ${JSON.stringify(got)}`);
  assert.ok(
    'command' in got[0] && got[0].command === command,
    `command ${command}, got ${JSON.stringify(got[0])}`,
  );
  return (got[0] as { data: Buffer }).data;
}

function destroyed(hop: Hop, reason: number = DestroyReason.PROTOCOL): void {
  assert.deepEqual(back(hop), [{ destroy: reason }]);
}

function descriptor(revision = 1000): { bytes: Buffer; blindedKey: Buffer } {
  const seed = randomBytes(32);
  const blinded = blindSecret(seed, { number: 1, length: 86_400 });
  const bytes = sealDescriptor({
    identityKey: IdentityKey.fromSeed(seed).publicKey,
    blindedSecret: blinded,
    revision,
    expires: Math.floor(clock / 1000) + 3600,
    introPoints: [{ relayId: randomBytes(32), authKey: randomBytes(32), encKey: randomBytes(32) }],
  });
  return { bytes, blindedKey: blinded.publicKey };
}

/** An introduction point registered on a fresh circuit for `authKey`. */
function introPoint(authKey = IdentityKey.generate(), limits = { rate: 0, burst: 0 }): Hop {
  const service = circuit();
  const m = signEstablishIntro(authKey, limits, circuitBinding(service.keys.mf));
  send(service, RelayCommand.ESTABLISH_INTRO, encodeEstablishIntro(m));
  assert.equal(only(service, RelayCommand.INTRO_ESTABLISHED).length, 0);
  return service;
}

function introduce1(authKey: Buffer): Buffer {
  return encodeIntroduce({
    authKey,
    clientKey: randomBytes(32),
    encrypted: randomBytes(128),
    mac: randomBytes(32),
  });
}

describe('a relay for onion services (§8.5)', () => {
  beforeEach(() => setup());

  it("refuses every onion service message on a circuit from a client's link: DESTROY, no answer", () => {
    const client = new FakeLink(null);
    cells.table.linkOpened(client);
    for (const command of [
      RelayCommand.HS_DESC_STORE,
      RelayCommand.HS_DESC_FETCH,
      RelayCommand.ESTABLISH_INTRO,
      RelayCommand.INTRODUCE1,
      RelayCommand.ESTABLISH_RENDEZVOUS,
      RelayCommand.RENDEZVOUS1,
    ]) {
      const circId = (command | CIRC_ID_INITIATOR_BIT) >>> 0;
      const { hdata, hop } = linkBoundHopStart(client.linkSecret);
      cells.cells(client, [
        { circId, command: CellCommand.CREATE, body: encodeCreate(HandshakeType.LINK_BOUND, hdata) },
      ]);
      client.take(circId);
      const entry: Hop = {
        link: client,
        circId,
        keys: hop.keys,
        crypto: circuitHopCrypto(hop.keys, { firstHop: true }),
      };
      send(entry, command, command === RelayCommand.HS_DESC_FETCH ? randomBytes(32) : randomBytes(64));
      destroyed(entry);
    }
    assert.equal(cells.onion.introPoints + cells.onion.pendingCookies, 0);
  });

  describe('as a descriptor store', () => {
    it('stores a descriptor and serves it back; a fetch of another key finds nothing', () => {
      const d = descriptor();
      const service = circuit();
      send(service, RelayCommand.HS_DESC_STORE, d.bytes);
      assert.equal(
        decodeDescriptorStored(only(service, RelayCommand.HS_DESC_STORED)),
        DescriptorStoreStatus.STORED,
      );
      send(service, RelayCommand.HS_DESC_STORE, d.bytes);
      assert.equal(
        decodeDescriptorStored(only(service, RelayCommand.HS_DESC_STORED)),
        DescriptorStoreStatus.NOT_NEWER,
      );
      const client = circuit();
      send(client, RelayCommand.HS_DESC_FETCH, encodeDescriptorFetch(d.blindedKey));
      assert.deepEqual(decodeDescriptorFetched(only(client, RelayCommand.HS_DESC_FETCHED)), d.bytes);
      send(client, RelayCommand.HS_DESC_FETCH, encodeDescriptorFetch(randomBytes(32)));
      assert.equal(decodeDescriptorFetched(only(client, RelayCommand.HS_DESC_FETCHED)), null);
    });

    it('answers INVALID to a changed descriptor and keeps nothing; a fetch that does not parse costs the circuit', () => {
      const d = descriptor();
      d.bytes[300] ^= 1;
      const service = circuit();
      send(service, RelayCommand.HS_DESC_STORE, d.bytes);
      assert.equal(
        decodeDescriptorStored(only(service, RelayCommand.HS_DESC_STORED)),
        DescriptorStoreStatus.INVALID,
      );
      send(service, RelayCommand.HS_DESC_FETCH, randomBytes(31));
      destroyed(service);
    });
  });

  describe('as an introduction point', () => {
    it('registers a circuit whose ESTABLISH_INTRO is bound to it, and passes INTRODUCE1 on as INTRODUCE2', () => {
      const authKey = IdentityKey.generate();
      const service = introPoint(authKey);
      const client = circuit();
      const intro = introduce1(authKey.publicKey);
      send(client, RelayCommand.INTRODUCE1, intro);
      assert.equal(decodeIntroduceAck(only(client, RelayCommand.INTRODUCE_ACK)), IntroduceAckStatus.SUCCESS);
      assert.deepEqual(only(service, RelayCommand.INTRODUCE2), intro, 'unchanged');
      // One introduction per circuit.
      send(client, RelayCommand.INTRODUCE1, intro);
      destroyed(client);
      assert.deepEqual(back(service), []);
    });

    it('refuses an ESTABLISH_INTRO made for another circuit, or not signed by its key', () => {
      const authKey = IdentityKey.generate();
      const other = circuit();
      const service = circuit();
      send(
        service,
        RelayCommand.ESTABLISH_INTRO,
        encodeEstablishIntro(
          signEstablishIntro(authKey, { rate: 0, burst: 0 }, circuitBinding(other.keys.mf)),
        ),
      );
      destroyed(service);
      const again = circuit();
      const m = signEstablishIntro(authKey, { rate: 0, burst: 0 }, circuitBinding(again.keys.mf));
      m.signature[5] ^= 1;
      send(again, RelayCommand.ESTABLISH_INTRO, encodeEstablishIntro(m));
      destroyed(again);
      assert.equal(cells.onion.introPoints, 0);
    });

    it('answers unknown keys and malformed introductions with their status, passing nothing on', () => {
      const service = introPoint();
      const a = circuit();
      send(a, RelayCommand.INTRODUCE1, introduce1(randomBytes(32)));
      assert.equal(
        decodeIntroduceAck(only(a, RelayCommand.INTRODUCE_ACK)),
        IntroduceAckStatus.UNKNOWN_SERVICE,
      );
      const b = circuit();
      send(b, RelayCommand.INTRODUCE1, randomBytes(100));
      assert.equal(decodeIntroduceAck(only(b, RelayCommand.INTRODUCE_ACK)), IntroduceAckStatus.MALFORMED);
      assert.deepEqual(back(service), []);
    });

    it('passes at most the rate the service asked for, and more as time passes', () => {
      const authKey = IdentityKey.generate();
      const service = introPoint(authKey, { rate: 1, burst: 2 });
      const statuses = () => {
        const c = circuit();
        send(c, RelayCommand.INTRODUCE1, introduce1(authKey.publicKey));
        return decodeIntroduceAck(only(c, RelayCommand.INTRODUCE_ACK));
      };
      assert.deepEqual([statuses(), statuses(), statuses()], [0, 0, IntroduceAckStatus.RATE_LIMITED]);
      assert.equal(back(service).length, 2);
      clock += 1000;
      assert.equal(statuses(), IntroduceAckStatus.SUCCESS);
      assert.equal(cells.onion.counts.introductionsRefused, 1);
    });

    it('keeps one circuit per key (a newer one replaces the older, which goes), and forgets a closed one', () => {
      const authKey = IdentityKey.generate();
      const old = introPoint(authKey);
      const newer = introPoint(authKey);
      destroyed(old, DestroyReason.FINISHED);
      const client = circuit();
      send(client, RelayCommand.INTRODUCE1, introduce1(authKey.publicKey));
      only(client, RelayCommand.INTRODUCE_ACK);
      only(newer, RelayCommand.INTRODUCE2);
      cells.cells(fromRelay, [
        { circId: newer.circId, command: CellCommand.DESTROY, body: encodeDestroy(DestroyReason.FINISHED) },
      ]);
      assert.equal(cells.onion.introPoints, 0);
      const late = circuit();
      send(late, RelayCommand.INTRODUCE1, introduce1(authKey.publicKey));
      assert.equal(
        decodeIntroduceAck(only(late, RelayCommand.INTRODUCE_ACK)),
        IntroduceAckStatus.UNKNOWN_SERVICE,
      );
    });

    it('an introduction circuit carries no stream, takes padding, and is never idle', () => {
      const service = introPoint();
      send(service, RelayCommand.DROP, Buffer.alloc(0));
      assert.deepEqual(back(service), []);
      clock += 3_600_000;
      cells.table.closeIdleCircuits(60_000);
      assert.deepEqual(back(service), []);
      send(service, RelayCommand.BEGIN, encodeBegin('example.org', 80));
      destroyed(service);
      assert.deepEqual(host.calls, []);
    });
  });

  describe('as a rendezvous point', () => {
    const cookie = () => randomBytes(32);

    /** A client waiting under `c`, and a service circuit that joined it. */
    function joined(c = cookie()): { client: Hop; service: Hop } {
      const client = circuit();
      send(client, RelayCommand.ESTABLISH_RENDEZVOUS, encodeEstablishRendezvous(c));
      only(client, RelayCommand.RENDEZVOUS_ESTABLISHED);
      const service = circuit();
      const handshake = { serviceKey: randomBytes(32), auth: randomBytes(32) };
      send(service, RelayCommand.RENDEZVOUS1, encodeRendezvous1(c, handshake));
      assert.deepEqual(decodeRendezvous2(only(client, RelayCommand.RENDEZVOUS2)), handshake);
      assert.deepEqual(back(service), [], 'the service hears nothing from the point itself');
      return { client, service };
    }

    it('joins the two circuits: cells past the point reach the other end, both ways, under the end-to-end layer', () => {
      const { client, service } = joined();
      assert.equal(cells.onion.pendingCookies, 0);
      const keys = { kf: randomBytes(32), kb: randomBytes(32), mf: randomBytes(32), mb: randomBytes(32) };
      const atClient = endToEndLayers(keys, 'client');
      const atService = endToEndLayers(keys, 'service');
      const carry = (
        from: Hop,
        to: Hop,
        sendLayer: typeof atClient.send,
        receive: typeof atClient.receive,
        text: string,
      ) => {
        const { body } = wrapForward(
          [from.crypto.forward, sendLayer],
          encodeRelayMessage(RelayCommand.DATA, 1, Buffer.from(text)),
        );
        cells.cells(from.link, [{ circId: from.circId, command: CellCommand.RELAY, body }]);
        const [out] = to.link.take(to.circId);
        assert.equal(out.command, CellCommand.RELAY);
        const peeled = to.crypto.backward.peel(out.body);
        assert.ok(!isOrigin(peeled), 'not sent by the point');
        const opened = receive.open(peeled, CellCommand.RELAY);
        assert.equal(opened.kind, 'mine');
        if (opened.kind === 'mine')
          assert.equal(decodeRelayMessage(opened.payload, FORWARD_MARKER_LEN).data.toString(), text);
      };
      for (let i = 0; i < 3; i++) {
        carry(client, service, atClient.send, atService.receive, `to the service ${i}`);
        carry(service, client, atService.send, atClient.receive, `to the client ${i}`);
      }
    });

    /** The end-to-end keys of one rendezvous, as each end holds them. */
    function ends() {
      const keys = { kf: randomBytes(32), kb: randomBytes(32), mf: randomBytes(32), mb: randomBytes(32) };
      return { atClient: endToEndLayers(keys, 'client'), atService: endToEndLayers(keys, 'service') };
    }

    /** `n` DATA cells from `from` through the point, sealed under `sendLayer`, as the link delivers them together. */
    function run(from: Hop, sendLayer: ForwardLayer, n: number, text: (i: number) => string): Cell[] {
      return Array.from({ length: n }, (_, i) => ({
        circId: from.circId,
        command: CellCommand.RELAY,
        body: wrapForward(
          [from.crypto.forward, sendLayer],
          encodeRelayMessage(RelayCommand.DATA, 1, Buffer.from(text(i))),
        ).body,
      }));
    }

    /**
     * What `to`'s end makes of what the point sent it, as a client's receive path does (all cells
     * peeled together, then opened end to end): the DATA texts in order, and the reason it was
     * destroyed for, if it was. A DESTROY from the point is kept as `destroy`.
     */
    function receive(
      to: Hop,
      layer: ForwardLayer,
    ): { texts: string[]; died: number | null; destroy: number | null } {
      const texts: string[] = [];
      let died: number | null = null;
      const sent = to.link.take(to.circId);
      const relayCells = sent.filter((s) => s.command === CellCommand.RELAY).map((s) => s.body);
      const receiver: CircuitReceiver = {
        get closed() {
          return died !== null;
        },
        hops: [{ relay: { nickname: 'point' } as ConsensusRelay, crypto: to.crypto }],
        endToEnd: layer,
        extended: () => assert.fail('no EXTENDED'),
        streamMessage: (command, _streamId, data) => {
          assert.equal(command, RelayCommand.DATA);
          texts.push(data.toString());
        },
        destroy: (reason) => {
          died ??= reason;
        },
      };
      if (relayCells.length > 0) receiveRelayCells(receiver, relayCells);
      const d = sent.find((s) => s.command === CellCommand.DESTROY);
      return { texts, died, destroy: d ? decodeDestroy(d.body).reason : null };
    }

    it('passes a run of cells into the other circuit in order, the same bytes as one at a time', () => {
      const { client, service } = joined();
      const { atClient, atService } = ends();
      // Runs of several lengths (one cell alone too), both ways, so each layer's seq runs on across them.
      let sent = 0;
      for (const n of [1, 7, 2, 64, 70, 1]) {
        const first = sent;
        cells.cells(
          client.link,
          run(client, atClient.send, n, (i) => `to the service ${first + i}`),
        );
        const got = receive(service, atService.receive);
        assert.deepEqual(got, {
          texts: Array.from({ length: n }, (_, i) => `to the service ${first + i}`),
          died: null,
          destroy: null,
        });
        cells.cells(
          service.link,
          run(service, atService.send, n, (i) => `to the client ${first + i}`),
        );
        assert.deepEqual(receive(client, atClient.receive).texts.length, n);
        sent += n;
      }
    });

    it('a cell changed before the point, in the middle of a run: the cells before it pass, and both circuits die (INTEGRITY)', () => {
      const { client, service } = joined();
      const { atClient, atService } = ends();
      const batch = run(client, atClient.send, 8, (i) => `cell ${i}`);
      batch[4].body[100] ^= 1;
      cells.cells(client.link, batch);
      assert.deepEqual(back(client), [{ destroy: DestroyReason.INTEGRITY }]);
      assert.deepEqual(receive(service, atService.receive), {
        texts: ['cell 0', 'cell 1', 'cell 2', 'cell 3'],
        died: null,
        destroy: DestroyReason.DESTROYED,
      });
    });

    it('a cell changed at the point, in the middle of a run, is caught by the far end (INTEGRITY)', () => {
      const { client, service } = joined();
      const { atClient, atService } = ends();
      let k = 0;
      host.changeOpened = (opened) => {
        if (k++ === 4 && opened.kind === 'forward') opened.body[100] ^= 1;
      };
      cells.cells(
        client.link,
        run(client, atClient.send, 8, (i) => `cell ${i}`),
      );
      host.changeOpened = null;
      assert.deepEqual(receive(service, atService.receive), {
        texts: ['cell 0', 'cell 1', 'cell 2', 'cell 3'],
        died: DestroyReason.INTEGRITY,
        destroy: null,
      });
    });

    it('tears down the other half when either goes, and destroys both on a message the point recognises', () => {
      const a = joined();
      cells.cells(fromRelay, [
        {
          circId: a.client.circId,
          command: CellCommand.DESTROY,
          body: encodeDestroy(DestroyReason.FINISHED),
        },
      ]);
      destroyed(a.service, DestroyReason.DESTROYED);
      assert.deepEqual(back(a.client), []);
      const b = joined();
      send(b.service, RelayCommand.BEGIN, encodeBegin('example.org', 80));
      destroyed(b.service);
      destroyed(b.client, DestroyReason.DESTROYED);
      const c = joined();
      const { body } = wrapForward(
        [
          c.client.crypto.forward,
          endToEndLayers(
            { kf: randomBytes(32), kb: randomBytes(32), mf: randomBytes(32), mb: randomBytes(32) },
            'client',
          ).send,
        ],
        encodeRelayMessage(RelayCommand.DATA, 1, Buffer.from('x')),
        CellCommand.RELAY_EARLY,
      );
      cells.cells(fromRelay, [{ circId: c.client.circId, command: CellCommand.RELAY_EARLY, body }]);
      destroyed(c.client);
      destroyed(c.service, DestroyReason.DESTROYED);
      assert.deepEqual(host.calls, []);
    });

    it('refuses a cookie in use and an unknown one; a circuit waits for one rendezvous at most', () => {
      const c = cookie();
      const client = circuit();
      send(client, RelayCommand.ESTABLISH_RENDEZVOUS, encodeEstablishRendezvous(c));
      only(client, RelayCommand.RENDEZVOUS_ESTABLISHED);
      const thief = circuit();
      send(thief, RelayCommand.ESTABLISH_RENDEZVOUS, encodeEstablishRendezvous(c));
      destroyed(thief);
      send(client, RelayCommand.ESTABLISH_RENDEZVOUS, encodeEstablishRendezvous(cookie()));
      destroyed(client);
      assert.equal(cells.onion.pendingCookies, 0, 'its cookie went with the circuit');
      const service = circuit();
      send(
        service,
        RelayCommand.RENDEZVOUS1,
        encodeRendezvous1(c, { serviceKey: randomBytes(32), auth: randomBytes(32) }),
      );
      destroyed(service);
    });

    it('bounds the cookies waiting (RESOURCELIMIT) and destroys a circuit whose cookie waited too long (TIMEOUT)', () => {
      setup({ rendezvousCookies: 2, rendezvousCookieMs: 60_000 });
      const waiting = [circuit(), circuit()];
      for (const w of waiting) {
        send(w, RelayCommand.ESTABLISH_RENDEZVOUS, encodeEstablishRendezvous(cookie()));
        only(w, RelayCommand.RENDEZVOUS_ESTABLISHED);
      }
      const third = circuit();
      send(third, RelayCommand.ESTABLISH_RENDEZVOUS, encodeEstablishRendezvous(cookie()));
      destroyed(third, DestroyReason.RESOURCELIMIT);
      clock += 60_000;
      cells.onion.sweep();
      for (const w of waiting) destroyed(w, DestroyReason.TIMEOUT);
      assert.equal(cells.onion.pendingCookies, 0);
    });

    it('a RENDEZVOUS1 after the cookie expired finds nothing', () => {
      setup({ rendezvousCookieMs: 60_000 });
      const c = cookie();
      const client = circuit();
      send(client, RelayCommand.ESTABLISH_RENDEZVOUS, encodeEstablishRendezvous(c));
      only(client, RelayCommand.RENDEZVOUS_ESTABLISHED);
      clock += 60_000;
      const service = circuit();
      send(
        service,
        RelayCommand.RENDEZVOUS1,
        encodeRendezvous1(c, { serviceKey: randomBytes(32), auth: randomBytes(32) }),
      );
      destroyed(service);
      assert.deepEqual(back(client), []);
    });
  });
});
