// Implements docs/directory-api.md (docs/protocol.md §6.4): the directory's HTTP routes and error mapping.
// Bad input of any kind gets a 4xx JSON error; only a fault of our own is a 500.
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import * as v from 'valibot';
import { type AlliumCode, AlliumError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  createLimitedHttpServer,
  type HttpLimitStats,
  type HttpServerLimits,
  httpLimits,
  isRequestTimeout,
  requestTimeoutResponse,
} from '../net/http-limits.js';
import { DirectoryError, errorBody } from './errors.js';
import type { RateLimiter } from './rate-limit.js';
import type { DirectoryService } from './service.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

// The socket type without importing node:net here (src/net owns that module).
type Socket = Parameters<NonNullable<FastifyServerOptions['clientErrorHandler']>>[1];

const idParams = v.object({ id: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)) });

/** Strips the IPv4-mapped prefix a dual-stack socket reports, so IPv4 peers see a plain dotted quad. */
export function peerAddress(remote: string | undefined): string {
  if (!remote) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

function parseId(params: unknown): string {
  const r = v.safeParse(idParams, params);
  if (!r.success) {
    throw new DirectoryError('ALLIUM_RELAY_ID_INVALID', 400, 'a relay id is 64 lowercase hex digits');
  }
  return r.output.id;
}

const periodParams = v.object({ validAfter: v.pipe(v.string(), v.regex(/^[0-9]{1,16}$/)) });

function parsePeriod(params: unknown): number {
  const r = v.safeParse(periodParams, params);
  if (!r.success) {
    throw new DirectoryError(
      'ALLIUM_HTTP_BAD_REQUEST',
      400,
      'a voting period is its start in Unix milliseconds',
    );
  }
  return Number(r.output.validAfter);
}

/** Maps fastify's own errors (body parsing, limits) to our codes. */
function fastifyErrorToBody(err: FastifyError): { status: number; code: AlliumCode; message: string } {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'ALLIUM_HTTP_TOO_LARGE',
        message: `request body exceeds ${BODY_LIMIT_BYTES} bytes`,
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'ALLIUM_HTTP_MEDIA_TYPE', message: 'send the body as application/json' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      // Also a body with "__proto__" or "constructor" keys: the parser refuses those outright.
      return {
        status: 400,
        code: 'ALLIUM_HTTP_BAD_JSON',
        message: 'the request body is not valid JSON (or has a __proto__/constructor key)',
      };
    default:
      if (err.statusCode === 413) return { status: 413, code: 'ALLIUM_HTTP_TOO_LARGE', message: err.message };
      if (err.statusCode === 415)
        return { status: 415, code: 'ALLIUM_HTTP_MEDIA_TYPE', message: err.message };
      // JSON.parse SyntaxErrors from the body parser carry 400; so do other malformed-request errors.
      if (err instanceof SyntaxError) {
        return { status: 400, code: 'ALLIUM_HTTP_BAD_JSON', message: 'the request body is not valid JSON' };
      }
      if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
        return { status: 400, code: 'ALLIUM_HTTP_BAD_REQUEST', message: err.message };
      }
      return { status: 500, code: 'ALLIUM_INTERNAL', message: 'the directory failed; see its log' };
  }
}

/**
 * Answers a request that did not arrive in time with 408, and unparseable HTTP (garbage bytes on the
 * socket) with 400, and closes the connection.
 */
function onClientError(err: Error & { code?: string }, socket: Socket, stats: HttpLimitStats): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (isRequestTimeout(err)) {
    stats.timeouts++;
    if (socket.writable) {
      const body = JSON.stringify(
        errorBody(
          'ALLIUM_HTTP_TIMEOUT',
          'the request did not arrive in time: send headers and body promptly',
        ),
      );
      socket.end(requestTimeoutResponse('application/json', body));
    }
    socket.destroySoon?.();
    return;
  }
  if (socket.writable) {
    const body = JSON.stringify(errorBody('ALLIUM_HTTP_MALFORMED', 'the request is not valid HTTP/1.1'));
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroySoon?.();
}

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

