// Implements docs/directory-api.md (docs/protocol.md §6.4): the directory's HTTP routes and error mapping.
// Bad input of any kind gets a 4xx JSON error; only a fault of our own is a 500.
import * as v from 'valibot';
import { type AlliumCode, AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import { type HttpLimitStats, type HttpServerLimits, httpLimits } from '../net/http-limits.js';
import { decodePath, matchRoute, type Route } from '../net/http-routes.js';
import {
  type HttpRequestIn,
  type HttpResponseOut,
  type HttpServerHandle,
  type JsonBodyResult,
  readJsonBody,
  serveHttp,
} from '../net/http-server.js';
import { DirectoryError, errorBody } from './errors.js';
import type { RateLimiter } from './rate-limit.js';
import type { DirectoryService } from './service.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

/** A client that takes nothing of an answer for this long (a stalled download of the consensus) is dropped. */
const STALLED_READER_TIMEOUT_MS = 30_000;

const idParam = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));

/** Strips the IPv4-mapped prefix a dual-stack socket reports, so IPv4 peers see a plain dotted quad. */
export function peerAddress(remote: string | undefined): string {
  if (!remote) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

function parseId(params: Record<string, string>): string {
  const r = v.safeParse(idParam, params.id);
  if (!r.success) {
    throw new DirectoryError('ALLIUM_RELAY_ID_INVALID', 400, 'a relay id is 64 lowercase hex digits');
  }
  return r.output;
}

const periodParam = v.pipe(v.string(), v.regex(/^[0-9]{1,16}$/));

function parsePeriod(params: Record<string, string>): number {
  const r = v.safeParse(periodParam, params.validAfter);
  if (!r.success) {
    throw new DirectoryError(
      'ALLIUM_HTTP_BAD_REQUEST',
      400,
      'a voting period is its start in Unix milliseconds',
    );
  }
  return Number(r.output);
}

function json(status: number, value: unknown, headers?: Record<string, string>): HttpResponseOut {
  return { status, type: 'application/json; charset=utf-8', body: JSON.stringify(value), headers };
}

function failure(
  status: number,
  code: AlliumCode,
  message: string,
  extra: { headers?: Record<string, string>; close?: boolean } = {},
): HttpResponseOut {
  return { ...json(status, errorBody(code, message), extra.headers), close: extra.close };
}

/** Why a body could not be read, as the answer (the connection closes: the client may send more). */
function bodyFailure(reason: Exclude<JsonBodyResult, { ok: true }>['reason']): HttpResponseOut {
  const close = { close: true };
  switch (reason) {
    case 'too-large':
      return failure(413, 'ALLIUM_HTTP_TOO_LARGE', `request body exceeds ${BODY_LIMIT_BYTES} bytes`, close);
    case 'media-type':
      return failure(415, 'ALLIUM_HTTP_MEDIA_TYPE', 'send the body as application/json', close);
    case 'bad-json':
      return failure(
        400,
        'ALLIUM_HTTP_BAD_JSON',
        'the request body is not valid JSON (or has a __proto__/constructor key)',
        close,
      );
    case 'incomplete':
      return failure(
        400,
        'ALLIUM_HTTP_BAD_REQUEST',
        'the request body did not match its Content-Length',
        close,
      );
  }
}

/** Answers a 408 and closes: what the server sends when headers or body are too slow. */
const TIMEOUT_PAGE = {
  type: 'application/json',
  body: JSON.stringify(
    errorBody('ALLIUM_HTTP_TIMEOUT', 'the request did not arrive in time: send headers and body promptly'),
  ),
};

/** Answers a 400 and closes: what the server sends for bytes that are not HTTP. */
const MALFORMED_PAGE = {
  type: 'application/json',
  body: JSON.stringify(errorBody('ALLIUM_HTTP_MALFORMED', 'the request is not valid HTTP/1.1')),
};

export interface HttpLimits {
  /** Per-address request limit (429 beyond it); null or unset: none. */
  rateLimiter?: RateLimiter | null;
  /** Timeouts and connection cap of the listening socket (default DEFAULT_DIRECTORY_HTTP_LIMITS). */
  server?: Partial<HttpServerLimits>;
  /** Filled with what the server limits refused. */
  stats?: HttpLimitStats;
}

/** The port's limits: those every HTTP port has (src/net/http-limits.ts). */
export const DEFAULT_DIRECTORY_HTTP_LIMITS: HttpServerLimits = httpLimits();

export type { HttpServerLimits };

/** A route's work: its `:id` and its parsed JSON body (undefined on GET, or when none was sent). */
type Handler = (
  req: HttpRequestIn,
  params: Record<string, string>,
  body: unknown,
) => HttpResponseOut | Promise<HttpResponseOut>;

function routes(service: DirectoryService): Route<Handler>[] {
  return [
    {
      method: 'GET',
      path: '/',
      handler: () => ({
        status: 200,
        type: 'text/html; charset=utf-8',
        body: service.statusHtml(),
        headers: {
          'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
          'cache-control': 'no-cache',
        },
      }),
    },
    {
      method: 'GET',
      path: '/v1/whoami',
      handler: (req) => json(200, { address: peerAddress(req.remoteAddress) }),
    },
    {
      method: 'GET',
      path: '/v1/key',
      handler: () => json(200, { publicKey: service.publicKeyB64, id: service.directoryId }),
    },
    {
      method: 'GET',
      path: '/v1/consensus',
      handler: () => ({
        status: 200,
        type: 'application/json; charset=utf-8',
        body: service.consensusJson(),
        headers: { 'cache-control': 'no-cache' },
      }),
    },
    {
      method: 'GET',
      path: '/v1/authority/votes/:validAfter',
      handler: (_req, params) => json(200, service.authorityVotes(parsePeriod(params))),
    },
    {
      method: 'GET',
      path: '/v1/authority/signature/:validAfter',
      handler: (_req, params) => json(200, service.authoritySignature(parsePeriod(params))),
    },
    {
      method: 'POST',
      path: '/v1/relays',
      handler: async (req, _params, body) => {
        const { id } = await service.register(body, peerAddress(req.remoteAddress));
        return json(201, { id, listed: true });
      },
    },
    {
      method: 'GET',
      path: '/v1/relays/:id',
      handler: (_req, params) => {
        const id = parseId(params);
        const info = service.relay(id);
        if (!info) throw new DirectoryError('ALLIUM_RELAY_NOT_FOUND', 404, `relay ${id} is not listed`);
        return json(200, info);
      },
    },
    {
      method: 'DELETE',
      path: '/v1/relays/:id',
      handler: async (_req, params, body) => {
        const id = parseId(params);
        await service.withdraw(id, body);
        return json(200, { id, listed: false });
      },
    },
  ];
}

/** A route's error as the answer; the directory's own faults are logged. */
function errorAnswer(err: unknown, req: HttpRequestIn, log: Logger): HttpResponseOut {
  if (err instanceof DirectoryError && err.status >= 400) {
    const headers = err.status === 503 ? { 'retry-after': '60' } : undefined;
    return failure(err.status, err.code, err.message, { headers });
  }
  log.error({ err, url: req.url }, 'request failed');
  if (err instanceof DirectoryError) return failure(500, err.code, err.message);
  // Any other Allium error raised on a request with a body is about that input (a document that does
  // not parse or verify). On a request without one it can only be the directory's own fault.
  if (err instanceof AlliumError && (req.method === 'POST' || req.method === 'DELETE')) {
    return failure(400, err.code, err.message);
  }
  return failure(500, 'ALLIUM_INTERNAL', 'the directory failed; see its log');
}

/**
 * The directory's request handler. Each request, in order: the per-address rate limit (before a byte
 * of the body is read), the path's encoding, the route, the JSON body of POST and DELETE, the route.
 */
export function directoryHandler(
  service: DirectoryService,
  log: Logger,
  limiter: RateLimiter | null = null,
): (req: HttpRequestIn) => Promise<HttpResponseOut> {
  const table = routes(service);
  return async (req) => {
    if (limiter) {
      const addr = peerAddress(req.remoteAddress);
      if (!limiter.take(addr)) {
        return failure(
          429,
          'ALLIUM_HTTP_RATE_LIMITED',
          `too many requests from this address: at most ${limiter.rate} a second (bursts of ${limiter.burst}); retry after the Retry-After seconds`,
          { headers: { 'retry-after': String(limiter.retryAfterSeconds(addr)) } },
        );
      }
    }
    if (decodePath(req.path) === null) {
      return failure(
        400,
        'ALLIUM_HTTP_BAD_REQUEST',
        `the path is not valid percent-encoding: ${req.path.slice(0, 200)}`,
      );
    }
    const match = matchRoute(table, req.method, req.path);
    if (!match) {
      return failure(
        404,
        'ALLIUM_HTTP_NOT_FOUND',
        `no such endpoint: ${req.method} ${req.url.slice(0, 200)}`,
      );
    }
    let body: unknown;
    if (req.method === 'POST' || req.method === 'DELETE') {
      const read = await readJsonBody(req, BODY_LIMIT_BYTES);
      if (!read.ok) return bodyFailure(read.reason);
      body = read.value;
    }
    try {
      return await match.route.handler(req, match.params, body);
    } catch (err) {
      return errorAnswer(err, req, log);
    }
  };
}

/** Serves the directory's API on host:port; rejects with node's listen error (EADDRINUSE, ...). */
export function serveDirectoryHttp(
  service: DirectoryService,
  log: Logger,
  listen: { host: string; port: number },
  limits: HttpLimits = {},
): Promise<HttpServerHandle> {
  return serveHttp({
    host: listen.host,
    port: listen.port,
    handle: directoryHandler(service, log, limits.rateLimiter ?? null),
    onError: (err) => log.error({ err }, 'request failed'),
    limits: { ...DEFAULT_DIRECTORY_HTTP_LIMITS, ...limits.server },
    stats: limits.stats,
    stalledReaderTimeoutMs: STALLED_READER_TIMEOUT_MS,
    timeoutPage: TIMEOUT_PAGE,
    malformedPage: MALFORMED_PAGE,
  });
}
