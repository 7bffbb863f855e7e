// Fuzz targets for every decoder of docs/protocol.md (§1 links, §2 cells, §3 handshakes, §4 relay
// messages, §6 directory documents, §7 exit policy, §8 onion services) and the SOCKS5 step machine. Each target takes
// random and mutated-valid inputs and fails when the decoder throws anything but its typed error,
// returns something outside its caps, or accepts a changed authenticated message.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DescriptorStore } from '../../src/core/descriptor-store.js';
import {
  DocumentError,
  openConsensusJson,
  openDescriptor,
  openWithdraw,
  signConsensus,
  signDescriptor,
  signWithdraw,
} from '../../src/core/documents.js';
import { ExitPolicy, ExitPolicyError, parseExitPolicy } from '../../src/core/exit-policy.js';
import { CryptoError } from '../../src/crypto/errors.js';
import {
  FORWARD_MARKER_LEN,
  ForwardLayer,
  wrapForward,
  wrapForwardMany,
} from '../../src/crypto/forward-onion.js';
import { circuitBinding, signEstablishIntro, verifyEstablishIntro } from '../../src/crypto/intro-auth.js';
import { blindSecret } from '../../src/crypto/key-blinding.js';
import { IdentityKey, X25519Key } from '../../src/crypto/keys.js';
import { linkBoundConfirmed, linkBoundHop } from '../../src/crypto/link-bound-hop.js';
import { makeLinkCert, verifyLinkCertFor } from '../../src/crypto/link-cert.js';
import { NoiseHandshake } from '../../src/crypto/noise.js';
import { ntorClientFinish, ntorClientStart, ntorServerRespond } from '../../src/crypto/ntor.js';
import { onionAddressOf, parseOnionAddress } from '../../src/crypto/onion-address.js';
import { sealDescriptor } from '../../src/crypto/onion-descriptor.js';
import { isolationFromAuth, parseAuthority } from '../../src/net/http-proxy-server.js';
import { formatIp, parseIp } from '../../src/wire/bytes.js';
import { decodeCell, decodeFrameCells, encodeCell } from '../../src/wire/cell.js';
import {
  decodeCreate,
  decodeCreated,
  decodeDestroy,
  encodeCreate,
  encodeCreated,
  encodeDestroy,
} from '../../src/wire/cell-bodies.js';
import {
  CELL_BODY_LEN,
  CELL_LEN,
  CellCommand,
  MAX_CELLS_PER_FRAME,
  MAX_FRAME_LEN,
  RELAY_DATA_MAX,
} from '../../src/wire/constants.js';
import {
  type Consensus,
  DirectoryDocError,
  parseConsensusBody,
  parseDescriptorBody,
  parseEnvelope,
  parseWithdrawBody,
  type RelayDescriptor,
  type SignedEnvelope,
  serializeConsensus,
  serializeDescriptor,
  serializeWithdraw,
} from '../../src/wire/directory-docs.js';
import { WireError } from '../../src/wire/errors.js';
import { encodeFrameLength, FrameDecoder } from '../../src/wire/frame-decoder.js';
import { ONION_DESCRIPTOR_LEN } from '../../src/wire/onion-descriptor.js';
import { OnionError } from '../../src/wire/onion-errors.js';
import {
  DescriptorStoreStatus,
  decodeDescriptorFetch,
  decodeDescriptorFetched,
  decodeDescriptorStore,
  decodeDescriptorStored,
  decodeEstablishIntro,
  decodeEstablishRendezvous,
  decodeIntroduce,
  decodeIntroduceAck,
  decodeIntroducePlaintext,
  decodeRendezvous1,
  decodeRendezvous2,
  encodeDescriptorFetch,
  encodeDescriptorFetched,
  encodeDescriptorStored,
  encodeEstablishIntro,
  encodeEstablishRendezvous,
  encodeIntroduce,
  encodeIntroduceAck,
  encodeIntroducePlaintext,
  encodeRendezvous1,
  encodeRendezvous2,
} from '../../src/wire/onion-messages.js';
import {
  buildRelayBody,
  decodeRelayMessage,
  encodeRelayMessage,
  readRelayHeader,
  relayData,
} from '../../src/wire/relay-cell.js';
import {
  decodeBegin,
  decodeCircuitSendme,
  decodeConnected,
  decodeEnd,
  decodeExtend,
  decodeExtended,
  decodeTruncated,
  encodeBegin,
  encodeCircuitSendme,
  encodeConnected,
  encodeEnd,
  encodeExtend,
  encodeExtended,
  encodeTruncated,
  isValidHost,
} from '../../src/wire/relay-messages.js';
import { Socks5Handshake, type Socks5Step } from '../../src/wire/socks5.js';
import { applyMutation, type Mutation, mutated, mutatedText, randomBytes, sparseBytes } from './mutate.js';

type ErrorClass = abstract new (...args: never[]) => Error;

export interface FuzzTarget {
  name: string;
  /** Built on first use: some seeds need keys, and a worker runs only its own target. */
  arbitrary(): fc.Arbitrary<unknown>;
  /** Throws (an assertion) when the decoder misbehaves on `input`. */
  check(input: unknown): void;
}

/** Runs `fn`; a throw of one of `allowed` is the decoder refusing input, anything else is a bug. */
export function refusesOnlyWith<T>(
  allowed: ErrorClass[],
  fn: () => T,
): { ok: true; value: T } | { ok: false; error: Error } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (allowed.some((c) => err instanceof c)) return { ok: false, error: err as Error };
    const e = err as Error;
    assert.fail(
      `threw ${e?.constructor?.name ?? typeof err} (not ${allowed.map((c) => c.name).join('/')}): ${e?.stack ?? String(err)}`,
    );
  }
}

