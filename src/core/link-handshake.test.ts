import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IdentityKey, X25519Key } from '../crypto/keys.js';
import { makeLinkCert } from '../crypto/link-cert.js';
import { NoiseHandshake } from '../crypto/noise.js';
import { encodeFrameLength } from '../wire/frame-decoder.js';
import {
  LINK_HANDSHAKE_TIMEOUT_MS,
  LinkHandshake,
  type LinkHandshakeResult,
  type LinkHandshakeStep,
  type LinkIdentity,
} from './link-handshake.js';

const T0 = Date.now();
const relayIdentity = IdentityKey.generate();
const relayLinkKey = X25519Key.generate();
const relay: LinkIdentity = { identity: relayIdentity, linkKey: relayLinkKey };
const client: LinkIdentity = { identity: null };

function bytesOf(step: LinkHandshakeStep): Buffer {
  if (step.kind === 'send') return step.bytes;
  if (step.kind === 'done' && step.bytes) return step.bytes;
  assert.fail(
    `expected bytes to send, got ${step.kind}${step.kind === 'fail' ? `: ${step.error.message}` : ''}`,
  );
}

function failure(step: LinkHandshakeStep): string {
  assert.equal(step.kind, 'fail', `expected a failure, got ${step.kind}`);
  return (step as { error: { code: string } }).error.code;
}

/** Runs a whole handshake between two machines, passing each message in pieces cut by `cut`. */
function run(
  initiatorMe: LinkIdentity,
  responderMe: LinkIdentity,
  opts: { expect?: Buffer | null; cut?: (m: Buffer) => Buffer[]; now?: number } = {},
): { initiator: LinkHandshakeStep; responder: LinkHandshakeStep } {
  const now = opts.now ?? T0;
  const cut = opts.cut ?? ((m: Buffer) => [m]);
  const i = new LinkHandshake({
    initiator: true,
    me: initiatorMe,
    expectedRelayId: opts.expect === undefined ? relayIdentity.id : opts.expect,
    now,
  });
  const r = new LinkHandshake({ initiator: false, me: responderMe, expectedRelayId: null, now });
  assert.equal(r.start().kind, 'need-more');
  const feed = (to: LinkHandshake, bytes: Buffer): LinkHandshakeStep => {
    let last: LinkHandshakeStep = { kind: 'need-more' };
    for (const piece of cut(bytes)) {
      assert.equal(last.kind, 'need-more', 'a step before the whole message arrived');
      last = to.receive(piece, now);
    }
    return last;
  };
  const m2 = feed(r, bytesOf(i.start()));
  if (m2.kind === 'fail') return { initiator: { kind: 'need-more' }, responder: m2 };
  const iDone = feed(i, bytesOf(m2));
  if (iDone.kind === 'fail') return { initiator: iDone, responder: m2 };
  return { initiator: iDone, responder: feed(r, bytesOf(iDone)) };
}

function result(step: LinkHandshakeStep): LinkHandshakeResult {
  assert.equal(step.kind, 'done', step.kind === 'fail' ? step.error.message : step.kind);
  return (step as { result: LinkHandshakeResult }).result;
}

