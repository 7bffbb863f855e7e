// The one HTTP server stack of every role: the directory's API, the client's dashboard and the metrics
// endpoints all run on node:http under the limits of http-limits.ts. The roles answer plain requests
// with plain responses (and read a body only when they want it), so none of them touches a socket.
import type http from 'node:http';
import type { Socket } from 'node:net';
import {
  createLimitedHttpServer,
  type HttpLimitStats,
  type HttpServerLimits,
  httpLimits,
  isRequestTimeout,
  requestTimeoutResponse,
} from './http-limits.js';

/** What a body read ended with: the bytes, or why there are none. */
export type BodyResult =
  | { ok: true; body: Buffer }
  /** `too-large`: over the limit (declared or sent); `incomplete`: fewer bytes than declared, or cut off. */
  | { ok: false; reason: 'too-large' | 'incomplete' };

export interface HttpRequestIn {
  method: string;
  /** The request target as sent (path and query string). */
  url: string;
  /** The path without its query string, still percent-encoded. */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The peer's address as the socket reports it ('' if it has gone). */
  remoteAddress: string;
  /** The port the server listens on, for Host header checks. */
  port: number;
  /**
   * Reads the body, at most `limit` bytes; call it once. A body never read is discarded after the
   * answer. A declared Content-Length over the limit is refused before a byte is read.
   */
  readBody(limit: number): Promise<BodyResult>;
}

export interface HttpResponseOut {
  status: number;
  type: string;
  /** Sent with its Content-Length (left out of HEAD answers by node). */
  body: string | Buffer;
  /** Headers for this response only, beside the server's own. */
  headers?: Record<string, string>;
  /** Close the connection after this answer (a body was left half read). */
  close?: boolean;
}

/** A body for the answers the server gives on its own, before any request reaches the handler. */
export interface HttpErrorPage {
  type: string;
  body: string;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Headers on every response (security headers, caching). */
  headers?: Record<string, string>;
  handle(req: HttpRequestIn): HttpResponseOut | Promise<HttpResponseOut>;
  /** A handler that threw: reported here, answered 500 text/plain. */
  onError?(err: Error): void;
  /** Timeouts and connection cap (default DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpServerLimits>;
  /** Counts what the limits refused (a fresh object by default). */
  stats?: HttpLimitStats;
  /**
   * An answer of which the client takes nothing for this long is dropped with its connection (a
   * client that stops reading a large answer). The time the handler takes does not count. 0 or
   * unset: none.
   */
  stalledReaderTimeoutMs?: number;
  /** The 408 sent when headers or body did not arrive in time. */
  timeoutPage?: HttpErrorPage;
  /** The 400 sent for bytes that are not HTTP/1.1. */
  malformedPage?: HttpErrorPage;
}

export interface HttpServerHandle {
  /** e.g. http://127.0.0.1:8119/ (IPv6 hosts in brackets). */
  url: string;
  port: number;
  /** What the port's timeouts and connection cap refused. */
  stats: HttpLimitStats;
  /** Stops listening and closes every connection, idle or not. */
  close(): Promise<void>;
}

/** A host as it goes into a URL: IPv6 addresses in brackets. */
export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

const DEFAULT_TIMEOUT_PAGE: HttpErrorPage = { type: 'text/plain', body: 'request timeout\n' };
const DEFAULT_MALFORMED_PAGE: HttpErrorPage = { type: 'text/plain', body: 'bad request\n' };

function readBody(req: http.IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.resolve({ ok: false, reason: 'too-large' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (r: BodyResult) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onCut);
      req.off('close', onCut);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      // The rest is discarded unread; the answer closes the connection.
      if (received > limit) return finish({ ok: false, reason: 'too-large' });
      chunks.push(chunk);
    };
    const onEnd = () => {
      if (!Number.isNaN(declared) && received !== declared) finish({ ok: false, reason: 'incomplete' });
      else finish({ ok: true, body: Buffer.concat(chunks, received) });
    };
    const onCut = () => finish({ ok: false, reason: 'incomplete' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onCut);
    req.on('close', onCut);
  });
}

/**
 * Serves `handle`'s answers on host:port. Rejects with node's own listen error (EADDRINUSE, EACCES:
 * the command names the flag), so callers that want their own code wrap it.
 */
