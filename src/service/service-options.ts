// Implements docs/protocol.md §8 (what an onion service is started with): the client's options for
// its consensus, guards and circuits, and the service's own: the local server it forwards to, the
// virtual port clients name, its data directory and how many introduction points it keeps.
import os from 'node:os';
import type { ClientOptions } from '../client/client-options.js';
import { parseIp } from '../core/exit-policy.js';
import { defaultStreamBufferBytes } from '../core/stream-buffers.js';
import { ServiceError } from './service-error.js';

export interface ServiceOptions extends ClientOptions {
  /** The local server streams are forwarded to, as host:port (e.g. 127.0.0.1:8080 or [::1]:8080). */
  to: string;
  /** Where the service keeps its key (its address), and its client its guards and consensus. */
  dataDir: string;
  /** The port clients name in their streams (default 80); BEGIN to any other is refused. */
  port?: number;
  /** Introduction points kept (default 3, at most 10: what a descriptor names). */
  introPoints?: number;
  /** How often the descriptor is stored again though nothing changed (default 1 hour). */
  republishIntervalMs?: number;
  /**
   * Bytes all clients' streams together may hold for a local server that does not read them (with
   * the kernel's send buffers); past it the stream holding the most is closed (END RESOURCELIMIT).
   * Default: a sixteenth of memory, 32-256 MiB, as an exit's --max-exit-buffer.
   */
  maxBufferBytes?: number;
}

export const DEFAULT_VIRTUAL_PORT = 80;
export const DEFAULT_INTRO_POINTS = 3;
/** A descriptor names at most 10 introduction points (§8.4). */
export const MAX_INTRO_POINTS = 10;
/** Descriptors live 3 hours; storing them again every hour keeps two refreshes in hand (Tor: 1-2 h). */
export const DEFAULT_REPUBLISH_INTERVAL_MS = 3600_000;

/** The least maxBufferBytes: a few cells' worth, so a local server that reads at all can be reached. */
export const MIN_BUFFER_BYTES = 64 * 1024;

export interface ServiceTarget {
  host: string;
  port: number;
}

/** host:port of the local server; throws ALLIUM_SERVICE_TARGET for anything else. */
export function parseServiceTarget(to: string): ServiceTarget {
  const bad = (why: string) =>
    new ServiceError(
      'ALLIUM_SERVICE_TARGET',
      `the service's target ${JSON.stringify(to)} ${why}: give host:port, e.g. 127.0.0.1:8080`,
    );
  if (typeof to !== 'string') throw bad('is not a string');
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(to.trim());
  if (!m) throw bad('is not host:port');
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw bad('has no port from 1 to 65535');
  if (m[1] !== undefined && !parseIp(host)) throw bad('has an IPv6 address that does not parse');
  if (
    m[2] !== undefined &&
    !parseIp(host) &&
    !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(host)
  )
    throw bad('has a host that is neither an address nor a host name');
  return { host, port };
}

/** The service's own options, checked (ALLIUM_CLIENT_OPTIONS for one out of range). */
export function serviceSettings(opts: ServiceOptions): {
  target: ServiceTarget;
  virtualPort: number;
  introPoints: number;
  republishIntervalMs: number;
  maxBufferBytes: number;
} {
  const target = parseServiceTarget(opts.to);
  const virtualPort = opts.port ?? DEFAULT_VIRTUAL_PORT;
  if (!Number.isInteger(virtualPort) || virtualPort < 1 || virtualPort > 65535) {
    throw new ServiceError('ALLIUM_CLIENT_OPTIONS', `the service's port must be 1-65535, got ${opts.port}`);
  }
  const introPoints = opts.introPoints ?? DEFAULT_INTRO_POINTS;
  if (!Number.isInteger(introPoints) || introPoints < 1 || introPoints > MAX_INTRO_POINTS) {
    throw new ServiceError(
      'ALLIUM_CLIENT_OPTIONS',
      `introPoints must be 1-${MAX_INTRO_POINTS}, got ${opts.introPoints}`,
    );
  }
  const republishIntervalMs = opts.republishIntervalMs ?? DEFAULT_REPUBLISH_INTERVAL_MS;
  if (!(republishIntervalMs >= 1000)) {
    throw new ServiceError('ALLIUM_CLIENT_OPTIONS', 'republishIntervalMs must be at least 1000');
  }
  const maxBufferBytes = opts.maxBufferBytes ?? defaultStreamBufferBytes(os.totalmem());
  // Below a cell's worth no stream could deliver anything before being closed.
  if (!Number.isSafeInteger(maxBufferBytes) || maxBufferBytes < MIN_BUFFER_BYTES) {
    throw new ServiceError(
      'ALLIUM_CLIENT_OPTIONS',
      `maxBufferBytes must be an integer of at least ${MIN_BUFFER_BYTES}, got ${opts.maxBufferBytes}`,
    );
  }
  if (typeof opts.dataDir !== 'string' || opts.dataDir === '') {
    throw new ServiceError(
      'ALLIUM_CLIENT_OPTIONS',
      'a service needs dataDir: its key (its address) is kept there',
    );
  }
  return { target, virtualPort, introPoints, republishIntervalMs, maxBufferBytes };
}