function lazy<T>(make: () => T): () => T {
  let v: T | undefined;
  return () => {
    v ??= make();
    return v;
  };
}

const mutationList: fc.Arbitrary<Mutation[]> = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
    fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  ),
  { minLength: 1, maxLength: 3 },
);

/** Mutations to apply to a valid input, or none (the valid input itself). */
const mutationsOrNone: fc.Arbitrary<Mutation[]> = fc.oneof(mutationList, fc.constant([] as Mutation[]));

/**
 * For a handshake read on either side: which side, mutations of the valid message, `junkLen` random
 * bytes, and whether to send the junk instead.
 */
const eitherSide = (junkLen: number) =>
  fc.tuple(fc.boolean(), mutationsOrNone, randomBytes(junkLen), fc.boolean());

const ensureFull = (b: Buffer) =>
  b.length >= CELL_BODY_LEN
    ? b.subarray(0, CELL_BODY_LEN)
    : Buffer.concat([b, Buffer.alloc(CELL_BODY_LEN - b.length)]);

// ---- keys and valid documents shared by the seeds ----

const keys = lazy(() => {
  const identity = IdentityKey.generate();
  const onion = X25519Key.generate();
  const link = X25519Key.generate();
  const clientStatic = X25519Key.generate();
  const directory = IdentityKey.generate();
  return {
    identity,
    onion,
    link,
    clientStatic,
    directory,
    relayId: identity.id,
    cert: makeLinkCert(identity, link.publicKey),
  };
});

function descriptorFor(
  identity: IdentityKey,
  onion: X25519Key,
  over: Partial<RelayDescriptor> = {},
): RelayDescriptor {
  return {
    nickname: 'fuzz_relay-1',
    id: identity.id.toString('hex'),
    identityKey: identity.publicKey.toString('base64'),
    onionKey: onion.publicKey.toString('base64'),
    address: '192.0.2.7',
    port: 9001,
    exitPolicy: ['reject 10.0.0.0/8:*', 'accept *:80', 'accept [2001:db8::]/32:443-444', 'reject *:*'],
    bandwidth: 1_000_000,
    version: 'allium/0.5.0',
    published: 1_700_000_000_000,
    ...over,
  };
}

const docs = lazy(() => {
  const k = keys();
  const descriptor = descriptorFor(k.identity, k.onion, { family: ['ab'.repeat(32), 'cd'.repeat(32)] });
  const relays = [0, 1, 2].map((i) => {
    const id = IdentityKey.generate();
    return {
      ...descriptorFor(id, X25519Key.generate(), {
        nickname: `r${i}`,
        port: 9000 + i,
        address: i === 2 ? '2001:db8::7' : `198.51.100.${i + 1}`,
      }),
      flags: i === 0 ? ['Running', 'Exit'] : ['Running'],
    };
  });
  const consensus: Consensus = {
    network: 'allium',
    serial: 42,
    validAfter: 1_700_000_000_000,
    freshUntil: 1_700_000_060_000,
    validUntil: 1_700_010_800_000,
    directoryKey: k.directory.publicKey.toString('base64'),
    relays,
  };
  const withdraw = { id: k.identity.id.toString('hex'), published: 1_700_000_000_001 };
  return {
    descriptor,
    consensus,
    withdraw,
    descriptorEnv: signDescriptor(k.identity, descriptor),
    consensusEnv: signConsensus(k.directory, consensus),
    withdrawEnv: signWithdraw(k.identity, withdraw),
  };
});

// ---- §2.1 cells and frames of cells ----

const cells: FuzzTarget = {
  name: 'cells (decodeCell, decodeFrameCells)',
  arbitrary: () =>
    fc.tuple(
      fc.oneof(
        fc
          .constantFrom(
            0,
            1,
            CELL_LEN - 1,
            CELL_LEN,
            CELL_LEN + 1,
            2 * CELL_LEN,
            MAX_CELLS_PER_FRAME * CELL_LEN,
            (MAX_CELLS_PER_FRAME + 1) * CELL_LEN,
          )
          .chain(sparseBytes),
        fc.integer({ min: 0, max: 17 * CELL_LEN }).chain(sparseBytes),
        mutated(
          fc
            .tuple(fc.nat(), fc.nat(255), randomBytes(64))
            .map(([id, cmd, body]) => encodeCell(id >>> 0, cmd, body)),
        ),
      ),
      fc.integer({ min: -2, max: 17 * CELL_LEN }),
    ),
  check(input) {
    const [buf, offset] = input as [Buffer, number];
    const r = refusesOnlyWith([WireError], () => decodeFrameCells(buf));
    if (r.ok) {
      assert.ok(r.value.length >= 1 && r.value.length <= MAX_CELLS_PER_FRAME, 'a frame holds 1..15 cells');
      for (const c of r.value) assert.equal(c.body.length, CELL_BODY_LEN);
    }
    const one = refusesOnlyWith([WireError], () => decodeCell(buf, offset));
    if (one.ok) assert.equal(one.value.body.length, CELL_BODY_LEN);
  },
};

// ---- §2.1 CREATE / CREATED / DESTROY bodies ----

