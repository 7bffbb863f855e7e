// Implements docs/directory-api.md "POST /v1/relays" step 6 (docs/protocol.md §1.2 from the directory's
// side): before listing a relay, connect back to the address and port it registered and complete a link
// handshake in which it proves the identity key the descriptor names.
import { type AlliumError, ErrorCode } from '../errors.js';
import { connectLink } from '../net/link.js';
import type { RelayDescriptor } from '../wire/directory-docs.js';
import { DirectoryError } from './errors.js';

/** Called before a new or changed relay is listed; throwing keeps it out, and the message says why. */
export type ReachabilityCheck = (d: RelayDescriptor) => Promise<void>;

/** Well under the relay's 10 s request timeout, so the relay hears the reason rather than a timeout. */
export const REACHABILITY_TIMEOUT_MS = 5000;

/** Turns a link failure into the reason an operator reads after "not reachable from the directory at A:P: ". */
export function reachabilityReason(err: unknown, timeoutMs: number): string {
  const code = (err as AlliumError)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  switch (code) {
    case ErrorCode.LINK_CONNECT: {
      // "cannot reach relay at A:P: connect ECONNREFUSED A:P" -> "connect ECONNREFUSED A:P"
      const inner = msg.replace(/^cannot reach relay at .*?:\d+: /, '');
      return `TCP connection failed (${inner}): is the relay listening on this address and port, and open to the directory (firewall, NAT port forwarding)?`;
    }
    case ErrorCode.LINK_TIMEOUT:
      return `no link handshake within ${timeoutMs} ms (${msg}): a firewall may drop the connection, or something other than an Allium relay listens there`;
    case ErrorCode.LINK_IDENTITY:
      return `a different relay answers there (${msg})`;
    case ErrorCode.LINK_CLOSED:
    case ErrorCode.LINK_IO:
    case ErrorCode.LINK_HANDSHAKE:
      return `the link handshake failed (${msg}): is this port the relay's own?`;
    default:
      return `the link handshake failed (${code ? `${code}: ` : ''}${msg})`;
  }
}

/** The check `allium directory` runs unless started with --no-reachability-check. */
export function linkReachabilityCheck(timeoutMs = REACHABILITY_TIMEOUT_MS): ReachabilityCheck {
  return async (d) => {
    let link: Awaited<ReturnType<typeof connectLink>>;
    try {
      link = await connectLink({
        host: d.address,
        port: d.port,
        relayId: Buffer.from(d.id, 'hex'),
        me: { identity: null },
        timeoutMs,
      });
    } catch (err) {
      throw new DirectoryError(ErrorCode.RELAY_UNREACHABLE, 400, reachabilityReason(err, timeoutMs), {
        cause: err,
      });
    }
    link.close();
  };
}