export function serveHttp(opts: HttpServerOptions): Promise<HttpServerHandle> {
  let port = 0;
  const timeoutPage = opts.timeoutPage ?? DEFAULT_TIMEOUT_PAGE;
  const malformedPage = opts.malformedPage ?? DEFAULT_MALFORMED_PAGE;
  const { server, stats } = createLimitedHttpServer(
    httpLimits(opts.limits),
    (req, res) => {
      const send = (r: HttpResponseOut) => {
        // The request timed out (answered 408 on the socket) or the client left meanwhile. The
        // connection is the request's socket: an answer queued behind one still being written (the
        // client sent its next request before the last bytes were acknowledged) has none of its own yet.
        const socket = req.socket;
        if (res.headersSent || res.destroyed || !socket.writable) return;
        const headers: Record<string, string> = {
          ...opts.headers,
          ...r.headers,
          'content-type': r.type,
          'content-length': String(Buffer.byteLength(r.body)),
        };
        if (r.close) headers.connection = 'close';
        // Counts from here: node replaces it with the keep-alive timeout once the answer is written,
        // and destroys the connection if it fires first.
        if (opts.stalledReaderTimeoutMs) socket.setTimeout(opts.stalledReaderTimeoutMs);
        res.writeHead(r.status, headers);
        res.end(r.body);
      };
      const request: HttpRequestIn = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        path: (req.url ?? '/').split('?')[0],
        headers: req.headers,
        remoteAddress: req.socket.remoteAddress ?? '',
        port,
        readBody: (limit) => readBody(req, limit),
      };
      Promise.resolve()
        .then(() => opts.handle(request))
        .then(send, (err: Error) => {
          opts.onError?.(err);
          send({ status: 500, type: 'text/plain; charset=utf-8', body: 'internal error\n', close: true });
        });
    },
    opts.stats,
  );
  // Bytes that are not HTTP, and requests too slow to arrive: answered here and the connection closed.
  server.on('clientError', (err: Error & { code?: string }, duplex) => {
    const socket = duplex as Socket;
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    if (isRequestTimeout(err)) {
      stats.timeouts++;
      socket.end(requestTimeoutResponse(timeoutPage.type, timeoutPage.body));
    } else {
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: ${malformedPage.type}\r\n` +
          `Content-Length: ${Buffer.byteLength(malformedPage.body)}\r\nConnection: close\r\n\r\n${malformedPage.body}`,
      );
    }
    socket.destroySoon();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', reject);
      // Later server errors (accept failing: EMFILE) are reported, not thrown.
      server.on('error', (err) => opts.onError?.(err));
      port = (server.address() as { port: number }).port;
      resolve({
        port,
        stats,
        url: `http://${hostForUrl(opts.host)}:${port}/`,
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** A JSON request body, or why it cannot be had (each reason is the client's fault). */
export type JsonBodyResult =
  | { ok: true; value: unknown }
  /** `value` is undefined when the request carries no body and no Content-Type. */
  | { ok: false; reason: 'too-large' | 'incomplete' | 'media-type' | 'bad-json' };

/**
 * Reads and parses a JSON body of at most `limit` bytes. No body at all is `undefined`; a body with
 * another media type (or none named) is refused unread. Keys that could reach an object's prototype
 * (`__proto__`, a `constructor` holding a `prototype`) make the body bad JSON.
 */
export async function readJsonBody(req: HttpRequestIn, limit: number): Promise<JsonBodyResult> {
  const type = req.headers['content-type'];
  if (type === undefined) {
    const length = req.headers['content-length'];
    const empty = req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
    return empty ? { ok: true, value: undefined } : { ok: false, reason: 'media-type' };
  }
  if (type.split(';')[0].trim().toLowerCase() !== 'application/json')
    return { ok: false, reason: 'media-type' };
  const read = await req.readBody(limit);
  if (!read.ok) return read;
  if (read.body.length === 0) return { ok: false, reason: 'bad-json' };
  try {
    return { ok: true, value: JSON.parse(read.body.toString('utf8'), refusePrototypeKeys) };
  } catch {
    return { ok: false, reason: 'bad-json' };
  }
}

function refusePrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__') throw new SyntaxError('a __proto__ key');
  if (
    key === 'constructor' &&
    typeof value === 'object' &&
    value !== null &&
    Object.hasOwn(value, 'prototype')
  )
    throw new SyntaxError('a constructor.prototype key');
  return value;
}