const cellBodies: FuzzTarget = {
  name: 'CREATE/CREATED/DESTROY bodies',
  arbitrary: () => {
    const k = keys();
    const { onionskin } = ntorClientStart(k.relayId, k.onion.publicKey);
    const reply = ntorServerRespond(onionskin, { relayId: k.relayId, onionKey: k.onion }).reply;
    const seeds = fc.constantFrom(
      encodeCreate(2, onionskin),
      encodeCreated(reply),
      encodeDestroy(1),
      encodeCreate(0xffff, Buffer.alloc(0)),
    );
    return fc.tuple(fc.oneof(mutated(seeds), randomBytes(80), sparseBytes(CELL_BODY_LEN)), fc.boolean());
  },
  check(input) {
    const [raw, pad] = input as [Buffer, boolean];
    const body = pad ? ensureFull(raw) : raw;
    const c = refusesOnlyWith([WireError], () => decodeCreate(body));
    if (c.ok) assert.ok(c.value.hdata.length <= Math.max(0, body.length - 4));
    const d = refusesOnlyWith([WireError], () => decodeCreated(body));
    if (d.ok) assert.ok(d.value.hdata.length <= Math.max(0, body.length - 2));
    const x = refusesOnlyWith([WireError], () => decodeDestroy(body));
    if (x.ok) assert.ok(x.value.reason >= 0 && x.value.reason <= 255);
  },
};

// ---- §3.3 relay cell header, §4 relay message bodies ----

const relayDecoders: Array<(d: Buffer) => unknown> = [
  decodeBegin,
  decodeEnd,
  decodeConnected,
  decodeCircuitSendme,
  decodeExtend,
  decodeExtended,
  decodeTruncated,
];

const relayMessages: FuzzTarget = {
  name: 'relay messages (header, BEGIN, END, CONNECTED, SENDME, EXTEND, EXTENDED, TRUNCATED)',
  arbitrary: () => {
    const k = keys();
    const seeds = fc.constantFrom(
      encodeBegin('example.com', 443),
      encodeBegin('2001:db8::1', 80),
      encodeBegin('192.0.2.1', 8080),
      encodeBegin('example.org', 443, 1),
      encodeEnd(6),
      encodeConnected('203.0.113.9'),
      encodeConnected('::ffff:192.0.2.1'),
      encodeCircuitSendme({ tag: Buffer.alloc(16, 7), window: 256 }),
      encodeExtend({
        address: '198.51.100.1',
        port: 9001,
        relayId: k.relayId,
        htype: 2,
        hdata: Buffer.alloc(96, 3),
      }),
      encodeExtend({
        address: '2001:db8::2',
        port: 443,
        relayId: k.relayId,
        htype: 2,
        hdata: Buffer.alloc(96, 4),
      }),
      encodeExtended(Buffer.alloc(64, 5)),
      encodeTruncated(7),
    );
    const data = fc.oneof(mutated(seeds), randomBytes(120));
    return fc.tuple(fc.nat(relayDecoders.length - 1), data, fc.nat(255), fc.nat(0xffff), fc.boolean());
  },
  check(input) {
    const [which, data, cmd, stream, asBody] = input as [number, Buffer, number, number, boolean];
    const decode = relayDecoders[which];
    const r = refusesOnlyWith([WireError], () => decode(data));
    if (r.ok && decode === decodeBegin) {
      const { host, port } = r.value as { host: string; port: number };
      assert.ok(isValidHost(host), `BEGIN accepted an invalid host ${JSON.stringify(host)}`);
      assert.ok(port >= 1 && port <= 65535);
    }
    if (r.ok && decode === decodeExtend) {
      const e = r.value as { address: string; port: number; relayId: Buffer; hdata: Buffer };
      assert.ok(parseIp(e.address), 'EXTEND address must be an IP literal');
      assert.equal(e.relayId.length, 32);
      assert.ok(e.hdata.length <= RELAY_DATA_MAX);
    }
    // The same bytes as a whole relay cell body: the header reader must never trust `length`.
    if (asBody) {
      const body = data.length <= RELAY_DATA_MAX ? buildRelayBody(cmd, stream, data) : ensureFull(data);
      if (data.length > RELAY_DATA_MAX) body.writeUInt16BE(stream, 21);
      const h = refusesOnlyWith([WireError], () => readRelayHeader(body));
      assert.ok(h.ok, 'a full-size body always has a header');
      const d = refusesOnlyWith([WireError], () => relayData(body));
      if (d.ok) assert.ok(d.value.length <= RELAY_DATA_MAX);
    } else {
      const h = refusesOnlyWith([WireError], () => readRelayHeader(data));
      if (h.ok) assert.equal(data.length, CELL_BODY_LEN);
    }
  },
};

// ---- §3.1 ntor: the onionskin a relay reads, the reply a client reads ----