describe('LinkHandshake', () => {
  it('a client and a relay agree on keys and a secret; the client knows the relay, the relay sees no one', () => {
    const { initiator, responder } = run(client, relay);
    const c = result(initiator);
    const s = result(responder);
    assert.deepEqual(c.peerRelayId, relayIdentity.id);
    assert.equal(s.peerRelayId, null);
    assert.deepEqual(c.linkSecret, s.linkSecret);
    assert.deepEqual(c.peerStaticKey, relayLinkKey.publicKey);
    assert.deepEqual(s.decoder.buffered, 0);
    assert.deepEqual(s.rest, []);
    // The transport ciphers pair up both ways.
    assert.equal(s.recv.decrypt(c.send.encrypt(Buffer.from('up'))).toString(), 'up');
    assert.equal(c.recv.decrypt(s.send.encrypt(Buffer.from('down'))).toString(), 'down');
    // A client's link ends with the relay's certificate; the relay's with its own.
    assert.ok(Number.isFinite(c.expiresAt) && c.expiresAt > T0);
    assert.equal(s.expiresAt, c.expiresAt);
  });

  it('two relays each prove their identity, and the link ends with the earlier certificate', () => {
    const other = IdentityKey.generate();
    const otherKey = X25519Key.generate();
    const soon = Date.now() + 3600_000;
    const initiatorMe = {
      identity: other,
      linkKey: otherKey,
      linkCert: makeLinkCert(other, otherKey.publicKey, soon),
    };
    const { initiator, responder } = run(initiatorMe, relay, { now: Date.now() });
    assert.deepEqual(result(initiator).peerRelayId, relayIdentity.id);
    assert.deepEqual(result(responder).peerRelayId, other.id);
    assert.equal(result(responder).expiresAt, Math.floor(soon / 1000) * 1000);
    assert.equal(result(initiator).expiresAt, Math.floor(soon / 1000) * 1000);
  });

  it('the initiator refuses a relay other than the one it meant', () => {
    const { initiator } = run(client, relay, { expect: IdentityKey.generate().id });
    assert.equal(failure(initiator), 'ALLIUM_LINK_IDENTITY');
  });

  it('completes however the bytes are cut (one byte at a time, or any split)', () => {
    const oneByOne = run(client, relay, { cut: (m) => [...m].map((b) => Buffer.from([b])) });
    assert.deepEqual(result(oneByOne.initiator).linkSecret, result(oneByOne.responder).linkSecret);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), (sizes) => {
        const cut = (m: Buffer) => {
          const out: Buffer[] = [];
          for (let at = 0, k = 0; at < m.length; k++) {
            const n = sizes[k % sizes.length];
            out.push(m.subarray(at, at + n));
            at += n;
          }
          return out;
        };
        const { initiator, responder } = run(client, relay, { cut });
        assert.deepEqual(result(initiator).linkSecret, result(responder).linkSecret);
      }),
      { numRuns: 20 },
    );
  });

  it('frames right behind the last message are handed on whole, a partial one stays in the decoder', () => {
    const i = new LinkHandshake({ initiator: true, me: client, expectedRelayId: relayIdentity.id, now: T0 });
    const r = new LinkHandshake({ initiator: false, me: relay, expectedRelayId: null, now: T0 });
    const m2 = bytesOf(r.receive(bytesOf(i.start()), T0));
    const done = i.receive(m2, T0);
    const clientSide = result(done);
    const frame = clientSide.send.encrypt(Buffer.from('first cells'));
    const next = clientSide.send.encrypt(Buffer.from('second'));
    const tail = Buffer.concat([encodeFrameLength(next.length), next]).subarray(0, 5);
    const s = result(
      r.receive(Buffer.concat([bytesOf(done), encodeFrameLength(frame.length), frame, tail]), T0),
    );
    assert.equal(s.rest.length, 1);
    assert.equal(s.recv.decrypt(s.rest[0]).toString(), 'first cells');
    assert.equal(s.decoder.buffered, 5);
  });

  describe('hostile or broken peers', () => {
    const responder = () =>
      new LinkHandshake({ initiator: false, me: relay, expectedRelayId: null, now: T0 });

    it('bytes that are not a first message fail at once, without waiting for a whole "frame"', () => {
      assert.equal(failure(responder().receive(Buffer.alloc(300, 0xff), T0)), 'ALLIUM_LINK_HANDSHAKE');
      assert.equal(
        failure(responder().receive(Buffer.from('GET / HTTP/1.1\r\n'), T0)),
        'ALLIUM_LINK_HANDSHAKE',
      );
    });

    it('the first message of a release before 0.5.0 (a bare key) is refused by version', () => {
      const old = Buffer.concat([encodeFrameLength(32), X25519Key.generate().publicKey]);
      const step = responder().receive(old, T0);
      assert.equal(failure(step), 'ALLIUM_LINK_VERSION');
    });

    it('a first message naming another link protocol is refused by version, and says which', () => {
      const hs = new NoiseHandshake({
        initiator: true,
        staticKey: X25519Key.generate(),
        prologue: Buffer.from('allium-link-v2'),
      });
      const m1 = hs.writeMessage(Buffer.from([0, 3]));
      const step = responder().receive(Buffer.concat([encodeFrameLength(m1.length), m1]), T0);
      assert.equal(failure(step), 'ALLIUM_LINK_VERSION');
      assert.match((step as { error: Error }).error.message, /link protocol 3/);
    });

    it('a truncated first message waits for the rest; the deadline then ends it', () => {
      const i = new LinkHandshake({ initiator: true, me: client, expectedRelayId: null, now: T0 });
      const r = responder();
      const m1 = bytesOf(i.start());
      assert.equal(r.receive(m1.subarray(0, m1.length - 1), T0).kind, 'need-more');
      assert.equal(r.tick(T0 + LINK_HANDSHAKE_TIMEOUT_MS - 1).kind, 'need-more');
      assert.equal(failure(r.tick(T0 + LINK_HANDSHAKE_TIMEOUT_MS)), 'ALLIUM_LINK_TIMEOUT');
      assert.equal(
        failure(r.receive(m1.subarray(m1.length - 1), T0)),
        'ALLIUM_LINK_HANDSHAKE',
        'no input after failing',
      );
    });

    it('message 1 sent twice: the repeat is read as message 3, too short to be one', () => {
      const i = new LinkHandshake({ initiator: true, me: client, expectedRelayId: null, now: T0 });
      const r = responder();
      const m1 = bytesOf(i.start());
      assert.equal(r.receive(m1, T0).kind, 'send');
      assert.equal(failure(r.receive(m1, T0)), 'ALLIUM_HANDSHAKE_MALFORMED');
    });

    it('a responder whose certificate is for another key, or garbage, is refused', () => {
      const liar: LinkIdentity = {
        identity: relayIdentity,
        linkKey: relayLinkKey,
        linkCert: makeLinkCert(relayIdentity, X25519Key.generate().publicKey),
      };
      assert.equal(failure(run(client, liar).initiator), 'ALLIUM_LINK_IDENTITY');
      const garbage: LinkIdentity = {
        identity: relayIdentity,
        linkKey: relayLinkKey,
        linkCert: Buffer.alloc(104, 7),
      };
      assert.equal(failure(run(client, garbage).initiator), 'ALLIUM_LINK_IDENTITY');
    });

    it('an expired certificate is refused by the clock the machine is given', () => {
      const cert = makeLinkCert(relayIdentity, relayLinkKey.publicKey, T0 + 60_000);
      const { initiator } = run(client, { ...relay, linkCert: cert }, { now: T0 + 120_000 });
      assert.equal(failure(initiator), 'ALLIUM_LINK_CERT_EXPIRED');
    });

    it('bytes after the handshake ended are refused, and start() runs once', () => {
      const c = new LinkHandshake({ initiator: true, me: client, expectedRelayId: null, now: T0 });
      const m2 = bytesOf(responder().receive(bytesOf(c.start()), T0));
      assert.equal(c.receive(m2, T0).kind, 'done');
      assert.equal(failure(c.receive(m2, T0)), 'ALLIUM_LINK_HANDSHAKE');
      const i = new LinkHandshake({ initiator: true, me: client, expectedRelayId: null, now: T0 });
      i.start();
      assert.equal(failure(i.start()), 'ALLIUM_LINK_HANDSHAKE');
    });

    it('a close before message 2 says the peer may be of an older release; later, just that it closed', () => {
      const i = new LinkHandshake({ initiator: true, me: client, expectedRelayId: null, now: T0 });
      i.start();
      const early = i.peerClosed();
      assert.equal(early.code, 'ALLIUM_LINK_CLOSED');
      assert.match(early.message, /release before 0\.5\.0/);
      const r = responder();
      assert.doesNotMatch(r.peerClosed().message, /release/);
    });
  });
});
