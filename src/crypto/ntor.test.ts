import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CryptoError } from './errors.js';
import { IdentityKey, X25519Key } from './keys.js';
import {
  type HopKeys,
  ntorClientFinish,
  ntorClientPrecompute,
  ntorClientStart,
  ntorServerRespond,
} from './ntor.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const code = (c: string) => (err: unknown) => err instanceof CryptoError && err.code === c;
const fill = (b: number) => Buffer.alloc(32, b);

function relay() {
  const identity = IdentityKey.generate();
  const onionKey = X25519Key.generate();
  return { relayId: identity.id, onionKey };
}

describe('ntor fixed vector', () => {
  // x = 0x11.., y = 0x22.., b = 0x33.., identity seed = 0x44..: computed once, pinned forever.
  const x = X25519Key.fromSecret(fill(0x11));
  const y = X25519Key.fromSecret(fill(0x22));
  const b = X25519Key.fromSecret(fill(0x33));
  const id = IdentityKey.fromSeed(fill(0x44)).id;
  const expected: Record<keyof HopKeys, string> = {
    kf: 'cebb3417ffac84dcf1ae06d7fd0376345af3d21c63b503e8e1c05c5e4a512b20',
    kb: '18a6e2025b322aaaa08fdb38ec4016ffdac24a1e34c3b7a28561f0782206deb8',
    mf: '3927a07eae92b721d35291849113bb0f1a9cdb68409a04ed9e3246947f83855b',
    mb: 'ae356ce83e21a5e600e5dbb377245b8475fb32515b74ebd1d7e893d6e4142bea',
    kt: 'eb4e98134acbc4dfc8c00f23ce011cc32fba24acbdff706422820bdda8039928',
  };

  it('produces the pinned onionskin, reply and hop keys on both sides', () => {
    assert.equal(id.toString('hex'), 'b14705888f4a68391a09aa5968dd25d16c3bba7bb3b6d15bf354d8dcaae85a47');
    const { onionskin, state } = ntorClientStart(id, b.publicKey, x);
    assert.equal(
      onionskin.toString('hex'),
      'b14705888f4a68391a09aa5968dd25d16c3bba7bb3b6d15bf354d8dcaae85a47' +
        '7b0d47d93427f8311160781c7c733fd89f88970aef490d8aa0ee19a4cb8a1b14' +
        '7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13',
    );
    const { reply, keys } = ntorServerRespond(onionskin, { relayId: id, onionKey: b }, y);
    assert.equal(
      reply.toString('hex'),
      '0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20' +
        '343855853735adf5138b0b6f44bd4df43292fbb45ab3d087d8597bfe2a62d435',
    );
    const clientKeys = ntorClientFinish(state, reply);
    for (const k of ['kf', 'kb', 'mf', 'mb', 'kt'] as const) {
      assert.equal(keys[k].toString('hex'), expected[k], `server ${k}`);
      assert.equal(clientKeys[k].toString('hex'), expected[k], `client ${k}`);
    }
  });

  it('matches a from-the-spec recomputation of §3.1 and §3.2', () => {
    const H = (msg: Buffer, key: string) => createHmac('sha256', key).update(msg).digest();
    const P = 'allium-ntor-x25519-sha256-1';
    const X = x.publicKey;
    const Y = y.publicKey;
    const B = b.publicKey;
    const secretInput = Buffer.concat([y.dh(X), b.dh(X), id, B, X, Y, Buffer.from(P)]);
    const keySeed = H(secretInput, `${P}:key_extract`);
    const verify = H(secretInput, `${P}:verify`);
    const auth = H(Buffer.concat([verify, id, B, Y, X, Buffer.from(`${P}Server`)]), `${P}:mac`);
    const okm = Buffer.from(hkdfSync('sha256', keySeed, `${P}:key_extract`, `${P}:key_expand`, 160));
    const { onionskin } = ntorClientStart(id, B, x);
    const { reply, keys } = ntorServerRespond(onionskin, { relayId: id, onionKey: b }, y);
    assert.deepEqual(reply, Buffer.concat([Y, auth]));
    assert.deepEqual(Buffer.concat([keys.kf, keys.kb, keys.mf, keys.mb, keys.kt]), okm);
  });
});

