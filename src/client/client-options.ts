// What a client is started with (the options of `createClient` and `allium client`), what each stream
// asks for, and whom the client trusts for the consensus (protocol §6.5, §6.10).
import type { ConsensusTrust } from '../core/consensus-trust.js';
import type { Logger } from '../log.js';
import type { AuthoritySet } from '../wire/authority-docs.js';
import { ClientError } from './client-error.js';
import type { PathBiasOptions } from './path-bias.js';

export interface ClientOptions {
  /** A single directory: its URL and key. Or, instead, `authorities`. */
  directoryUrl?: string;
  directoryKey?: Buffer;
  /** The authority set: a consensus counts only when a strict majority of it signed it (§6.10). */
  authorities?: AuthoritySet;
  /** Caches (URLs) to ask for the consensus besides those the consensus lists (§6.11). */
  caches?: string[];
  /** Relays per circuit, at least 3 unless `allowShortPaths` (tests). */
  pathLength?: number;
  /**
   * The entry's keys from the link's own handshake, so the first EXTEND follows the CREATE at once
   * (protocol §3.6; entries whose release takes it). Default true; false runs ntor with the entry too.
   */
  linkBoundFirstHop?: boolean;
  allowShortPaths?: boolean;
  /**
   * A circuit takes new streams for this long after it was built (Tor: 10 minutes); once past it
   * and without a stream, it is closed.
   */
  circuitLifetimeMs?: number;
  /** A circuit that carried no stream for this long is closed (default 1 minute); spares are kept. */
  circuitIdleMs?: number;
  /**
   * How long reaching an onion service may take in all (descriptor, rendezvous, introductions:
   * default 2 minutes, Tor's SocksTimeout); past it the connect fails with ALLIUM_ONION_CONNECT_TIMEOUT.
   */
  onionConnectTimeoutMs?: number;
  /** Consensus wait at start: keep asking until it lists this many relays. */
  minRelays?: number;
  startTimeoutMs?: number;
  /**
   * Circuits built ahead of need (default 2), so a stream with a new isolation key does not wait for
   * a build. A spare is never used before it is handed to one isolation key.
   */
  spareCircuits?: number;
  /** Caches the last verified consensus here, so a restart rides out a directory outage. */
  dataDir?: string;
  /**
   * DATA cells in flight toward this client per entry link, shared by its circuits (protocol §5.1;
   * default 512, 2 MiB): more lets one download run faster on a long path, less keeps queues short.
   */
  receiveBudgetCells?: number;
  /** Thresholds of path-bias accounting per entry guard (src/client/path-bias.ts; defaults after Tor's). */
  pathBias?: PathBiasOptions;
  /**
   * Clock tolerance on the consensus's validity window (ms; default 60 s): how far this host's clock
   * may be off the authorities'. It also lets a consensus be used this long past its validUntil.
   */
  consensusSkewMs?: number;
  logger?: Logger;
}

export interface ConnectOptions {
  /** Streams with different isolation keys never share a circuit. */
  isolation?: string;
  /**
   * Resolve at once with a stream whose writes go right behind the BEGIN (one round trip saved
   * for a request known up front); the exit's answer settles `stream.connected`, and a refusal
   * fails the stream. Only the circuit choice is retried, never the stream.
   */
  optimistic?: boolean;
}

/** What the client's consensus must be signed by: the authority set, else the one directory's key. */
export function clientTrust(opts: ClientOptions): ConsensusTrust {
  if (opts.authorities) return { kind: 'authorities', set: opts.authorities };
  if (opts.directoryUrl === undefined || opts.directoryKey === undefined) {
    throw new ClientError(
      'ALLIUM_DIRECTORY_NO_KEY',
      'a client needs the authority set (--authorities FILE), or a directory URL and its key (--directory, --directory-key)',
    );
  }
  return { kind: 'directory', url: opts.directoryUrl.replace(/\/+$/, ''), key: opts.directoryKey };
}