const forwardCells: FuzzTarget = {
  name: 'forward relay cells (ForwardLayer.open, decodeRelayMessage)',
  arbitrary: () =>
    fc.tuple(mutationsOrNone, randomBytes(CELL_BODY_LEN), fc.boolean(), fc.uint8Array({ maxLength: 300 })),
  check(input) {
    const [ms, junk, useJunk, data] = input as [Mutation[], Buffer, boolean, Uint8Array];
    const kf = Buffer.alloc(32, 1);
    const mf = Buffer.alloc(32, 2);
    const message = encodeRelayMessage(2, 1, Buffer.from(data));
    const { body } = wrapForward([new ForwardLayer(kf, mf)], message);
    const cell = useJunk ? junk : ms.reduce(applyMutation, body);
    const r = refusesOnlyWith([CryptoError], () => new ForwardLayer(kf, mf).open(cell, CellCommand.RELAY));
    if (!r.ok) {
      assert.notEqual(cell.length, CELL_BODY_LEN, 'only a body of the wrong length is refused by throwing');
      return;
    }
    if (!cell.equals(body)) {
      assert.equal(r.value.kind, 'tampered', 'a changed forward cell must be caught');
      return;
    }
    const opened = r.value;
    assert.equal(opened.kind, 'mine');
    if (opened.kind !== 'mine') return;
    const m = refusesOnlyWith([WireError], () => decodeRelayMessage(opened.payload, FORWARD_MARKER_LEN));
    assert.ok(m.ok);
    if (m.ok) assert.deepEqual(m.value.data, Buffer.from(data));
  },
};

const forwardRuns: FuzzTarget = {
  name: 'forward relay cell runs (wrapForwardMany, ForwardLayer.openMany)',
  arbitrary: () =>
    fc.tuple(
      fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      mutationsOrNone,
    ),
  check(input) {
    const [datas, pick, ms] = input as [Uint8Array[], number, Mutation[]];
    const kf = Buffer.alloc(32, 3);
    const mf = Buffer.alloc(32, 4);
    const messages = datas.map((d) => encodeRelayMessage(2, 1, Buffer.from(d)));
    const { bodies } = wrapForwardMany([new ForwardLayer(kf, mf)], messages);
    const at = pick % bodies.length;
    const run = bodies.map((b, i) => (i === at ? ms.reduce(applyMutation, b) : b));
    const r = refusesOnlyWith([CryptoError], () =>
      new ForwardLayer(kf, mf).openMany(
        run,
        run.map(() => CellCommand.RELAY),
      ),
    );
    if (!r.ok) {
      assert.notEqual(
        run[at].length,
        CELL_BODY_LEN,
        'only a body of the wrong length is refused by throwing',
      );
      return;
    }
    const changed = !run[at].equals(bodies[at]);
    // Every cell before the changed one opens as it was sent; the changed one is caught; none after.
    assert.equal(r.value.length, changed ? at + 1 : bodies.length);
    r.value.forEach((opened, i) => {
      if (changed && i === at) {
        assert.equal(opened.kind, 'tampered', 'a changed forward cell in a run must be caught');
        return;
      }
      assert.equal(opened.kind, 'mine');
      if (opened.kind !== 'mine') return;
      const m = refusesOnlyWith([WireError], () => decodeRelayMessage(opened.payload, FORWARD_MARKER_LEN));
      assert.ok(m.ok);
      if (m.ok) assert.deepEqual(m.value.data, Buffer.from(datas[i]));
    });
  },
};

const linkBound: FuzzTarget = {
  name: 'link-bound first hop (hdata, CREATED confirmation)',
  arbitrary: () => eitherSide(64),
  check(input) {
    const [relaySide, ms, junk, useJunk] = input as [boolean, Mutation[], Buffer, boolean];
    const secret = Buffer.alloc(32, 5);
    const X = Buffer.alloc(32, 6);
    const hop = linkBoundHop(secret, X);
    if (relaySide) {
      const hdata = useJunk ? junk : ms.reduce(applyMutation, X);
      const r = refusesOnlyWith([CryptoError], () => linkBoundHop(secret, hdata));
      assert.equal(r.ok, hdata.length === 32, 'exactly 32 bytes of hdata are taken');
      return;
    }
    const reply = useJunk ? junk : ms.reduce(applyMutation, hop.confirm);
    assert.equal(linkBoundConfirmed(hop, reply), reply.equals(hop.confirm));
  },
};

const ntor: FuzzTarget = {
  name: 'ntor handshake (onionskin, reply)',
  arbitrary: () => eitherSide(120),
  check(input) {
    const [serverSide, ms, junk, useJunk] = input as [boolean, Mutation[], Buffer, boolean];
    const k = keys();
    const me = { relayId: k.relayId, onionKey: k.onion };
    const start = ntorClientStart(k.relayId, k.onion.publicKey);
    if (serverSide) {
      const skin = useJunk ? junk : ms.reduce(applyMutation, start.onionskin);
      const r = refusesOnlyWith([CryptoError], () => ntorServerRespond(skin, me));
      if (r.ok) assert.equal(r.value.reply.length, 64);
      return;
    }
    const reply = ntorServerRespond(start.onionskin, me).reply;
    const changed = useJunk ? junk : ms.reduce(applyMutation, reply);
    const r = refusesOnlyWith([CryptoError], () => ntorClientFinish(start.state, changed));
    if (!changed.equals(reply)) assert.ok(!r.ok, 'a changed CREATED reply must fail AUTH');
  },
};

// ---- §1.2 Noise XX handshake messages with link certificates, §1.3 transport frames ----

