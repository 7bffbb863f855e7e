import assert from 'node:assert/strict';
import { createCipheriv, createHmac, hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { OnionError } from '../wire/onion-errors.js';
import { encodeIntroduce, type Introduce } from '../wire/onion-messages.js';
import {
  clientIntroduce,
  clientRendezvous,
  type EndToEndKeys,
  serviceOpenIntroduce,
  serviceRendezvous,
} from './hs-ntor.js';
import { IdentityKey, sha256, X25519Key } from './keys.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 100);
const isCode = (code: string) => (e: unknown) => e instanceof OnionError && e.code === code;
const fill = (b: number) => Buffer.alloc(32, b);

// Fixed keys: x = 0x11.., y = 0x22.., b = 0x33.., auth key seed 0x44.., subcredential 0x55..
const x = () => X25519Key.fromSecret(fill(0x11));
const y = () => X25519Key.fromSecret(fill(0x22));
const b = X25519Key.fromSecret(fill(0x33));
const authKey = IdentityKey.fromSeed(fill(0x44)).publicKey;
const sub = fill(0x55);
const plaintext = { cookie: fill(0x66), rendezvousId: fill(0x77) };
const intro = { authKey, encKey: b.publicKey };
const service = { authKey, encKey: b };

function handshake(): { client: EndToEndKeys; service: EndToEndKeys } {
  const { message, state } = clientIntroduce(intro, sub, plaintext);
  const opened = serviceOpenIntroduce(message, service, sub);
  assert.deepEqual(opened.plaintext, plaintext);
  const answer = serviceRendezvous(opened.state);
  return { client: clientRendezvous(state, answer.handshake), service: answer.keys };
}

describe('hs-ntor (§8.6)', () => {
  it('gives the pinned INTRODUCE, RENDEZVOUS and keys for fixed keys', () => {
    const { message, state } = clientIntroduce(intro, sub, plaintext, x());
    assert.equal(sha256(encodeIntroduce(message)).toString('hex'), PINNED.introduce);
    const opened = serviceOpenIntroduce(message, service, sub);
    const answer = serviceRendezvous(opened.state, y());
    assert.equal(answer.handshake.auth.toString('hex'), PINNED.auth);
    const keys = clientRendezvous(state, answer.handshake);
    assert.deepEqual(keys, answer.keys);
    assert.equal(sha256(keys.kf, keys.kb, keys.mf, keys.mb).toString('hex'), PINNED.keys);
  });

  it('matches a from-the-spec recomputation of §8.6', () => {
    const P = 'allium-hs-ntor-x25519-sha256-1';
    const H = (m: Buffer, k: string) => createHmac('sha256', k).update(m).digest();
    const X = x().publicKey;
    const Y = y().publicKey;
    const B = b.publicKey;
    const introInput = Buffer.concat([x().dh(B), authKey, X, B, Buffer.from(P)]);
    const introOkm = Buffer.from(
      hkdfSync(
        'sha256',
        introInput,
        `${P}:hs_key_extract`,
        Buffer.concat([Buffer.from(`${P}:hs_intro_expand`), sub]),
        64,
      ),
    );
    const c = createCipheriv('aes-256-ctr', introOkm.subarray(0, 32), Buffer.alloc(16));
    const plain = Buffer.concat([plaintext.cookie, plaintext.rendezvousId, Buffer.alloc(64)]);
    const encrypted = Buffer.concat([c.update(plain), c.final()]);
    const head = Buffer.concat([Buffer.from([1]), authKey, X, encrypted]);
    const mac = createHmac('sha256', introOkm.subarray(32, 64)).update(head).digest();
    const { message, state } = clientIntroduce(intro, sub, plaintext, x());
    assert.deepEqual(encodeIntroduce(message), Buffer.concat([head, mac]));

    const rendInput = Buffer.concat([y().dh(X), b.dh(X), authKey, B, X, Y, Buffer.from(P)]);
    const keySeed = H(rendInput, `${P}:hs_key_extract`);
    const verify = H(rendInput, `${P}:hs_verify`);
    const auth = H(Buffer.concat([verify, authKey, B, Y, X, Buffer.from(`${P}Server`)]), `${P}:hs_mac`);
    const okm = Buffer.from(hkdfSync('sha256', keySeed, `${P}:hs_key_extract`, `${P}:hs_key_expand`, 128));
    const answer = serviceRendezvous(serviceOpenIntroduce(message, service, sub).state, y());
    assert.deepEqual(answer.handshake, { serviceKey: Y, auth });
    const keys = clientRendezvous(state, answer.handshake);
    assert.deepEqual(Buffer.concat([keys.kf, keys.kb, keys.mf, keys.mb]), okm);
  });

  it('gives both ends the same keys, fresh every time, one per direction', () => {
    const a = handshake();
    const c = handshake();
    assert.deepEqual(a.client, a.service);
    assert.notDeepEqual(a.client.kf, c.client.kf);
    assert.notDeepEqual(a.client.kf, a.client.kb);
    assert.notDeepEqual(a.client.mf, a.client.mb);
  });

  it('lets no changed byte of INTRODUCE2 through', () => {
    const { message } = clientIntroduce(intro, sub, plaintext);
    const fields = ['clientKey', 'encrypted', 'mac'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.nat(), fc.integer({ min: 1, max: 255 }), (field, at, v) => {
        const changed: Introduce = { ...message, [field]: Buffer.from(message[field]) };
        changed[field][at % changed[field].length] ^= v;
        assert.throws(
          () => serviceOpenIntroduce(changed, service, sub),
          isCode('ALLIUM_ONION_INTRODUCE_AUTH'),
        );
      }),
      { numRuns },
    );
  });

  it('refuses an INTRODUCE2 made without the subcredential, for another auth key, or with a zero key', () => {
    const { message } = clientIntroduce(intro, fill(0x56), plaintext);
    assert.throws(() => serviceOpenIntroduce(message, service, sub), isCode('ALLIUM_ONION_INTRODUCE_AUTH'));
    const ok = clientIntroduce(intro, sub, plaintext).message;
    assert.throws(
      () => serviceOpenIntroduce({ ...ok, authKey: fill(0x45) }, service, sub),
      isCode('ALLIUM_ONION_INTRODUCE_AUTH'),
    );
    assert.throws(
      () => serviceOpenIntroduce({ ...ok, clientKey: Buffer.alloc(32) }, service, sub),
      isCode('ALLIUM_ONION_INTRODUCE_AUTH'),
    );
  });

  it('refuses a RENDEZVOUS2 whose Y or AUTH changed, or that did not come from the key b', () => {
    for (const change of ['serviceKey', 'auth', 'b'] as const) {
      const { message, state } = clientIntroduce(intro, sub, plaintext);
      const opened =
        change === 'b'
          ? serviceOpenIntroduce(
              clientIntroduce(
                { ...intro, encKey: X25519Key.fromSecret(fill(0x34)).publicKey },
                sub,
                plaintext,
                x(),
              ).message,
              { authKey, encKey: X25519Key.fromSecret(fill(0x34)) },
              sub,
            )
          : serviceOpenIntroduce(message, service, sub);
      const answer = serviceRendezvous(opened.state).handshake;
      if (change !== 'b') answer[change] = Buffer.from(answer[change]).fill(0x99, 0, 1);
      assert.throws(() => clientRendezvous(state, answer), isCode('ALLIUM_ONION_RENDEZVOUS_AUTH'), change);
    }
  });

  it('finishes a client state once only', () => {
    const { message, state } = clientIntroduce(intro, sub, plaintext);
    const answer = serviceRendezvous(serviceOpenIntroduce(message, service, sub).state);
    clientRendezvous(state, answer.handshake);
    assert.throws(() => clientRendezvous(state, answer.handshake), isCode('ALLIUM_ONION_RENDEZVOUS_AUTH'));
  });
});

const PINNED = {
  introduce: '7c788669aefc917d49df0124ce8a29730e2162382496e42ed2606fe47b348493',
  auth: 'b70915444c17a67b0a56dfe0c48fa8aac3aaca8f9988e58f0da17787947dc8ff',
  keys: '1e3a02342bf09034aa1013e2d0ebd64f35c2ebae6de30fd7319f0b91d46b5a51',
};
