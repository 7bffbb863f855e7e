// Implements the client's side of docs/protocol.md §2.3 (END reasons): why the exit did not open a
// stream, in words a user can act on.
import { EndReason, endReasonName } from '../wire/constants.js';

/** The exit's END reason for a stream it did not open, in words a user can act on. */
export function refusalMessage(reason: number, host: string, port: number): string {
  const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const couldNot = (why: string) => `the exit could not connect to ${target} (${why})`;
  switch (reason) {
    case EndReason.CONNECTREFUSED:
      return couldNot('connection refused: nothing listens on that port');
    case EndReason.RESOLVEFAILED:
      return `the exit could not resolve ${host} (no such host, or its DNS failed)`;
    case EndReason.TIMEOUT:
      return couldNot('timed out');
    case EndReason.NOROUTE:
      return couldNot('no route to the host');
    case EndReason.CONNRESET:
      return couldNot('connection reset');
    case EndReason.EXITPOLICY:
      return `the exit's policy does not allow ${target}`;
    case EndReason.RESOURCELIMIT:
      return `the exit refused a stream to ${target}: it is at its limit of streams`;
    default:
      return `the exit refused the stream to ${target}: ${endReasonName(reason)}`;
  }
}
