// Resource limits of a relay (docs/threat-model.md, "Flooding and resource exhaustion"): one hostile
// peer may cost itself circuits, never the relay its memory or CPU.
import os from 'node:os';
import { DEFAULT_DESCRIPTOR_STORE_LIMITS } from '../core/descriptor-store.js';
import { DEFAULT_ONION_RELAY_LIMITS, type OnionRelayLimits } from '../core/onion-relay.js';
import { defaultStreamBufferBytes } from '../core/stream-buffers.js';

export { TokenBucket } from '../core/token-bucket.js';

export interface RelayLimits extends OnionRelayLimits {
  /** Circuits one link may have open; more CREATEs get DESTROY(RESOURCELIMIT). */
  circuitsPerLink: number;
  /** Streams one circuit may have open at the exit; more BEGINs get END(RESOURCELIMIT). */
  streamsPerCircuit: number;
  /** CREATE cells per link per second (sustained), and the burst allowed above it: ntor costs CPU. */
  createsPerSecond: number;
  createBurst: number;
  /** Link handshakes in progress at once; further connections are closed at once. */
  pendingHandshakes: number;
  /**
   * Bytes queued toward one peer. Past a quarter of it an exit stops reading the destinations of
   * the circuits with cells waiting on that link, until the queue is down to an eighth; past all of
   * it the circuit with the most queued is closed, then the next, until the queue is under it
   * again; past four times it (a last resort) the link is closed.
   */
  linkQueueBytes: number;
  /** A link whose socket took nothing for this long while cells wait is closed: its peer stopped reading. */
  linkStallMs: number;
  /**
   * A circuit that carried no cell for this long (and, at an exit, has no stream open) is destroyed
   * both ways: a client that forgot it (or never meant to use it) holds nothing here for ever.
   */
  idleCircuitMs: number;
  /**
   * Bytes queued toward all peers together; past this the link with the most queued is closed, and
   * the next, until the total is under it again. Many stalled peers, each under linkQueueBytes,
   * would otherwise add up to more memory than the machine has.
   */
  totalQueueBytes: number;
  /** A link that carries no circuit for this long is closed (it holds a socket for nothing). */
  idleLinkMs: number;
  /** ntor answers per second made on the relaying thread; past that, worker threads answer. */
  inlineHandshakesPerSecond: number;
  /** Worker threads for handshakes, started on first need (0: every answer on the relaying thread). */
  handshakeThreads: number;
  /** An exit's DNS lookups in progress, all circuits together; more BEGINs by name get END(RESOURCELIMIT). */
  dnsLookups: number;
  /** An exit's DNS lookups in progress for one circuit; more BEGINs by name get END(RESOURCELIMIT). */
  dnsLookupsPerCircuit: number;
  /** How long one DNS lookup may take at an exit, ms. */
  dnsTimeoutMs: number;
  /**
   * Bytes an exit holds for one circuit's destinations (received, not yet taken by their sockets);
   * past it the exit withholds the circuit's SENDMEs, so the client's circuit window closes.
   */
  exitCircuitBufferBytes: number;
  /** Bytes an exit holds for all destinations together; past it the stream holding the most is closed. */
  exitBufferBytes: number;
  /** Onion service descriptors this relay stores at most (§8.5); past it a new key's is answered FULL. */
  onionDescriptors: number;
  /** Descriptor bytes it stores at most. */
  onionDescriptorBytes: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  circuitsPerLink: 8192,
  streamsPerCircuit: 512,
  createsPerSecond: 200,
  createBurst: 400,
  pendingHandshakes: 4096,
  linkQueueBytes: 64 * 1024 * 1024,
  linkStallMs: 30_000,
  idleCircuitMs: 600_000,
  totalQueueBytes: defaultTotalQueueBytes(os.totalmem()),
  idleLinkMs: 180_000,
  inlineHandshakesPerSecond: 500,
  handshakeThreads: 1,
  dnsLookups: 1024,
  dnsLookupsPerCircuit: 32,
  dnsTimeoutMs: 5000,
  exitCircuitBufferBytes: 4 * 1024 * 1024,
  exitBufferBytes: defaultStreamBufferBytes(os.totalmem()),
  onionDescriptors: DEFAULT_DESCRIPTOR_STORE_LIMITS.count,
  onionDescriptorBytes: DEFAULT_DESCRIPTOR_STORE_LIMITS.bytes,
  ...DEFAULT_ONION_RELAY_LIMITS,
};

/** A sixteenth of the machine's memory, at least 32 MiB and at most 256 MiB (as a service's). */
export const defaultExitBufferBytes = defaultStreamBufferBytes;

/** A quarter of the machine's memory, at least 256 MiB and at most 4 GiB (a Raspberry Pi: 256 MiB). */
export function defaultTotalQueueBytes(totalMemoryBytes: number): number {
  const MiB = 1024 * 1024;
  return Math.min(4096 * MiB, Math.max(256 * MiB, Math.floor(totalMemoryBytes / 4 / MiB) * MiB));
}