const noise: FuzzTarget = {
  name: 'Noise XX handshake messages + link cert, transport frames',
  arbitrary: () =>
    fc.tuple(fc.integer({ min: 1, max: 4 }), mutationsOrNone, fc.boolean(), randomBytes(200), fc.boolean()),
  check(input) {
    const [stage, ms, useJunk, junk, clientCert] = input as [number, Mutation[], boolean, Buffer, boolean];
    const k = keys();
    const prologue = Buffer.from('allium-fuzz');
    const init = new NoiseHandshake({ initiator: true, staticKey: k.clientStatic, prologue });
    const resp = new NoiseHandshake({ initiator: false, staticKey: k.link, prologue });
    const change = (m: Buffer) => (useJunk ? junk : ms.reduce(applyMutation, m));
    const m1 = init.writeMessage(Buffer.alloc(0));
    if (stage === 1) {
      const r = refusesOnlyWith([CryptoError], () => resp.readMessage(change(m1)));
      if (r.ok) assert.ok(r.value.length <= MAX_FRAME_LEN);
      return;
    }
    resp.readMessage(m1);
    const m2 = resp.writeMessage(k.cert);
    if (stage === 2) {
      const sent = change(m2);
      const r = refusesOnlyWith([CryptoError], () => {
        const payload = init.readMessage(sent);
        return verifyLinkCertFor(payload, init.remoteStatic as Buffer, k.relayId);
      });
      if (!sent.equals(m2)) assert.ok(!r.ok, 'a changed handshake message 2 must be refused');
      else assert.ok(r.ok, 'the unchanged message 2 must verify');
      return;
    }
    init.readMessage(m2);
    const m3 = init.writeMessage(clientCert ? k.cert : Buffer.alloc(0));
    if (stage === 3) {
      const sent = change(m3);
      const r = refusesOnlyWith([CryptoError], () => {
        const payload = resp.readMessage(sent);
        return payload.length === 0
          ? null
          : verifyLinkCertFor(payload, resp.remoteStatic as Buffer, k.relayId);
      });
      if (!sent.equals(m3)) assert.ok(!r.ok, 'a changed handshake message 3 must be refused');
      return;
    }
    resp.readMessage(m3);
    const tx = init.split().send;
    const rx = resp.split().recv;
    const ct = tx.encrypt(Buffer.alloc(CELL_LEN, 1));
    const sent = change(ct);
    const r = refusesOnlyWith([CryptoError], () => rx.decrypt(sent));
    if (!sent.equals(ct)) assert.ok(!r.ok, 'a changed transport frame must be refused');
    else assert.ok(r.ok && r.value.equals(Buffer.alloc(CELL_LEN, 1)));
  },
};

// ---- §1.1 link certificate on its own ----

const linkCert: FuzzTarget = {
  name: 'link certificate',
  arbitrary: () => fc.tuple(mutationsOrNone, randomBytes(120), fc.boolean()),
  check(input) {
    const [ms, junk, useJunk] = input as [Mutation[], Buffer, boolean];
    const k = keys();
    const cert = useJunk ? junk : ms.reduce(applyMutation, k.cert);
    const r = refusesOnlyWith([CryptoError], () => verifyLinkCertFor(cert, k.link.publicKey, k.relayId));
    if (cert.equals(k.cert)) assert.ok(r.ok);
    else assert.ok(!r.ok, 'a changed link certificate must be refused');
  },
};

// ---- SOCKS5 (RFC 1928/1929) as the client port reads it ----

// While waiting for more, only part of one message is held: the longest is the RFC 1929 auth (513).
const SOCKS_MAX_BUFFERED = 513;
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const socks5: FuzzTarget = {
  name: 'SOCKS5 handshake',
  arbitrary: () => {
    const seeds = fc.constantFrom(
      Buffer.concat([hex('05 01 00'), hex('05 01 00 03 0b'), Buffer.from('example.com'), hex('01bb')]),
      Buffer.concat([
        hex('05 02 00 02'),
        hex('01 04'),
        Buffer.from('user'),
        hex('06'),
        Buffer.from('secret'),
        hex('05 01 00 01 7f000001 1f90'),
      ]),
      hex('05 01 00 05 01 00 04 20010db8000000000000000000000001 0050'),
      Buffer.from('CONNECT example.com:443 HTTP/1.1\r\n\r\n'),
      hex('04 01 0050 7f000001 00'),
    );
    const stream = fc.oneof(mutated(seeds), randomBytes(600));
    return fc.tuple(stream, fc.array(fc.nat(), { maxLength: 6 }));
  },
  check(input) {
    const [bytes, cuts] = input as [Buffer, number[]];
    const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort(
      (a, b) => a - b,
    );
    const chunks: Buffer[] = [];
    let prev = 0;
    for (const p of [...points, bytes.length]) {
      chunks.push(bytes.subarray(prev, p));
      prev = p;
    }
    const hs = new Socks5Handshake();
    let final: Socks5Step = { kind: 'need-more' };
    for (const c of chunks) {
      let s = refusesOnlyWith([], () => hs.step(c));
      for (let i = 0; s.ok && s.value.kind === 'reply'; i++) {
        assert.ok(i < 8, 'the handshake keeps replying without input');
        s = refusesOnlyWith([], () => hs.step(Buffer.alloc(0)));
      }
      if (!s.ok) return;
      final = s.value;
      if (final.kind !== 'need-more') break;
      const buffered = (hs as unknown as { buf: Buffer }).buf.length;
      assert.ok(buffered < SOCKS_MAX_BUFFERED, `SOCKS handshake holds ${buffered} bytes while waiting`);
    }
    if (final.kind === 'fail') assert.ok(final.error instanceof WireError);
    if (final.kind === 'request') {
      assert.ok(final.port >= 1 && final.port <= 65535);
      assert.ok(final.host.length >= 1 && final.host.length <= 255);
      if (final.addressType === 'domain') assert.ok(isValidHost(final.host));
      else assert.ok(parseIp(final.host));
    }
  },
};

// ---- §1.3 frame decoder (a TCP byte stream cut into frames) ----

