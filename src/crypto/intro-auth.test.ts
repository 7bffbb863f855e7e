import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OnionError } from '../wire/onion-errors.js';
import { decodeEstablishIntro, encodeEstablishIntro } from '../wire/onion-messages.js';
import { circuitBinding, signEstablishIntro, verifyEstablishIntro } from './intro-auth.js';
import { IdentityKey, sha256 } from './keys.js';

const isAuth = (e: unknown) => e instanceof OnionError && e.code === 'ALLIUM_ONION_ESTABLISH_INTRO_AUTH';
const authKey = IdentityKey.fromSeed(Buffer.alloc(32, 0x44));
const binding = circuitBinding(Buffer.alloc(32, 0x40));

describe('ESTABLISH_INTRO proofs (§8.6)', () => {
  it('gives the pinned message for fixed keys, which verifies on its circuit', () => {
    const m = signEstablishIntro(authKey, { rate: 25, burst: 200 }, binding);
    assert.equal(sha256(encodeEstablishIntro(m)).toString('hex'), PINNED);
    verifyEstablishIntro(decodeEstablishIntro(encodeEstablishIntro(m)), binding);
  });

  it('is refused on another circuit, with changed limits, or signed by another key', () => {
    const m = signEstablishIntro(authKey, { rate: 25, burst: 200 }, binding);
    assert.throws(() => verifyEstablishIntro(m, circuitBinding(Buffer.alloc(32, 0x41))), isAuth);
    assert.throws(() => verifyEstablishIntro({ ...m, rate: 65535 }, binding), isAuth);
    const other = signEstablishIntro(
      IdentityKey.fromSeed(Buffer.alloc(32, 0x45)),
      { rate: 25, burst: 200 },
      binding,
    );
    assert.throws(() => verifyEstablishIntro({ ...m, signature: other.signature }, binding), isAuth);
    assert.throws(() => verifyEstablishIntro({ ...other, authKey: m.authKey }, binding), isAuth);
  });
});

const PINNED = '4a07e770a0df604ce3ae31c8c1a40a43adb459b910417794c4cb83507f9ee807';
