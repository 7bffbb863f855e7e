// What a relay is started with (the options of `allium relay` and of `Relay.start`), and whom it
// trusts for the consensus it registers under and serves as a cache (protocol §6.5, §6.11).
import type { ConsensusTrust } from '../core/consensus-trust.js';
import type { CellInspector } from '../core/relay-circuit-table.js';
import { AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AuthoritySet } from '../wire/authority-docs.js';
import type { RelayLimits } from './limits.js';
import type { LinkKeyPolicy } from './link-keys.js';
import type { OnionKeyPolicy } from './onion-keys.js';

export interface RelayOptions {
  dataDir: string;
  /** A single directory to register with. Or, instead, `authorities`. */
  directoryUrl?: string;
  directoryKey?: Buffer;
  /** Register with every authority of this set (protocol §6.5); its consensus is the set's. */
  authorities?: AuthoritySet;
  /**
   * Serve the consensus as a cache on this port (0: any free one) at --host, and name it in the
   * descriptor (protocol §6.11). Unset: no cache.
   */
  cachePort?: number;
  /** How often at most the cache fetches the consensus (default DEFAULT_CACHE_REFRESH_MS). */
  cacheRefreshMs?: number;
  nickname: string;
  host?: string;
  port?: number;
  /** The address to advertise; asked of the directory when absent. */
  address?: string;
  /** Exit policy lines; empty means not an exit. */
  exitPolicy?: string[];
  /** Allow private, loopback and link-local destinations (test networks). */
  allowPrivate?: boolean;
  bandwidth?: number;
  /** Relay ids (hex) of other relays run by the same operator: clients never put two in one path. */
  family?: string[];
  refreshMs?: number;
  /** How long to keep trying a directory that does not answer at start (default 2 minutes). */
  directoryWaitMs?: number;
  logger?: Logger;
  /** Resource limits (defaults in limits.ts). */
  limits?: Partial<RelayLimits>;
  /** DNS servers an exit asks (`IP`, `IP:PORT`, `[IPv6]:PORT`); default the system's. */
  dnsServers?: string[];
  /** Log destinations and peer addresses (off by default: relays keep no record of who talks to whom). */
  logSensitive?: boolean;
  /** How long an onion key serves, and how long the one it replaced still answers (onion-keys.ts). */
  onionKeyPolicy?: Partial<OnionKeyPolicy>;
  /** How long a link key serves, and how long its certificate outlives that (link-keys.ts). */
  linkKeyPolicy?: Partial<LinkKeyPolicy>;
  /**
   * Test hook: called with every relay cell body this relay handles, after it removed (forward) or added
   * (backward) its own layer, with who it came from and, forward, the cell command it came in; also
   * with the cells it sends toward the client itself (`own`; `peerRelayId` is then the peer they go
   * to). It may change the body, and set `from.command` to forward a cell under another command: a
   * tagging relay.
   */
  inspect?: CellInspector;
}

/** What the consensus must be signed by (null: a single directory without a configured key). */
export function relayTrust(opts: RelayOptions): ConsensusTrust | null {
  if (opts.authorities) return { kind: 'authorities', set: opts.authorities };
  if (opts.directoryUrl === undefined) {
    throw new AlliumError(
      'ALLIUM_RELAY_OPTIONS',
      'a relay registers with a directory (--directory URL) or with the authorities of a set (--authorities FILE)',
    );
  }
  if (opts.directoryKey === undefined) return null;
  return { kind: 'directory', url: opts.directoryUrl.replace(/\/+$/, ''), key: opts.directoryKey };
}