const frameDecoder: FuzzTarget = {
  name: 'frame decoder',
  arbitrary: () => {
    const frames = fc
      .array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 })
      .map((lens) =>
        Buffer.concat(lens.map((n) => Buffer.concat([encodeFrameLength(n), Buffer.alloc(n, n & 0xff)]))),
      );
    const stream = fc.oneof(
      mutated(frames),
      randomBytes(400),
      fc.constant(hex('ffff')),
      fc.constant(hex('0000')),
    );
    return fc.tuple(
      fc.constantFrom(1, 2, 100, 256, 4096, MAX_FRAME_LEN),
      stream,
      fc.array(fc.nat(), { maxLength: 12 }),
    );
  },
  check(input) {
    const [cap, bytes, cuts] = input as [number, Buffer, number[]];
    const d = new FrameDecoder(cap);
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    let prev = 0;
    let out = 0;
    let failed: Error | null = null;
    for (const p of [...points, bytes.length]) {
      const chunk = bytes.subarray(prev, p);
      prev = p;
      const r = refusesOnlyWith([WireError], () => d.push(chunk));
      if (!r.ok) {
        failed = r.error;
        break;
      }
      for (const f of r.value) {
        assert.ok(f.length >= 1 && f.length <= cap, `frame of ${f.length} bytes with cap ${cap}`);
        out += 2 + f.length;
      }
      // A partial frame is all it may hold: prefix + at most cap - 1 payload bytes.
      assert.ok(d.buffered <= cap + 1, `buffered ${d.buffered} > cap ${cap} + 1`);
    }
    if (failed) {
      // A failed decoder stays failed (the link must close) and holds nothing.
      assert.equal(d.buffered, 0);
      assert.throws(() => d.push(Buffer.from([0, 1, 0])), WireError);
    } else {
      assert.equal(out + d.buffered, bytes.length, 'every byte is either returned or buffered');
    }
  },
};

// ---- §6 directory documents: bodies, envelopes, signed documents ----

const fieldReplaced = <T extends object>(base: T) =>
  fc
    .tuple(fc.constantFrom(...Object.keys(base)), fc.anything())
    .map(([k, v]) => JSON.stringify({ ...base, [k]: v }));

const directoryBodies: FuzzTarget = {
  name: 'directory bodies (descriptor, consensus, withdraw, envelope)',
  arbitrary: () => {
    const d = docs();
    const relayReplaced = fc
      .tuple(
        fc.nat(d.consensus.relays.length - 1),
        fc.constantFrom(...Object.keys(d.consensus.relays[0])),
        fc.anything(),
      )
      .map(([i, k, v]) => {
        const relays = d.consensus.relays.map((r, j) => (j === i ? { ...r, [k]: v } : r));
        return JSON.stringify({ ...d.consensus, relays });
      });
    const text = fc.oneof(
      fc.string(),
      fc.json(),
      mutatedText(
        fc.constantFrom(
          serializeDescriptor(d.descriptor),
          serializeConsensus(d.consensus),
          serializeWithdraw(d.withdraw),
        ),
      ),
      fieldReplaced(d.descriptor),
      fieldReplaced(d.consensus),
      fieldReplaced(d.withdraw),
      relayReplaced,
    );
    return fc.tuple(text, fc.anything());
  },
  check(input) {
    const [text, value] = input as [string, unknown];
    const desc = refusesOnlyWith([DirectoryDocError], () => parseDescriptorBody(text));
    if (desc.ok) {
      assert.ok(desc.value.port >= 1 && desc.value.port <= 65535);
      assert.ok(desc.value.exitPolicy.length <= 256);
    }
    refusesOnlyWith([DirectoryDocError], () => parseConsensusBody(text));
    refusesOnlyWith([DirectoryDocError], () => parseWithdrawBody(text));
    refusesOnlyWith([DirectoryDocError], () => parseEnvelope(value));
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return;
    }
    refusesOnlyWith([DirectoryDocError], () => parseEnvelope(json));
  },
};

type EnvChange = { which: 'body' | 'signature'; ms: Mutation[] } | { which: 'replace'; value: unknown };

function changeEnvelope(env: SignedEnvelope, c: EnvChange): unknown {
  if (c.which === 'replace') return c.value;
  if (c.which === 'body')
    return { ...env, body: c.ms.reduce(applyMutation, Buffer.from(env.body, 'utf8')).toString('utf8') };
  return {
    ...env,
    signature: c.ms.reduce(applyMutation, Buffer.from(env.signature, 'latin1')).toString('latin1'),
  };
}

const signedDocuments: FuzzTarget = {
  name: 'signed directory documents (openDescriptor, openConsensusJson, openWithdraw)',
  arbitrary: () => {
    const change: fc.Arbitrary<EnvChange> = fc.oneof(
      fc.record({ which: fc.constantFrom('body' as const, 'signature' as const), ms: mutationList }),
      fc.record({
        which: fc.constant('replace' as const),
        value: fc.oneof(fc.anything(), fc.record({ body: fc.anything(), signature: fc.anything() })),
      }),
    );
    return fc.tuple(fc.nat(2), change);
  },
  check(input) {
    const [which, c] = input as [number, EnvChange];
    const d = docs();
    const k = keys();
    const env = [d.descriptorEnv, d.consensusEnv, d.withdrawEnv][which];
    const changed = changeEnvelope(env, c);
    const open = (
      [
        () => openDescriptor(changed as SignedEnvelope),
        () => openConsensusJson(changed, k.directory.publicKey, { now: d.consensus.validAfter + 1000 }),
        () => openWithdraw(changed as SignedEnvelope, k.identity.publicKey),
      ] as Array<() => unknown>
    )[which];
    const r = refusesOnlyWith([DocumentError], open);
    const bodyChanged =
      changed === null || typeof changed !== 'object' || (changed as SignedEnvelope).body !== env.body;
    if (bodyChanged) assert.ok(!r.ok, 'a document whose body changed must not verify');
  },
};

