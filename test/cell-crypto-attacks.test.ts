// Attacks on the cell crypto by relays (and a client) built for the test: tagging through the cell
// command, marking backward cells and undoing the mark past an honest relay, forging circuit SENDMEs
// for known content, and links that break the framing or speak the old link protocol.
import assert from 'node:assert/strict';
import * as netmod from 'node:net';
import { text } from 'node:stream/consumers';
import { after, before, test } from 'node:test';
import { BackwardLayer, isOrigin } from '../src/crypto/backward-layer.js';
import { circuitHopCrypto } from '../src/crypto/forward-onion.js';
import { X25519Key } from '../src/crypto/keys.js';
import { NoiseHandshake } from '../src/crypto/noise.js';
import { streamGet } from '../src/net/http-fetch.js';
import { connectLink, LinkListener } from '../src/net/link.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeDestroy } from '../src/wire/cell-bodies.js';
import {
  CELL_BODY_LEN,
  CellCommand,
  DestroyReason,
  EndReason,
  RELAY_DATA_MAX,
  RELAY_HEADER_LEN,
  RelayCommand,
} from '../src/wire/constants.js';
import { encodeFrameLength } from '../src/wire/frame-decoder.js';
import { writeRelayBody } from '../src/wire/relay-cell.js';
import { decodeEnd, encodeBegin, encodeCircuitSendme } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { type RawCircuit, rawClient } from './helpers/raw-circuit.js';
import { createHop, rawLink } from './helpers/raw-client.js';
import { waitFor } from './helpers/wait.js';
import { makeFiles, startHttpServer, type WebServer } from './helpers/web.js';

let net: InProcessNetwork;
let web: WebServer;
const files = makeFiles();

/** What the hostile relays do, switched on by each test. */
const hostile = {
  /** The entry forwards these (0-based) forward cells of a circuit as RELAY_EARLY: a bit pattern. */
  earlyMarks: null as Set<number> | null,
  forwardSeen: 0,
  /** The exit XORs `pattern` into the cells it sends; the entry XORs it back (honest middle between). */
  xorBack: false,
  marked: 0,
  unmarked: 0,
};
/** What the exit read: relay messages that came in a RELAY_EARLY cell. */
const exitSaw = { early: 0 };
const PATTERN = Buffer.from('a1b2c3d4e5f60718', 'hex');
const AT = 300;

function xorPattern(body: Buffer): void {
  for (let i = 0; i < PATTERN.length; i++) body[AT + i] ^= PATTERN[i];
}

before(async () => {
  web = await startHttpServer(files);
  net = await startNetwork({
    relays: 3,
    exits: 1,
    relayOptions: (i) => {
      if (i === 0) {
        // The exit: reads the pattern the entry writes (if any reaches it), marks what it sends.
        return {
          inspect: (body, dir, from) => {
            if (dir === 'forward' && from.command === CellCommand.RELAY_EARLY) exitSaw.early++;
            if (dir === 'backward' && from.own && hostile.xorBack) {
              xorPattern(body);
              hostile.marked++;
            }
          },
        };
      }
      if (i === 1) {
        // The entry: writes the pattern into the cell commands, and undoes the exit's mark.
        return {
          inspect: (body, dir, from) => {
            if (dir === 'forward' && hostile.earlyMarks) {
              if (hostile.earlyMarks.has(hostile.forwardSeen++)) from.command = CellCommand.RELAY_EARLY;
            }
            if (dir === 'backward' && hostile.xorBack) {
              xorPattern(body);
              hostile.unmarked++;
            }
          },
        };
      }
      return {};
    },
  });
});
after(async () => {
  await net?.stop();
  await web?.close();
});

/** entry (hostile) -> middle (honest) -> exit (hostile). */
function hostilePath() {
  const c = net.client.currentConsensus!;
  const byId = (id: string) => c.relays.find((r) => r.id === id)!;
  const [exit, entry, middle] = net.relays;
  return [byId(entry.idHex), byId(middle.idHex), byId(exit.idHex)];
}

async function download(circ: Awaited<ReturnType<typeof net.client.buildCircuit>>, path: string) {
  let got = 0;
  const res = await streamGet(`${web.url}${path}`, { connect: (h, p) => circ.openStream(h, p) }).catch(
    (e: Error) => e,
  );
  if (res instanceof Error) return { error: res, got };
  res.on('data', (c: Buffer) => {
    got += c.length;
  });
  const body = await text(res).catch((e: Error) => e);
  return body instanceof Error ? { error: body, got } : { error: null, got };
}

