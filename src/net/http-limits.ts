// The limits every listening HTTP port shares (docs/configuration.md "Listening ports"): how long a
// client may take to send its headers and its request, how long an idle keep-alive connection is
// kept, and how many connections are open at once, so slow or stalled clients cannot hold sockets.
import http from 'node:http';
import { AlliumError } from '../errors.js';

export interface HttpServerLimits {
  /** The request line and headers must arrive within this (ms). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (ms); 0: no limit past the headers. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (ms). */
  keepAliveTimeoutMs: number;
  /** Connections open at once; more are closed as they arrive, before any byte is read. */
  maxConnections: number;
}

export const DEFAULT_HTTP_LIMITS: HttpServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1024,
};

/** How often node checks the two timeouts: their granularity (node's own default is 30 s). */
const TIMEOUT_CHECK_INTERVAL_MS = 1000;

/** Counters of one limited server. */
export interface HttpLimitStats {
  /** Connections closed on arrival because maxConnections were open. */
  refused: number;
  /** Requests answered 408 because headers or body did not arrive in time. */
  timeouts: number;
}

export function httpLimits(overrides: Partial<HttpServerLimits> = {}): HttpServerLimits {
  const l = { ...DEFAULT_HTTP_LIMITS, ...overrides };
  if (
    !(
      l.headersTimeoutMs > 0 &&
      l.requestTimeoutMs >= 0 &&
      l.keepAliveTimeoutMs > 0 &&
      l.maxConnections >= 1
    ) ||
    (l.requestTimeoutMs > 0 && l.requestTimeoutMs < l.headersTimeoutMs)
  ) {
    throw new AlliumError(
      'ALLIUM_HTTP_LIMITS',
      'HTTP limits: timeouts must be positive (requestTimeoutMs 0 or at least headersTimeoutMs), maxConnections >= 1',
    );
  }
  return l;
}

/** An HTTP server enforcing `limits`; `stats` counts what they refused. */
export function createLimitedHttpServer(
  limits: HttpServerLimits,
  handler?: http.RequestListener,
  stats: HttpLimitStats = { refused: 0, timeouts: 0 },
): { server: http.Server; stats: HttpLimitStats } {
  const server = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => {
    stats.refused++;
  });
  return { server, stats };
}

/** The error node reports (on 'clientError') when headers or a request did not arrive in time. */
export function isRequestTimeout(err: Error & { code?: string }): boolean {
  return err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
}

/** A complete `408 Request Timeout` answer that closes the connection. */
export function requestTimeoutResponse(type: string, body: string): string {
  return (
    `HTTP/1.1 408 Request Timeout\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}