// ---- §7 exit policy lines ----

const policyLine = fc.oneof(
  fc.string({ maxLength: 40 }),
  mutatedText(
    fc.constantFrom(
      'accept *:*',
      'reject *:25',
      'accept 192.0.2.0/24:80-443',
      'reject [2001:db8::]/32:*',
      'accept [::ffff:10.0.0.1]:1-65535',
      'reject 0.0.0.0/0:0',
      '# comment',
      'accept 127.0.0.1/32:8080',
    ),
  ),
  fc
    .tuple(
      fc.constantFrom('accept', 'reject', 'ACCEPT', 'allow', ''),
      fc.oneof(
        fc.constant('*'),
        fc.ipV4(),
        fc.ipV6().map((a) => `[${a}]`),
        fc.ipV4Extended(),
      ),
      fc.option(fc.integer({ min: -1, max: 129 })),
      fc.oneof(
        fc.constant('*'),
        fc.integer({ min: -1, max: 70000 }).map(String),
        fc.tuple(fc.nat(70000), fc.nat(70000)).map(([a, b]) => `${a}-${b}`),
      ),
    )
    .map(([a, addr, bits, ports]) => `${a} ${addr}${bits === null ? '' : `/${bits}`}:${ports}`),
);

const exitPolicy: FuzzTarget = {
  name: 'exit policy lines',
  arbitrary: () =>
    fc.tuple(
      fc.array(policyLine, { maxLength: 12 }),
      fc.boolean(),
      fc.oneof(
        fc.ipV4(),
        fc.ipV6(),
        fc.string({ maxLength: 20 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }).map(formatIp),
      ),
      fc.integer({ min: -1, max: 70000 }),
    ),
  check(input) {
    const [lines, allowPrivate, addr, port] = input as [string[], boolean, string, number];
    const r = refusesOnlyWith([ExitPolicyError], () => parseExitPolicy(lines));
    if (!r.ok) return;
    const p = ExitPolicy.fromLines(lines, { allowPrivate });
    const allowed = refusesOnlyWith([], () => p.allows(addr, port));
    const may = refusesOnlyWith([], () => p.mayAllowPort(port));
    refusesOnlyWith([], () => p.isExit());
    // allows() must never say yes where mayAllowPort() (what clients pick exits by) said no.
    if (allowed.ok && allowed.value && may.ok)
      assert.ok(may.value, `allows ${addr}:${port} but mayAllowPort says no`);
    // Formatting and re-parsing gives the same rules.
    assert.deepEqual(ExitPolicy.fromLines(p.toLines(), { allowPrivate }).toLines(), p.toLines());
  },
};

// ---- IP literals (every address field above goes through these) ----

const ipLiterals: FuzzTarget = {
  name: 'IP literals (parseIp/formatIp)',
  arbitrary: () =>
    fc.oneof(
      fc.string({ maxLength: 50 }),
      fc.ipV4(),
      fc.ipV6(),
      fc.ipV4Extended(),
      mutatedText(fc.constantFrom('::ffff:1.2.3.4', '2001:db8::1', '10.0.0.1', 'fe80::1%eth0')),
    ),
  check(input) {
    const s = input as string;
    const ip = refusesOnlyWith([], () => parseIp(s));
    if (ip.ok && ip.value) {
      assert.ok(ip.value.length === 4 || ip.value.length === 16);
      assert.deepEqual(
        parseIp(formatIp(ip.value)),
        ip.value,
        'formatIp output parses back to the same bytes',
      );
    }
  },
};

// ---- HTTP proxy (CONNECT authority and Proxy-Authorization; node:http parses the request itself) ----

const httpConnect: FuzzTarget = {
  name: 'HTTP CONNECT authority and Proxy-Authorization',
  arbitrary: () =>
    fc.tuple(
      fc.oneof(
        fc.string({ maxLength: 80 }),
        mutatedText(
          fc.constantFrom('example.com:443', '[2001:db8::1]:8443', '127.0.0.1:80', 'a:1', '[::1]:65535'),
        ),
        fc.tuple(fc.domain(), fc.integer({ min: -1, max: 100000 })).map(([h, p]) => `${h}:${p}`),
      ),
      fc.oneof(fc.string({ maxLength: 80 }), mutatedText(fc.constant('Basic dXNlcjpwYXNz'))),
    ),
  check(input) {
    const [authority, auth] = input as [string, string];
    const a = refusesOnlyWith([], () => parseAuthority(authority));
    if (a.ok && a.value) {
      assert.ok(a.value.port >= 1 && a.value.port <= 65535);
      assert.ok(a.value.host.length >= 1 && !/\s/.test(a.value.host));
    }
    refusesOnlyWith([], () => isolationFromAuth(auth));
  },
};

// ---- §8 onion services: the relay messages a relay reads, ESTABLISH_INTRO's proofs, descriptors at a store ----

