// Implements docs/protocol.md §6.3 (building the consensus the directory signs).
import { ExitPolicy } from '../core/exit-policy.js';
import {
  type Consensus,
  type ConsensusRelay,
  descriptorFields,
  type RelayDescriptor,
} from '../wire/directory-docs.js';

export interface ConsensusTiming {
  /** The consensus is rebuilt after this long even when nothing changed (ms). */
  freshMs: number;
  /** Clients accept it for this long (ms); longer than freshMs so they ride out a directory outage. */
  validMs: number;
}

/**
 * The next serial: one more than the last, and never below the build time in ms, so serials keep
 * increasing across restarts even if the last one was not yet saved when the directory died.
 */
export function nextSerial(previous: number, now: number): number {
  return Math.max(previous + 1, Math.floor(now));
}

/**
 * A relay is an exit when its policy accepts something (§6.2: empty or reject-all is a non-exit). The
 * rules are read literally (allowPrivate): a descriptor does not say whether its relay refuses private
 * destinations, and a test network's exits accept only loopback.
 */
export function isExitDescriptor(d: RelayDescriptor): boolean {
  try {
    return ExitPolicy.fromLines(d.exitPolicy, { allowPrivate: true }).isExit();
  } catch {
    // Policies were checked at registration; a parser change since then demotes rather than crashes.
    return false;
  }
}

export function relayFlags(d: RelayDescriptor): string[] {
  return isExitDescriptor(d) ? ['Running', 'Exit'] : ['Running'];
}

export function buildConsensus(
  relays: readonly RelayDescriptor[],
  opts: ConsensusTiming & { serial: number; now: number; directoryKey: string },
): Consensus {
  const listed: ConsensusRelay[] = relays.map((d) => ({ ...descriptorFields(d), flags: relayFlags(d) }));
  return {
    network: 'allium',
    serial: opts.serial,
    validAfter: opts.now,
    freshUntil: opts.now + opts.freshMs,
    validUntil: opts.now + opts.validMs,
    directoryKey: opts.directoryKey,
    relays: listed,
  };
}
