// The dashboard's and the metrics endpoint's HTTP server: http-server.ts with request bodies discarded
// and a listen failure reported as ALLIUM_LOCAL_HTTP_LISTEN naming what was to be served.
import { AlliumError } from '../errors.js';
import type { HttpServerLimits } from './http-limits.js';
import { type HttpRequestIn, type HttpResponseOut, type HttpServerHandle, serveHttp } from './http-server.js';

export { hostForUrl } from './http-server.js';

export type LocalRequest = Pick<HttpRequestIn, 'method' | 'path' | 'headers' | 'port'>;

export interface LocalResponse extends Omit<HttpResponseOut, 'body' | 'close'> {
  body: string;
}

export type LocalHttpServer = HttpServerHandle;

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
  return serveHttp({
    host: opts.host,
    port: opts.port,
    headers: opts.headers,
    limits: opts.limits,
    onError: opts.onError,
    handle: ({ method, path, headers, port }) => opts.handle({ method, path, headers, port }),
  }).catch((err: NodeJS.ErrnoException) => {
    throw new LocalHttpServerError(
      'ALLIUM_LOCAL_HTTP_LISTEN',
      `cannot serve ${opts.what} on ${opts.host}:${opts.port}: ${err.code ?? err.message}`,
    );
  });
}
