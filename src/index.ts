// Implements docs/library.md: the package's entry point, `import { createClient } from 'allium'`.
import type { Duplex } from 'node:stream';
import { AlliumClient, ClientError } from './client/client.js';
import { type CircuitView, ClientMonitor } from './client/monitor.js';
import { openAuthoritySet } from './core/authority-set.js';
import { createLogger, type Logger } from './log.js';
import { fetchOver } from './net/fetch.js';
import { OnionService } from './service/service.js';
import {
  AUTHORITY_SET_FORMAT,
  AUTHORITY_SET_VERSION,
  type AuthorityEntry,
  type AuthoritySet,
} from './wire/authority-docs.js';

export { AlliumClient, ClientError } from './client/client.js';
export type { CircuitView, StreamView } from './client/monitor.js';
export { StreamError } from './core/stream-mux.js';
export { type AlliumCode, AlliumError, ErrorCode } from './errors.js';
export { FetchError } from './net/fetch.js';
export { OnionService, type ServiceStats } from './service/service.js';

export interface CreateClientOptions {
  /**
   * The directory authorities: the set file's contents (protocol.md §6.5), as its JSON text or as
   * the parsed object. A consensus counts only when a strict majority of them signed it. Instead of
   * `directory` and `directoryKey`.
   */
  authorities?: string | { format?: string; version?: number; authorities: readonly AuthorityEntry[] };
  /** Consensus caches to ask besides those the consensus lists, e.g. http://192.0.2.20:7100. */
  caches?: string[];
  /** A single directory's URL, e.g. http://127.0.0.1:7000 (or `authorities`). */
  directory?: string;
  /** The directory's Ed25519 public key, base64 (as `allium directory` prints it) or 32 bytes. */
  directoryKey?: string | Uint8Array;
  /** Clock tolerance on the consensus's validity window (ms; default 60 s). */
  consensusSkewMs?: number;
  /** Relays per circuit (default 3, at least 3). */
  pathLength?: number;
  /** Cache the last verified consensus here, so a restart rides out a directory outage. */
  dataDir?: string;
  /** The isolation key of calls that name none: callers with different keys never share a circuit. */
  isolation?: string;
  /** Extra trusted CA certificates (PEM) for https URLs, besides the system's. */
  ca?: string | Buffer | (string | Buffer)[];
  /** How long createClient waits for a usable consensus (default 30 s). */
  startTimeoutMs?: number;
  /** How long reaching a `.allium` service may take in all (default 2 minutes; ALLIUM_ONION_CONNECT_TIMEOUT). */
  onionConnectTimeoutMs?: number;
  /** Default: no logs. A pino logger, or a level name to log to stderr. */
  logger?: Logger | string;
}

export interface IsolationOption {
  /** Streams with different isolation keys never share a circuit. */
  isolation?: string;
}

export interface ClientTotals {
  bytesIn: number;
  bytesOut: number;
  circuitsBuilt: number;
  circuitsFailed: number;
  streamsOpened: number;
  streamsFailed: number;
}

export type AlliumRequestInit = RequestInit & IsolationOption;

export interface Client {
  /** WHATWG fetch through the network; the Response body streams as it arrives. */
  fetch(input: string | URL | Request, init?: AlliumRequestInit): Promise<Response>;
  /** A byte stream to host:port through the network (TLS, if any, is yours to add). */
  connect(host: string, port: number, opts?: IsolationOption): Promise<Duplex>;
  /** Later requests use new circuits; idle old circuits close. */
  newCircuits(): Promise<void>;
  /** The circuits open now, as paths of relay nicknames, with their streams and bytes. */
  circuits(): CircuitView[];
  /** Totals since createClient: stream payload bytes through the network, circuits and streams. */
  stats(): ClientTotals;
  /** Closes every circuit, stream and link; the process can exit afterwards. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** The underlying client, for what this interface does not cover. */
  readonly raw: AlliumClient;
}

function decodeKey(k: string | Uint8Array): Buffer {
  const b = typeof k === 'string' ? Buffer.from(k, 'base64') : Buffer.from(k);
  if (b.length !== 32)
    throw new ClientError(
      'ALLIUM_CLIENT_DIRECTORY_KEY',
      `directoryKey must be the directory's base64 Ed25519 public key (32 bytes), got ${b.length} bytes`,
    );
  return b;
}

