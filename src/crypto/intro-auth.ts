// Implements docs/protocol.md §8.6 (ESTABLISH_INTRO's proofs): signed by the introduction point's
// auth key, so only the service can register it, and MACed under a key of this circuit, so the
// message cannot be replayed on another circuit or at another relay.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { OnionError } from '../wire/onion-errors.js';
import {
  type EstablishIntro,
  establishIntroAuthInput,
  establishIntroSignedInput,
} from '../wire/onion-messages.js';
import { expectLength } from './errors.js';
import { type IdentityKey, verifySignature } from './keys.js';

export const ESTABLISH_INTRO_DOMAIN = 'allium-hs-establish-intro-v1\n';
const BINDING_LABEL = Buffer.from('allium-circuit-binding-v1', 'ascii');

/**
 * HMAC-SHA256(Mf, "allium-circuit-binding-v1"): a secret of the circuit's origin and one hop, from
 * that hop's forward MAC key (§3.2). Forward tags MAC 4084-byte inputs under Mf, this 25 bytes, so
 * no tag is ever a binding or the other way round.
 */
export function circuitBinding(mf: Buffer): Buffer {
  expectLength(mf, 32, 'a forward MAC key');
  return createHmac('sha256', mf).update(BINDING_LABEL).digest();
}

/** Service: ESTABLISH_INTRO for the circuit whose last hop has `binding`. */
export function signEstablishIntro(
  authKey: IdentityKey,
  limits: { rate: number; burst: number },
  binding: Buffer,
): EstablishIntro {
  const head = { authKey: authKey.publicKey, rate: limits.rate, burst: limits.burst };
  const handshakeAuth = createHmac('sha256', binding).update(establishIntroAuthInput(head)).digest();
  const signature = authKey.sign(
    ESTABLISH_INTRO_DOMAIN,
    establishIntroSignedInput({ ...head, handshakeAuth }),
  );
  return { ...head, handshakeAuth, signature };
}

/** Introduction point: throws ALLIUM_ONION_ESTABLISH_INTRO_AUTH unless both proofs hold. */
export function verifyEstablishIntro(m: EstablishIntro, binding: Buffer): void {
  const expected = createHmac('sha256', binding).update(establishIntroAuthInput(m)).digest();
  if (m.handshakeAuth.length !== expected.length || !timingSafeEqual(expected, m.handshakeAuth)) {
    throw new OnionError(
      'ALLIUM_ONION_ESTABLISH_INTRO_AUTH',
      'ESTABLISH_INTRO was made for another circuit (handshake auth mismatch)',
    );
  }
  if (!verifySignature(m.authKey, ESTABLISH_INTRO_DOMAIN, establishIntroSignedInput(m), m.signature)) {
    throw new OnionError(
      'ALLIUM_ONION_ESTABLISH_INTRO_AUTH',
      'ESTABLISH_INTRO is not signed by the key it names',
    );
  }
}
