// Implements docs/protocol.md §4.1 (EXTEND) at a relay: where an EXTEND may lead, no I/O.

import { HandshakeType } from '../wire/constants.js';
import { decodeExtend, type ExtendRequest } from '../wire/relay-messages.js';
import { isPrivateAddress } from './exit-policy.js';

/**
 * The relay an EXTEND names, or null when this relay does not go there: a handshake it does not
 * forward, itself, or a private address while this relay is on a public one (that would let anyone
 * probe the relay's own network; relays of a test or LAN network, private themselves, may). Throws
 * on a malformed EXTEND.
 */
export function extendTarget(data: Buffer, me: { id: Buffer; address: string }): ExtendRequest | null {
  const req = decodeExtend(data);
  const probesInside = isPrivateAddress(req.address) && !isPrivateAddress(me.address);
  if (req.htype !== HandshakeType.NTOR_X25519_SHA256 || req.relayId.equals(me.id) || probesInside)
    return null;
  return req;
}