/** The authority set, checked as a set file is (protocol.md §6.5); or the one directory and its key. */
function clientTrust(
  opts: CreateClientOptions,
): { authorities: AuthoritySet } | { directoryUrl: string; directoryKey: Buffer } {
  if (opts?.authorities !== undefined) {
    if (opts.directory !== undefined || opts.directoryKey !== undefined) {
      throw new ClientError(
        'ALLIUM_CLIENT_OPTIONS',
        'createClient takes either authorities, or directory and directoryKey: not both',
      );
    }
    const a = opts.authorities;
    const text =
      typeof a === 'string'
        ? a
        : JSON.stringify({ format: AUTHORITY_SET_FORMAT, version: AUTHORITY_SET_VERSION, ...a });
    return { authorities: openAuthoritySet(text) };
  }
  if (!opts || typeof opts.directory !== 'string')
    throw new ClientError(
      'ALLIUM_CLIENT_OPTIONS',
      "createClient needs { authorities: the set file's contents } or { directory: URL, directoryKey: base64 }",
    );
  if (opts.directoryKey === undefined)
    throw new ClientError(
      'ALLIUM_CLIENT_DIRECTORY_KEY',
      'createClient needs directoryKey: the key `allium directory` (or `allium testnet`) prints as key=...',
    );
  return { directoryUrl: opts.directory, directoryKey: decodeKey(opts.directoryKey) };
}

/** Fetches and verifies the consensus, then resolves with a client ready to use. */
export async function createClient(opts: CreateClientOptions): Promise<Client> {
  const trust = clientTrust(opts);
  const logger =
    typeof opts.logger === 'string' ? createLogger({ level: opts.logger, name: 'allium' }) : opts.logger;
  const raw = await AlliumClient.start({
    ...trust,
    caches: opts.caches,
    consensusSkewMs: opts.consensusSkewMs,
    pathLength: opts.pathLength,
    dataDir: opts.dataDir,
    startTimeoutMs: opts.startTimeoutMs,
    onionConnectTimeoutMs: opts.onionConnectTimeoutMs,
    logger,
  });
  const monitor = new ClientMonitor(raw);
  // The library's keys live apart from SOCKS and HTTP proxy credentials.
  const key = (k: string | undefined) => {
    const v = k ?? opts.isolation;
    return v === undefined ? '' : `library:${v}`;
  };
  let closed: Promise<void> | null = null;
  const client: Client = {
    raw,
    fetch: (input, init) => {
      const { isolation, ...rest } = init ?? {};
      return fetchOver(input, rest, {
        connect: (host, port) => monitor.connect(host, port, { isolation: key(isolation) }),
        ca: opts.ca,
      });
    },
    connect: (host, port, o) => monitor.connect(host, port, { isolation: key(o?.isolation) }),
    newCircuits: () => monitor.newCircuits(),
    circuits: () => monitor.circuits(),
    stats: () => {
      const b = monitor.bytes();
      const s = raw.stats;
      return {
        bytesIn: b.in,
        bytesOut: b.out,
        circuitsBuilt: s.circuitsBuilt,
        circuitsFailed: s.circuitsFailed,
        streamsOpened: s.streamsOpened,
        streamsFailed: s.streamsFailed,
      };
    },
    close: () => {
      closed ??= raw.close();
      return closed;
    },
    [Symbol.asyncDispose]: () => client.close(),
  };
  return client;
}

export interface CreateServiceOptions
  extends Pick<
    CreateClientOptions,
    'authorities' | 'caches' | 'directory' | 'directoryKey' | 'consensusSkewMs' | 'startTimeoutMs' | 'logger'
  > {
  /** The local server clients reach, host:port (e.g. 127.0.0.1:8080). */
  to: string;
  /** Where the service keeps its key (the address: the same dataDir, the same address) and its guards. */
  dataDir: string;
  /** The port clients name (default 80); streams to any other are refused. */
  port?: number;
  /** Introduction points kept (default 3, at most 10). */
  introPoints?: number;
  /** How often the descriptor is stored again although nothing changed (ms, default 1 hour). */
  republishIntervalMs?: number;
  /**
   * Bytes all clients' streams together may hold for a local server that does not read them; past it
   * the stream holding the most is closed (the client sees END RESOURCELIMIT). Default: a sixteenth
   * of memory, 32-256 MiB; at least 64 KiB.
   */
  maxBufferBytes?: number;
}

/**
 * Starts an onion service (protocol.md §8): resolves once its key is loaded (or made), with its
 * `address`; `ready` resolves once clients can reach it. Throws ALLIUM_SERVICE_TARGET for a `to`
 * that is not host:port, ALLIUM_SERVICE_KEY for a key file of the wrong size or readable by others.
 */
export async function createService(opts: CreateServiceOptions): Promise<OnionService> {
  const trust = clientTrust(opts);
  const logger =
    typeof opts.logger === 'string' ? createLogger({ level: opts.logger, name: 'allium' }) : opts.logger;
  return OnionService.start({
    ...trust,
    caches: opts.caches,
    consensusSkewMs: opts.consensusSkewMs,
    startTimeoutMs: opts.startTimeoutMs,
    logger,
    to: opts.to,
    dataDir: opts.dataDir,
    port: opts.port,
    introPoints: opts.introPoints,
    republishIntervalMs: opts.republishIntervalMs,
    maxBufferBytes: opts.maxBufferBytes,
  });
}