export function createHttpApp(
  service: DirectoryService,
  logger: Logger,
  limits: HttpLimits = {},
): FastifyInstance {
  const serverLimits = httpLimits({ ...DEFAULT_DIRECTORY_HTTP_LIMITS, ...limits.server });
  const stats = limits.stats ?? { refused: 0, timeouts: 0 };
  const app = Fastify({
    loggerInstance: logger,
    // Per-request lines would log every client's address: the service logs what matters itself.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // Slow or stalled clients must not hold sockets forever (fastify sets these on the server too).
    serverFactory: (handler) => createLimitedHttpServer(serverLimits, handler, stats).server,
    requestTimeout: serverLimits.requestTimeoutMs,
    connectionTimeout: 30_000,
    keepAliveTimeout: serverLimits.keepAliveTimeoutMs,
    forceCloseConnections: true,
    return503OnClosing: true,
    clientErrorHandler: (err, socket) => onClientError(err, socket, stats),
    // Malformed URL encoding and the like, which never reach a route or the error handler.
    frameworkErrors: (err, _req, reply) => {
      (reply as unknown as FastifyReply).code(400).send(errorBody('ALLIUM_HTTP_BAD_REQUEST', err.message));
    },
  }) as unknown as FastifyInstance;

  const limiter = limits.rateLimiter;
  if (limiter) {
    // onRequest runs before the body is read, so a limited client costs no parsing.
    app.addHook('onRequest', async (req, reply) => {
      const addr = peerAddress(req.socket.remoteAddress);
      if (limiter.take(addr)) return;
      return reply
        .code(429)
        .header('retry-after', String(limiter.retryAfterSeconds(addr)))
        .send(
          errorBody(
            'ALLIUM_HTTP_RATE_LIMITED',
            `too many requests from this address: at most ${limiter.rate} a second (bursts of ${limiter.burst}); retry after the Retry-After seconds`,
          ),
        );
    });
  }

  // Only JSON bodies: anything else is a 415 rather than a string handed to the routes.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof DirectoryError && err.status >= 400) {
      if (err.status === 503) reply.header('retry-after', '60');
      return reply.code(err.status).send(errorBody(err.code, err.message));
    }
    if (err instanceof DirectoryError) {
      req.log.error({ err, url: req.url }, 'request failed');
      return reply.code(500).send(errorBody(err.code, err.message));
    }
    // Any other Allium error raised on a request with a body is about that input (a document that does
    // not parse or verify). On a request without one it can only be the directory's own fault.
    if (err instanceof AlliumError && (req.method === 'POST' || req.method === 'DELETE')) {
      return reply.code(400).send(errorBody(err.code, err.message));
    }
    if (err instanceof AlliumError) {
      req.log.error({ err, url: req.url }, 'request failed');
      return reply.code(500).send(errorBody('ALLIUM_INTERNAL', 'the directory failed; see its log'));
    }
    const mapped = fastifyErrorToBody(err);
    if (mapped.status >= 500) req.log.error({ err, url: req.url }, 'request failed');
    return reply.code(mapped.status).send(errorBody(mapped.code, mapped.message));
  });

  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send(errorBody('ALLIUM_HTTP_NOT_FOUND', `no such endpoint: ${req.method} ${req.url.slice(0, 200)}`));
  });

  app.get('/', (_req, reply) => {
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .header('cache-control', 'no-cache')
      .send(service.statusHtml());
  });

  app.get('/v1/whoami', (req) => ({ address: peerAddress(req.socket.remoteAddress) }));

  app.get('/v1/key', () => ({ publicKey: service.publicKeyB64, id: service.directoryId }));

  app.get('/v1/consensus', (_req, reply) => {
    reply
      .type('application/json; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(service.consensusJson());
  });

  app.get('/v1/authority/votes/:validAfter', (req) => service.authorityVotes(parsePeriod(req.params)));

  app.get('/v1/authority/signature/:validAfter', (req) =>
    service.authoritySignature(parsePeriod(req.params)),
  );

  app.post('/v1/relays', async (req, reply) => {
    const { id } = await service.register(req.body, peerAddress(req.socket.remoteAddress));
    return reply.code(201).send({ id, listed: true });
  });

  app.get('/v1/relays/:id', (req) => {
    const id = parseId(req.params);
    const info = service.relay(id);
    if (!info) throw new DirectoryError('ALLIUM_RELAY_NOT_FOUND', 404, `relay ${id} is not listed`);
    return info;
  });

  app.delete('/v1/relays/:id', async (req) => {
    const id = parseId(req.params);
    await service.withdraw(id, req.body);
    return { id, listed: false };
  });

  return app;
}