const onionDecoders: ((d: Buffer) => unknown)[] = [
  decodeEstablishIntro,
  decodeIntroduce,
  decodeIntroduceAck,
  decodeEstablishRendezvous,
  decodeRendezvous1,
  decodeRendezvous2,
  decodeDescriptorStore,
  decodeDescriptorStored,
  decodeDescriptorFetch,
  decodeDescriptorFetched,
  decodeIntroducePlaintext,
];

const onionKeys = lazy(() => {
  const authKey = IdentityKey.fromSeed(Buffer.alloc(32, 0x44));
  const mf = Buffer.alloc(32, 0x12);
  const seed = Buffer.alloc(32, 0x55);
  const now = 2_000_000_000;
  const descriptor = sealDescriptor({
    identityKey: IdentityKey.fromSeed(seed).publicKey,
    blindedSecret: blindSecret(seed, { number: Math.floor(now / 86_400), length: 86_400 }),
    revision: 7,
    expires: now + 3600,
    introPoints: [{ relayId: Buffer.alloc(32, 1), authKey: authKey.publicKey, encKey: Buffer.alloc(32, 2) }],
    salt: Buffer.alloc(16, 3),
  });
  const establishIntro = encodeEstablishIntro(
    signEstablishIntro(authKey, { rate: 25, burst: 200 }, circuitBinding(mf)),
  );
  return { authKey, mf, now, descriptor, establishIntro };
});

const onionMessages: FuzzTarget = {
  name: 'onion service messages (ESTABLISH_INTRO, INTRODUCE, RENDEZVOUS, descriptor store and fetch)',
  arbitrary: () => {
    const k = onionKeys();
    const seeds = fc.constantFrom(
      k.establishIntro,
      encodeIntroduce({
        authKey: k.authKey.publicKey,
        clientKey: Buffer.alloc(32, 5),
        encrypted: Buffer.alloc(128, 6),
        mac: Buffer.alloc(32, 7),
      }),
      encodeIntroduceAck(3),
      encodeEstablishRendezvous(Buffer.alloc(32, 8)),
      encodeRendezvous1(Buffer.alloc(32, 8), { serviceKey: Buffer.alloc(32, 9), auth: Buffer.alloc(32, 10) }),
      encodeRendezvous2({ serviceKey: Buffer.alloc(32, 9), auth: Buffer.alloc(32, 10) }),
      k.descriptor,
      encodeDescriptorStored(DescriptorStoreStatus.NOT_NEWER),
      encodeDescriptorFetch(Buffer.alloc(32, 11)),
      encodeDescriptorFetched(k.descriptor),
      encodeDescriptorFetched(null),
      encodeIntroducePlaintext({ cookie: Buffer.alloc(32, 8), rendezvousId: Buffer.alloc(32, 12) }),
    );
    return fc.tuple(fc.nat(onionDecoders.length - 1), fc.oneof(mutated(seeds), randomBytes(1300)));
  },
  check(input) {
    const [which, data] = input as [number, Buffer];
    const decode = onionDecoders[which];
    const r = refusesOnlyWith([WireError], () => decode(data));
    if (r.ok && decode === decodeDescriptorFetched && r.value !== null) {
      assert.equal((r.value as Buffer).length, ONION_DESCRIPTOR_LEN);
    }
    if (r.ok && decode === decodeEstablishIntro) {
      // What an introduction point checks next: a changed message never passes both proofs.
      const k = onionKeys();
      const proofs = refusesOnlyWith([OnionError], () =>
        verifyEstablishIntro(r.value as ReturnType<typeof decodeEstablishIntro>, circuitBinding(k.mf)),
      );
      if (proofs.ok) assert.deepEqual(data, k.establishIntro, 'a changed ESTABLISH_INTRO passed its proofs');
    }
  },
};

const onionStore: FuzzTarget = {
  name: 'onion descriptors at a store (DescriptorStore.store, parseOnionAddress)',
  arbitrary: () =>
    fc.tuple(
      mutationsOrNone,
      randomBytes(ONION_DESCRIPTOR_LEN + 8),
      fc.boolean(),
      mutatedText(fc.constant(onionAddressOf(onionKeys().authKey.publicKey))),
    ),
  check(input) {
    const [ms, junk, useJunk, address] = input as [Mutation[], Buffer, boolean, string];
    const k = onionKeys();
    const bytes = useJunk ? junk : ms.reduce(applyMutation, k.descriptor);
    const store = new DescriptorStore({ count: 4, bytes: 8192 }, () => k.now * 1000);
    // The store answers every input with a status, never a throw.
    const status = refusesOnlyWith([], () => store.store(bytes));
    if (!status.ok) return;
    if (bytes.equals(k.descriptor)) assert.equal(status.value, DescriptorStoreStatus.STORED);
    else assert.notEqual(status.value, DescriptorStoreStatus.STORED, 'a changed descriptor was stored');
    const parsed = refusesOnlyWith([OnionError], () => parseOnionAddress(address));
    if (parsed.ok) assert.equal(parsed.value.length, 32);
  },
};

export const TARGETS: FuzzTarget[] = [
  cells,
  cellBodies,
  relayMessages,
  forwardCells,
  forwardRuns,
  ntor,
  linkBound,
  noise,
  linkCert,
  socks5,
  httpConnect,
  frameDecoder,
  directoryBodies,
  signedDocuments,
  exitPolicy,
  ipLiterals,
  onionMessages,
  onionStore,
];

export function targetByName(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target named ${JSON.stringify(name)}`);
  return t;
}
