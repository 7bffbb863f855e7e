// Implements docs/client.md#http-proxy: an HTTP proxy beside SOCKS5. CONNECT host:port opens a tunnel
// through the network (HTTPS_PROXY for curl, git, npm); absolute-form requests (GET http://...) are
// forwarded through the network one stream per request. Proxy-Authorization credentials become the
// isolation key: different credentials never share a circuit.
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { StreamError } from '../core/stream-mux.js';
import { ErrorCode } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { EndReason } from '../wire/constants.js';
import { socksReplyForOnionCode } from '../wire/socks5.js';
import {
  createLimitedHttpServer,
  type HttpLimitStats,
  type HttpServerLimits,
  httpLimits,
  isRequestTimeout,
  requestTimeoutResponse,
} from './http-limits.js';
import { spliceStream } from './splice-stream.js';

export interface ProxyRequest {
  host: string;
  port: number;
  isolation: string;
  /** The request is known already: send it behind the BEGIN (the stream's `connected` settles later). */
  optimistic?: boolean;
}

export interface HttpProxyOptions {
  host: string;
  port: number;
  connect(req: ProxyRequest): Promise<Duplex>;
  logger?: Logger;
  /**
   * Answer CONNECT with 200 as soon as the stream's BEGIN is on its way, not when the exit has
   * connected: the program's first bytes (a TLS ClientHello) then follow the BEGIN (optimistic data,
   * protocol §4.2), one circuit round trip sooner. The price: an exit that cannot reach the
   * destination shows as a reset tunnel, not as a 502 or 504. Default false.
   */
  optimisticTunnels?: boolean;
  /**
   * Timeouts and connection cap (default DEFAULT_HTTP_PROXY_LIMITS). A forwarded request's body goes
   * on to the destination as it arrives, like a tunnel's bytes, so it has no time limit by default.
   */
  limits?: Partial<HttpServerLimits>;
}

export const DEFAULT_HTTP_PROXY_LIMITS: HttpServerLimits = httpLimits({ requestTimeoutMs: 0 });

// Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: never forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The HTTP status a proxy answers when the network could not open the stream, and why. */
export function statusForStreamError(err: Error): { status: number; why: string } {
  // An onion service that cannot be reached says why in its own words (protocol §8.9).
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && socksReplyForOnionCode(code) !== null) {
    return { status: code === 'ALLIUM_ONION_INTRODUCE_TIMEOUT' ? 504 : 502, why: `${err.message} (${code})` };
  }
  const reason = err instanceof StreamError ? err.endReason : EndReason.MISC;
  switch (reason) {
    case EndReason.EXITPOLICY:
      return { status: 403, why: "no exit's policy allows this destination" };
    case EndReason.RESOLVEFAILED:
      return { status: 502, why: 'the exit could not resolve the host name' };
    case EndReason.CONNECTREFUSED:
      return { status: 502, why: 'the destination refused the connection' };
    case EndReason.TIMEOUT:
      return { status: 504, why: 'the destination did not answer in time' };
    default:
      return { status: 502, why: 'the network could not open a stream' };
  }
}

