// Implements docs/protocol.md §3.6 (the first hop's keys bound to the link: handshake type 3).
import { hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { LINK_BOUND_HDATA_LEN, LINK_BOUND_REPLY_LEN } from '../wire/constants.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import type { HopKeys } from './ntor.js';

export const LINK_BOUND_PROTOID = 'allium-link-bound-hop-1';
const T_KEY = Buffer.from(`${LINK_BOUND_PROTOID}:key_extract`, 'ascii');
const M_EXPAND = Buffer.from(`${LINK_BOUND_PROTOID}:key_expand`, 'ascii');
const KEY_LEN = 32;

/** The keys of the hop and the relay's confirmation, as both ends derive them. */
export interface LinkBoundHop {
  keys: HopKeys;
  /** What the relay answers in CREATED, and the client checks. */
  confirm: Buffer;
}

/**
 * Kf | Kb | Mf | Mb | confirm | Kt = HKDF-SHA256(ikm = link secret, salt = t_key, info = m_expand | X, 192 bytes). The link
 * secret came from the link's Noise handshake (ephemeral X25519 on both sides, the relay proven by
 * its certificate), so the hop inherits that handshake's forward secrecy and authentication.
 */
export function linkBoundHop(linkSecret: Buffer, X: Buffer): LinkBoundHop {
  expectLength(linkSecret, 32, 'a link secret');
  if (X.length !== LINK_BOUND_HDATA_LEN) {
    throw new CryptoError(
      CryptoErrorCode.HANDSHAKE_MALFORMED,
      `a link-bound CREATE carries ${LINK_BOUND_HDATA_LEN} bytes, got ${X.length}`,
    );
  }
  const okm = Buffer.from(
    hkdfSync(
      'sha256',
      linkSecret,
      T_KEY,
      Buffer.concat([M_EXPAND, X]),
      4 * KEY_LEN + LINK_BOUND_REPLY_LEN + KEY_LEN,
    ),
  );
  return {
    keys: {
      kf: Buffer.from(okm.subarray(0, 32)),
      kb: Buffer.from(okm.subarray(32, 64)),
      mf: Buffer.from(okm.subarray(64, 96)),
      mb: Buffer.from(okm.subarray(96, 128)),
      kt: Buffer.from(okm.subarray(160, 192)),
    },
    confirm: Buffer.from(okm.subarray(128, 160)),
  };
}

/** Client side: a fresh X for the CREATE, and the hop it gives on this link. */
export function linkBoundHopStart(linkSecret: Buffer): { hdata: Buffer; hop: LinkBoundHop } {
  const hdata = randomBytes(LINK_BOUND_HDATA_LEN);
  return { hdata, hop: linkBoundHop(linkSecret, hdata) };
}

/** Client side: whether the relay's CREATED answer is the confirmation both ends should share. */
export function linkBoundConfirmed(hop: LinkBoundHop, reply: Buffer): boolean {
  return reply.length === LINK_BOUND_REPLY_LEN && timingSafeEqual(reply, hop.confirm);
}
