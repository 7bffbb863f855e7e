// A small HTTP server for pages a role serves to its own machine (the client's dashboard): the I/O
// lives here, the role answers plain requests with plain responses.
import http from 'node:http';
import { AlliumError } from '../errors.js';
import { hostForUrl } from './metrics-server.js';

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
}

export interface LocalHttpServer {
  url: string;
  port: number;
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
  headers: Record<string, string>;
  handle(req: LocalRequest): LocalResponse | Promise<LocalResponse>;
  onError?(err: Error): void;
}): Promise<LocalHttpServer> {
  let port = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    const send = (r: LocalResponse) => {
      res.writeHead(r.status, { ...opts.headers, 'content-type': r.type });
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
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new LocalHttpServerError(
          'ALLIUM_LOCAL_HTTP_LISTEN',
          `cannot serve the ${opts.what} on ${opts.host}:${opts.port}: ${err.code ?? err.message}`,
        ),
      ),
    );
    server.listen({ host: opts.host, port: opts.port }, () => {
      port = (server.address() as { port: number }).port;
      resolve({
        port,
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