/** Splits "host:port" / "[v6]:port" (CONNECT's authority form). */
export function parseAuthority(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

/** Proxy-Authorization: Basic credentials as an isolation key ('' without credentials). */
export function isolationFromAuth(header: string | undefined): string {
  if (!header) return '';
  const m = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return `http-proxy:${header}`;
  return `http-proxy:${Buffer.from(m[1], 'base64').toString('utf8')}`;
}

export class HttpProxyServer {
  private readonly sockets = new Set<net.Socket>();
  private readonly tunnels = new Set<Duplex>();
  connections = 0;
  requests = 0;
  failures = 0;
  /** What the port's header timeout and connection cap refused. */
  limitStats: HttpLimitStats = { refused: 0, timeouts: 0 };

  private constructor(
    private readonly server: http.Server,
    private readonly opts: HttpProxyOptions,
  ) {}

  static listen(opts: HttpProxyOptions): Promise<HttpProxyServer> {
    const stats: HttpLimitStats = { refused: 0, timeouts: 0 };
    const { server } = createLimitedHttpServer(
      httpLimits({ ...DEFAULT_HTTP_PROXY_LIMITS, ...opts.limits }),
      undefined,
      stats,
    );
    const p = new HttpProxyServer(server, opts);
    p.limitStats = stats;
    server.on('connection', (s: net.Socket) => {
      p.connections++;
      p.sockets.add(s);
      s.on('close', () => p.sockets.delete(s));
    });
    server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) =>
      p.onConnect(req, socket, head),
    );
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => p.onRequest(req, res));
    server.on('clientError', (err: Error & { code?: string }, socket: net.Socket) => {
      if (isRequestTimeout(err)) {
        stats.timeouts++;
        if (socket.writable) socket.end(requestTimeoutResponse('text/plain', 'request timeout\n'));
        else socket.destroy();
        return;
      }
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve(p);
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private get log(): Logger {
    return this.opts.logger ?? silentLogger;
  }

  private onConnect(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    this.requests++;
    socket.on('error', () => {});
    const target = parseAuthority(req.url ?? '');
    if (!target) {
      this.failures++;
      socket.end(
        plainResponse(
          400,
          'Bad Request',
          `CONNECT needs host:port, e.g. CONNECT example.org:443, not "${(req.url ?? '').slice(0, 100)}"\n`,
        ),
      );
      return;
    }
    const isolation = isolationFromAuth(req.headers['proxy-authorization']);
    const optimistic = this.opts.optimisticTunnels === true;
    this.opts.connect({ ...target, isolation, optimistic }).then(
      (stream) => {
        if (socket.destroyed) {
          stream.destroy();
          return;
        }
        this.tunnels.add(stream);
        stream.on('close', () => this.tunnels.delete(stream));
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) stream.write(head);
        spliceStream(socket, stream, (err) => {
          this.failures++;
          this.log.info({ code: err.code }, `HTTP CONNECT failed after an early answer: ${err.message}`);
        });
      },
      (err: Error) => {
        this.failures++;
        const { status, why } = statusForStreamError(err);
        this.log.info({ code: (err as StreamError).code, status }, `HTTP CONNECT failed: ${why}`);
        socket.end(
          plainResponse(status, http.STATUS_CODES[status] ?? 'Error', `allium: ${why} (${err.message})\n`),
        );
      },
    );
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests++;
    const raw = req.url ?? '';
    let url: URL | null = null;
    try {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) url = new URL(raw);
    } catch {}
    if (!url) {
      this.failures++;
      res
        .writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
        .end(
          'This is the Allium HTTP proxy, not a web server. Point a client at it, e.g.\n' +
            `  HTTPS_PROXY=http://${req.headers.host ?? 'HOST:PORT'} curl https://example.org/\n`,
        );
      return;
    }
    if (url.protocol !== 'http:') {
      this.failures++;
      res
        .writeHead(501, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
        .end(
          `allium: only http:// URLs can be requested in absolute form; use CONNECT for ${url.protocol}// (HTTPS_PROXY)\n`,
        );
      return;
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 80);
    const isolation = isolationFromAuth(req.headers['proxy-authorization']);
    const headers = forwardHeaders(req.rawHeaders);
    headers.push('connection', 'close');
    req.on('error', () => {});
    res.on('error', () => {});
    // A request without a body can be sent again, whole, if its first circuit went silent or broke
    // before any answer: an optimistic stream cannot move to another circuit, the request can.
    const bodiless =
      (req.method === 'GET' || req.method === 'HEAD') &&
      !req.headers['content-length'] &&
      !req.headers['transfer-encoding'];
    if (bodiless) req.resume();
    this.forward(req, res, { host, port, isolation, url, headers, retries: bodiless ? 1 : 0 });
  }

  /**
   * Sends one absolute-form request through a new stream and pipes the answer back. The request is
   * known, so it goes out right behind the BEGIN (optimistic, one round trip saved); a refusal then
   * arrives as the stream's error, before any answer was sent, and gets the same status.
   */
  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    t: { host: string; port: number; isolation: string; url: URL; headers: string[]; retries: number },
  ): void {
    const { host, port, isolation, url, headers } = t;
    this.opts.connect({ host, port, isolation, optimistic: true }).then(
      (stream) => {
        // The client went away meanwhile (a bodiless request has been read to its end already, so
        // only the response side tells).
        if (res.destroyed) {
          stream.destroy();
          return;
        }
        this.tunnels.add(stream);
        stream.on('close', () => this.tunnels.delete(stream));
        stream.on('error', () => {});
        const up = http.request({
          method: req.method,
          host,
          port,
          path: `${url.pathname}${url.search}`,
          headers,
          setHost: false,
          createConnection: () => stream as never,
        });
        up.on('response', (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.statusMessage, forwardHeaders(ur.rawHeaders));
          ur.pipe(res);
          ur.on('error', () => res.destroy());
        });
        up.on('error', (err) => {
          const lostPath =
            err instanceof StreamError &&
            (err.code === ErrorCode.STREAM_TIMEOUT || err.code === ErrorCode.CIRCUIT_DESTROYED);
          if (lostPath && t.retries > 0 && !res.headersSent && !res.destroyed) {
            this.log.info(
              { code: err.code },
              'HTTP proxy request: path lost before any answer; sending it again',
            );
            stream.destroy();
            this.forward(req, res, { ...t, retries: t.retries - 1 });
            return;
          }
          this.failures++;
          if (res.headersSent) {
            res.destroy();
          } else if (err instanceof StreamError) {
            this.refuse(res, err);
          } else {
            res
              .writeHead(502, { 'content-type': 'text/plain; charset=utf-8' })
              .end(`allium: the request to ${url.host} failed: ${err.message}\n`);
          }
        });
        res.on('close', () => stream.destroy());
        // A bodiless request is complete as it is (and may be sent again); a body streams through once.
        if (t.retries > 0 || req.readableEnded) up.end();
        else req.pipe(up);
      },
      (err: Error) => {
        this.failures++;
        this.refuse(res, err);
      },
    );
  }

  /** Answers a forwarded request the network could not serve with the status its error calls for. */
  private refuse(res: http.ServerResponse, err: Error): void {
    const { status, why } = statusForStreamError(err);
    this.log.info({ code: (err as StreamError).code, status }, `HTTP proxy request failed: ${why}`);
    res
      .writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
      .end(`allium: ${why} (${err.message})\n`);
  }

  close(): Promise<void> {
    for (const t of this.tunnels) t.destroy();
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Raw header pairs without hop-by-hop headers and those the Connection header names. */
function forwardHeaders(raw: string[]): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i].toLowerCase() === 'connection')
      for (const n of raw[i + 1].split(',')) named.add(n.trim().toLowerCase());
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(k) || named.has(k)) continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

function plainResponse(status: number, text: string, body: string): string {
  return (
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}