test('an entry that rewrites forward cells to RELAY_EARLY is stopped by the middle; the exit never reads a mark', async () => {
  const [, , middle] = net.relays;
  const circ = await net.client.buildCircuit({ path: hostilePath() });
  const before = middle.stats.integrityFailures;
  exitSaw.early = 0;
  // 8 marks in the first 64 forward cells after the build: a 32-bit-ish identifier for the exit.
  hostile.forwardSeen = 0;
  hostile.earlyMarks = new Set([1, 4, 9, 15, 22, 30, 41, 57]);
  const r = await download(circ, '/random1m');
  hostile.earlyMarks = null;
  assert.ok(r.error, 'the download failed');
  assert.ok(hostile.forwardSeen >= 2, 'the entry rewrote a cell');
  assert.equal(circ.closed, true);
  assert.equal(middle.stats.integrityFailures, before + 1, 'the middle caught the rewritten command');
  assert.equal(exitSaw.early, 0, 'no cell reached the exit as RELAY_EARLY');
});

test('a RELAY_EARLY cell that carries anything but EXTEND destroys the circuit at the hop that reads it', async () => {
  const relay = net.relays[0];
  const raw = await rawLink(relay);
  const circ = await createHop(raw, relay, 0x80000021);
  // Correctly tagged for RELAY_EARLY (the command is in the tag), but a BEGIN: a relay reads it as a mark.
  const peersBefore = web.peers.length;
  circ.send(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', web.port), CellCommand.RELAY_EARLY);
  assert.equal(await circ.destroyed(), DestroyReason.PROTOCOL, 'the relay destroyed the circuit');
  assert.equal(web.peers.length, peersBefore, 'the BEGIN was not acted on');
  raw.close();
});

test('an exit that marks backward cells and an entry that unmarks them past an honest middle: the client gets an error, never the data', async () => {
  const circ = await net.client.buildCircuit({ path: hostilePath() });
  hostile.marked = 0;
  hostile.unmarked = 0;
  let got = -1;
  const res = await streamGet(`${web.url}/random1m`, {
    connect: async (h, p) => {
      const s = await circ.openStream(h, p);
      hostile.xorBack = true; // every cell from now on
      return s;
    },
  }).catch((e: Error) => e);
  let error: Error | null = res instanceof Error ? res : null;
  if (!(res instanceof Error)) {
    got = 0;
    res.on('data', (c: Buffer) => {
      got += c.length;
    });
    error = await text(res).then(
      () => null,
      (e: Error) => e,
    );
  }
  hostile.xorBack = false;
  assert.ok(hostile.marked > 0 && hostile.unmarked > 0, 'both colluders acted');
  assert.ok(error, 'the transfer failed');
  assert.ok(got <= 0, `no byte of the response was delivered (got ${got})`);
  assert.equal(circ.closed, true);
  assert.match(circ.closeReason, /integrity/i);
});

test('a client that knows the content cannot forge the circuit SENDME for a cell it has not read', async () => {
  const [exit, entry] = net.relays; // a stream needs a hop before the exit (§4.2)
  const client = await rawClient(entry);
  const circ = await client.circuit(0x80000031, [entry, exit]);
  const keys = circ.keys[1];
  circ.send(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', web.port));
  circ.send(
    RelayCommand.DATA,
    1,
    Buffer.from('GET /random1m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
  );
  // The exit sends up to 128 DATA cells before it needs a SENDME; the 64th is the one to acknowledge.
  const content: Buffer[] = [];
  let dataCells = 0;
  let before64 = 0;
  while (dataCells < 63) {
    const got = circ.peel(await circ.nextCell());
    assert.equal(got.hop, 1, 'every cell came from the exit');
    before64++;
    if (got.command === RelayCommand.DATA) {
      dataCells++;
      content.push(Buffer.from(got.data));
    }
  }
  const cell64 = await circ.nextCell(); // never peeled before the forgery
  // What the response is, from what came so far and the file the forger knows.
  const sofar = Buffer.concat(content);
  const headerEnd = sofar.indexOf('\r\n\r\n') + 4;
  const fileOffset = sofar.length - headerEnd;
  const file = files['/random1m'];
  const guesses = [RELAY_DATA_MAX, RELAY_DATA_MAX - 16].map((n) => {
    const b = Buffer.alloc(CELL_BODY_LEN);
    writeRelayBody(b, RelayCommand.DATA, 1, file.subarray(fileOffset, fileOffset + n));
    return b;
  });
  const zeroPad = (buf: Buffer, offset: number, size: number) => {
    buf.fill(0, offset, offset + size);
  };
  // The forger holds every key the exit has: it brings a copy of the exit's layer to where it stood
  // for cell 64 and seals each guess as the exit would (a full cell; one with 16 bytes of padding).
  const forgedTags = guesses.map((g) => {
    const f = new BackwardLayer(keys.kb, keys.mb, keys.kt);
    for (let i = 0; i < before64; i++) f.add(Buffer.alloc(CELL_BODY_LEN));
    return f.originate(g, zeroPad).tags[0];
  });
  // The real tag, which only reading cell 64 gives.
  const real = circ.peel(cell64);
  assert.equal(real.hop, 1);
  for (const t of forgedTags) assert.notDeepEqual(t, real.tag, 'a forged tag matches the real one');
  // The real cell 64 leaves room for padding the forger could not predict.
  assert.ok(real.data.length <= RELAY_DATA_MAX - 16);
  assert.ok(RELAY_HEADER_LEN + real.data.length + 16 <= CELL_BODY_LEN);
  // The exit refuses the forged SENDME: it destroys the circuit (the entry passes that on as DESTROYED).
  assert.ok(!circ.queued.some((c) => c.command === CellCommand.DESTROY), 'the circuit was alive before');
  circ.send(RelayCommand.SENDME, 0, encodeCircuitSendme({ tag: forgedTags[0], window: 1024 }));
  const destroy = await untilDestroy(circ);
  assert.equal(decodeDestroy(destroy.body).reason, DestroyReason.DESTROYED);
  client.close();
});

/** The DESTROY that ends `circ`, past whatever cells were still in flight. */
async function untilDestroy(circ: RawCircuit): Promise<Cell> {
  for (;;) {
    const c = await circ.nextCell();
    if (c.command === CellCommand.DESTROY) return c;
  }
}

test('an exit refuses a stream on a one-hop circuit, and the entry of a longer one opens none', async () => {
  const [exit, entry] = net.relays;
  const peersBefore = web.peers.length;
  // One hop: the exit is the entry. Its answer is END (protocol), and no connection is made.
  const alone = await rawClient(exit);
  const one = await alone.circuit(0x80000041, [exit]);
  one.send(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', web.port));
  const end = one.peel(await one.nextCell());
  assert.deepEqual([end.hop, end.command], [0, RelayCommand.END]);
  assert.equal(decodeEnd(end.data).reason, EndReason.TORPROTOCOL);
  // DATA for a stream the entry never opened destroys the circuit.
  one.send(RelayCommand.DATA, 1, Buffer.from('GET / HTTP/1.0\r\n\r\n'));
  assert.equal(decodeDestroy((await untilDestroy(one)).body).reason, DestroyReason.PROTOCOL);
  alone.close();
  // Two hops: a BEGIN addressed to the entry is refused the same way; one to the exit connects.
  const client = await rawClient(entry);
  const two = await client.circuit(0x80000042, [entry, exit]);
  two.send(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', web.port), { hop: 0 });
  const refused = two.peel(await two.nextCell());
  assert.deepEqual([refused.hop, refused.command], [0, RelayCommand.END]);
  assert.equal(web.peers.length, peersBefore, 'no connection reached the web server');
  two.send(RelayCommand.BEGIN, 2, encodeBegin('127.0.0.1', web.port));
  const connected = two.peel(await two.nextCell());
  assert.deepEqual([connected.hop, connected.command], [1, RelayCommand.CONNECTED]);
  client.close();
});

test('a relay keys as the entry exactly when the circuit came over a client link: a later hop cannot be made plain unseen', async () => {
  const [exit, entry, middle] = net.relays;
  // A hostile entry that reached the middle over a client link (not as the relay it is) makes the
  // middle key as an entry: its cells then carry a plain layer where the real client removes a wide one.
  const hidden = await rawClient(middle);
  const asEntry = await hidden.circuit(0x80000051, [middle]);
  asEntry.send(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', web.port));
  const cell = await asEntry.nextCell();
  const asTheClientExpects = circuitHopCrypto(asEntry.keys[0], { firstHop: false });
  assert.equal(isOrigin(asTheClientExpects.backward.peel(cell.body)), false, 'no sender under a wide layer');
  assert.equal(asEntry.peel(cell).hop, 0, 'the middle sent it under a plain layer');
  hidden.close();
  // Over a relay's link (through the entry) the same middle keys as a later hop: wide.
  const client = await rawClient(entry);
  const through = await client.circuit(0x80000052, [entry, middle, exit]);
  through.send(RelayCommand.BEGIN, 1, encodeBegin('127.0.0.1', web.port), { hop: 1 });
  const fromMiddle = through.peel(await through.nextCell());
  assert.deepEqual([fromMiddle.hop, fromMiddle.command], [1, RelayCommand.END]);
  client.close();
});

test('a frame with no cells closes the link', async () => {
  const relay = net.relays[2];
  // A client doing the link handshake by hand, so it can seal a frame the link code would never send.
  const hs = new NoiseHandshake({
    initiator: true,
    staticKey: X25519Key.generate(),
    prologue: Buffer.from('allium-link-v2'),
  });
  const sock = netmod.connect({ host: '127.0.0.1', port: relay.port });
  sock.on('error', () => {});
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  const write = (m: Buffer) => sock.write(Buffer.concat([encodeFrameLength(m.length), m]));
  let buf = Buffer.alloc(0);
  const message2 = new Promise<Buffer>((resolve) => {
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.off('data', onData);
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    };
    sock.on('data', onData);
  });
  write(hs.writeMessage(Buffer.from([0, 2])));
  hs.readMessage(await message2);
  write(hs.writeMessage(Buffer.alloc(0)));
  const { send } = hs.split();
  // A good frame first (one PADDING cell), then one that carries no cell at all.
  write(send.encrypt(Buffer.alloc(4096)));
  write(send.encrypt(Buffer.alloc(0)));
  // Within the link's 15-second liveness limit, so only the empty frame can have closed it.
  const wasClosed = await Promise.race([
    closed.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 10_000)),
  ]);
  assert.ok(wasClosed, 'the relay closed the link');
  sock.destroy();
});

test('a peer of the old link protocol is refused with an error that names the versions', async () => {
  const errors: Error[] = [];
  const listener = await LinkListener.listen({
    host: '127.0.0.1',
    port: 0,
    me: { identity: null },
    onLink: () => assert.fail('an old peer must not get a link'),
    onHandshakeError: (e) => errors.push(e),
  });
  // An initiator of a release before 0.5.0: message 1 is the bare key, with an empty payload.
  const old = new NoiseHandshake({
    initiator: true,
    staticKey: X25519Key.generate(),
    prologue: Buffer.from('allium-link-v1'),
  });
  const m1 = old.writeMessage(Buffer.alloc(0));
  const sock = netmod.connect({ host: '127.0.0.1', port: listener.port });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const closedByPeer = new Promise<void>((r) => sock.once('close', () => r()));
  sock.on('error', () => {});
  sock.write(Buffer.concat([encodeFrameLength(m1.length), m1]));
  await closedByPeer;
  await waitFor('the listener reports the refused handshake', () => errors.length > 0);
  assert.equal((errors[0] as Error & { code: string }).code, 'ALLIUM_LINK_VERSION');
  assert.match(errors[0].message, /link protocol 1 .*before 0\.5\.0.* 2 /);
  await listener.close();

  // And this release's initiator, against a responder of the old release (which closes at once on a
  // first message that is not 32 bytes long), says what is likely wrong.
  const oldRelay = netmod.createServer((s) => {
    s.once('data', (d) => {
      if (d.readUInt16BE(0) !== 32) s.destroy();
    });
  });
  await new Promise<void>((r) => oldRelay.listen(0, '127.0.0.1', () => r()));
  const port = (oldRelay.address() as netmod.AddressInfo).port;
  await assert.rejects(
    connectLink({ host: '127.0.0.1', port, relayId: Buffer.alloc(32), me: { identity: null } }),
    (e: Error & { code: string }) => e.code === 'ALLIUM_LINK_CLOSED' && /before 0\.5\.0/.test(e.message),
  );
  await new Promise((r) => oldRelay.close(r));
});
