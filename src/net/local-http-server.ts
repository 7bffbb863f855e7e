// A small HTTP server for what a role serves beside its protocol (the client's dashboard, the metrics
// endpoint): the I/O lives here, the caller answers plain requests with plain responses.
import type http from 'node:http';
import { AlliumError } from '../errors.js';
import {
  createLimitedHttpServer,
  type HttpLimitStats,
  type HttpServerLimits,
  httpLimits,
  isRequestTimeout,
  requestTimeoutResponse,
} from './http-limits.js';

/** A host as it goes into a URL: IPv6 addresses in brackets. */
export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export interface LocalRequest {
  method: string;
  /** The path without its query string. */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The port the server listens on (known once it listens), for Host header checks. */
  port: number;
}

export interface LocalResponse {
  status: number;
  type: string;
  body: string;
  /** Headers for this response only, beside the server's own. */
  headers?: Record<string, string>;
}

export interface LocalHttpServer {
  url: string;
  port: number;
  /** What the port's timeouts and connection cap refused. */
  stats: HttpLimitStats;
  close(): Promise<void>;
}

export class LocalHttpServerError extends AlliumError {}

/**
 * Serves `handle`'s answers on host:port, with `headers` on every response. Request bodies are
 * discarded. ALLIUM_LOCAL_HTTP_LISTEN (with `what` in the message) when the address is taken.
 */
export function serveLocalHttp(opts: {
  host: string;
  port: number;
  what: string;
  headers?: Record<string, string>;
  handle(req: LocalRequest): LocalResponse | Promise<LocalResponse>;
  onError?(err: Error): void;
  /** Timeouts and connection cap (default DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpServerLimits>;
}): Promise<LocalHttpServer> {
  let port = 0;
  const { server, stats } = createLimitedHttpServer(httpLimits(opts.limits), (req, res) => {
    req.resume();
    const send = (r: LocalResponse) => {
      res.writeHead(r.status, { ...opts.headers, ...r.headers, 'content-type': r.type });
      res.end(r.body);
    };
    const request: LocalRequest = {
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0],
      headers: req.headers,
      port,
    };
    Promise.resolve()
      .then(() => opts.handle(request))
      .then(send, (err: Error) => {
        opts.onError?.(err);
        send({ status: 500, type: 'text/plain; charset=utf-8', body: 'internal error\n' });
      });
  });
  server.on('clientError', (err: Error & { code?: string }, socket) => {
    if (isRequestTimeout(err)) {
      stats.timeouts++;
      if (socket.writable) socket.end(requestTimeoutResponse('text/plain', 'request timeout\n'));
      else socket.destroy();
      return;
    }
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new LocalHttpServerError(
          'ALLIUM_LOCAL_HTTP_LISTEN',
          `cannot serve ${opts.what} on ${opts.host}:${opts.port}: ${err.code ?? err.message}`,
        ),
      ),
    );
    server.listen({ host: opts.host, port: opts.port }, () => {
      port = (server.address() as { port: number }).port;
      resolve({
        port,
        stats,
        url: `http://${hostForUrl(opts.host)}:${port}/`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
