// A GET over a stream the caller provides (a circuit stream): HTTP as is, HTTPS with TLS end to end, so
// the exit sees only ciphertext.
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { AlliumError } from '../errors.js';
import { ALLIUM_VERSION } from '../version.js';

export class FetchError extends AlliumError {}

export interface StreamGetOptions {
  /** Opens a byte stream to host:port (through the network). */
  connect(host: string, port: number): Promise<Duplex>;
  /** Extra trusted CA certificates (PEM), e.g. a test server's. */
  ca?: string | Buffer;
  method?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** GETs `url` and resolves with the response; the body is the response stream. */
export async function streamGet(url: string, opts: StreamGetOptions): Promise<http.IncomingMessage> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FetchError('ALLIUM_FETCH_URL', `not a valid URL: ${url}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new FetchError('ALLIUM_FETCH_URL', `only http and https URLs can be fetched, not ${u.protocol}`);
  }
  const secure = u.protocol === 'https:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || (secure ? 443 : 80));
  const stream = await opts.connect(host, port);
  let socket: Duplex = stream;
  if (secure) {
    socket = await tlsOver(stream, host, opts.ca).catch((err: Error) => {
      // A stream opened optimistically fails here when the exit refuses it: that answer stands.
      throw err instanceof AlliumError
        ? err
        : new FetchError('ALLIUM_FETCH_TLS', `TLS with ${host} failed: ${err.message}`);
    });
  }
  return new Promise((resolve, reject) => {
    // Plain http.request over the (possibly TLS) socket we made: https.request would add TLS again.
    const req = http.request(
      {
        method: opts.method ?? 'GET',
        host,
        port,
        path: `${u.pathname}${u.search}`,
        headers: { host: u.host, 'user-agent': `allium/${ALLIUM_VERSION}`, ...opts.headers },
        createConnection: () => socket as never,
      },
      resolve,
    );
    // A circuit stream is not a net.Socket (no socket timeouts): time the response here.
    const timer = setTimeout(
      () => req.destroy(new FetchError('ALLIUM_FETCH_TIMEOUT', `no response from ${u.host} in time`)),
      opts.timeoutMs ?? 60_000,
    );
    req.once('response', () => clearTimeout(timer));
    req.once('close', () => clearTimeout(timer));
    req.on('error', (err) =>
      reject(
        err instanceof AlliumError
          ? err
          : new FetchError('ALLIUM_FETCH_FAILED', `request to ${u.host} failed: ${err.message}`),
      ),
    );
    req.end();
  });
}

/**
 * TLS end to end over a stream (the exit sees only ciphertext), checked against the system roots plus
 * `ca`. Rejects with the TLS error as it is (the stream destroyed); callers say what it means to them.
 */
export function tlsOver(
  stream: Duplex,
  host: string,
  ca?: string | Buffer | (string | Buffer)[],
  alpn?: string[],
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({
      socket: stream,
      servername: net.isIP(host) ? undefined : host,
      ca: ca === undefined ? undefined : [...tls.rootCertificates, ...[ca].flat().map(String)],
      ALPNProtocols: alpn,
    });
    t.once('secureConnect', () => resolve(t));
    t.once('error', (err) => {
      stream.destroy();
      reject(err);
    });
  });
}