describe('ntor handshake', () => {
  it('client and server agree on fresh keys, different every time', () => {
    const me = relay();
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { onionskin, state } = ntorClientStart(me.relayId, me.onionKey.publicKey);
      assert.equal(onionskin.length, 96);
      const { reply, keys } = ntorServerRespond(onionskin, me);
      assert.equal(reply.length, 64);
      const ck = ntorClientFinish(state, reply);
      assert.deepEqual(ck, keys);
      for (const k of Object.values(keys)) assert.equal(k.length, 32);
      assert.equal(new Set(Object.values(keys).map((k) => k.toString('hex'))).size, 5);
      seen.add(keys.kf.toString('hex'));
    }
    assert.equal(seen.size, 20);
  });

  it('a relay answers for its previous onion key while it holds it, with keys the client agrees on', () => {
    const me = relay();
    const previousOnionKey = X25519Key.generate();
    const { onionskin, state } = ntorClientStart(me.relayId, previousOnionKey.publicKey);
    const { reply, keys } = ntorServerRespond(onionskin, { ...me, previousOnionKey });
    assert.deepEqual(ntorClientFinish(state, reply), keys);
    // Once the relay has dropped it (grace over), the same onionskin is refused.
    assert.throws(
      () => ntorServerRespond(onionskin, { ...me, previousOnionKey: null }),
      code('ALLIUM_HANDSHAKE_MALFORMED'),
    );
    assert.throws(() => ntorServerRespond(onionskin, me), code('ALLIUM_HANDSHAKE_MALFORMED'));
  });

  it('a relay rejects an onionskin for another id or another onion key (MALFORMED)', () => {
    const me = relay();
    const other = relay();
    const { onionskin: forOther } = ntorClientStart(other.relayId, me.onionKey.publicKey);
    assert.throws(() => ntorServerRespond(forOther, me), code('ALLIUM_HANDSHAKE_MALFORMED'));
    const { onionskin: oldKey } = ntorClientStart(me.relayId, other.onionKey.publicKey);
    assert.throws(() => ntorServerRespond(oldKey, me), code('ALLIUM_HANDSHAKE_MALFORMED'));
    for (const len of [0, 95, 97]) {
      assert.throws(() => ntorServerRespond(Buffer.alloc(len), me), code('ALLIUM_HANDSHAKE_MALFORMED'));
    }
  });

  it('an impostor without the onion key cannot produce AUTH', () => {
    const me = relay();
    const impostorKey = X25519Key.generate();
    const { onionskin, state } = ntorClientStart(me.relayId, me.onionKey.publicKey);
    // The impostor swaps in its own B to get past its own check, then answers.
    const forged = Buffer.from(onionskin);
    impostorKey.publicKey.copy(forged, 32);
    const { reply } = ntorServerRespond(forged, { relayId: me.relayId, onionKey: impostorKey });
    assert.throws(() => ntorClientFinish(state, reply), code('ALLIUM_HANDSHAKE_AUTH'));
  });

  it('a tampered AUTH or Y fails with HANDSHAKE_AUTH', () => {
    const me = relay();
    for (const pos of [0, 31, 32, 63]) {
      const { onionskin, state } = ntorClientStart(me.relayId, me.onionKey.publicKey);
      const { reply } = ntorServerRespond(onionskin, me);
      const bad = Buffer.from(reply);
      bad[pos] ^= 0x01;
      assert.throws(() => ntorClientFinish(state, bad), code('ALLIUM_HANDSHAKE_AUTH'));
    }
  });

  it('rejects all-zero (low-order) points on both sides', () => {
    const me = relay();
    const { onionskin, state } = ntorClientStart(me.relayId, me.onionKey.publicKey);
    assert.throws(() => ntorClientFinish(state, Buffer.alloc(64)), code('ALLIUM_HANDSHAKE_AUTH'));
    const zeroX = Buffer.from(onionskin);
    zeroX.fill(0, 64);
    assert.throws(() => ntorServerRespond(zeroX, me), code('ALLIUM_HANDSHAKE_MALFORMED'));
  });

  it('rejects a reply of the wrong length, and a second finish of the same state', () => {
    const me = relay();
    const { onionskin, state } = ntorClientStart(me.relayId, me.onionKey.publicKey);
    const { reply } = ntorServerRespond(onionskin, me);
    assert.throws(() => ntorClientFinish(state, reply.subarray(0, 63)), code('ALLIUM_HANDSHAKE_MALFORMED'));
    // The failed attempt consumed the ephemeral key: the state cannot be reused.
    assert.throws(() => ntorClientFinish(state, reply), code('ALLIUM_HANDSHAKE_MALFORMED'));
    const again = ntorClientStart(me.relayId, me.onionKey.publicKey);
    const r2 = ntorServerRespond(again.onionskin, me);
    ntorClientFinish(again.state, r2.reply);
    assert.throws(() => ntorClientFinish(again.state, r2.reply), code('ALLIUM_HANDSHAKE_MALFORMED'));
  });

  it('gives the pinned keys when EXP(B, x) was made ahead, and precomputing twice changes nothing', () => {
    const x = X25519Key.fromSecret(fill(0x11));
    const b = X25519Key.fromSecret(fill(0x33));
    const id = IdentityKey.fromSeed(fill(0x44)).id;
    const { onionskin, state } = ntorClientStart(id, b.publicKey, x);
    ntorClientPrecompute(state);
    ntorClientPrecompute(state);
    const { reply, keys } = ntorServerRespond(
      onionskin,
      { relayId: id, onionKey: b },
      X25519Key.fromSecret(fill(0x22)),
    );
    const clientKeys = ntorClientFinish(state, reply);
    assert.equal(
      clientKeys.kf.toString('hex'),
      'cebb3417ffac84dcf1ae06d7fd0376345af3d21c63b503e8e1c05c5e4a512b20',
    );
    for (const k of ['kf', 'kb', 'mf', 'mb'] as const) assert.ok(clientKeys[k].equals(keys[k]), k);
    // A finished state is spent: precomputing again is a no-op and finishing again still fails.
    ntorClientPrecompute(state);
    assert.throws(() => ntorClientFinish(state, reply), code('ALLIUM_HANDSHAKE_MALFORMED'));
  });

  it('a low-order onion key fails at finish, not at precompute, with or without it', () => {
    const me = relay();
    for (const precompute of [true, false]) {
      const { state } = ntorClientStart(me.relayId, Buffer.alloc(32));
      if (precompute) assert.doesNotThrow(() => ntorClientPrecompute(state));
      const y = X25519Key.generate().publicKey;
      assert.throws(
        () => ntorClientFinish(state, Buffer.concat([y, Buffer.alloc(32)])),
        code('ALLIUM_HANDSHAKE_AUTH'),
      );
    }
  });

  it('rejects a relay id or onion key of the wrong size at start (a caller bug)', () => {
    assert.throws(() => ntorClientStart(Buffer.alloc(31), Buffer.alloc(32)), code('ALLIUM_CRYPTO_ARGUMENT'));
    assert.throws(() => ntorClientStart(Buffer.alloc(32), Buffer.alloc(33)), code('ALLIUM_CRYPTO_ARGUMENT'));
  });
});

describe('ntor parsers under random input', () => {
  const me = relay();
  it('ntorClientFinish throws only CryptoError for random replies', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const { state } = ntorClientStart(me.relayId, me.onionKey.publicKey);
        assert.throws(
          () => ntorClientFinish(state, Buffer.from(bytes)),
          (e) => e instanceof CryptoError,
        );
      }),
      { numRuns },
    );
  });

  it('ntorServerRespond rejects random onionskins and accepts any X after our ID | B', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 120 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (junk, X) => {
          assert.throws(() => ntorServerRespond(Buffer.from(junk), me), code('ALLIUM_HANDSHAKE_MALFORMED'));
          const skin = Buffer.concat([me.relayId, me.onionKey.publicKey, Buffer.from(X)]);
          try {
            assert.equal(ntorServerRespond(skin, me).reply.length, 64);
          } catch (e) {
            assert.ok(e instanceof CryptoError && e.code === 'ALLIUM_HANDSHAKE_MALFORMED');
          }
        },
      ),
      { numRuns },
    );
  });
});
