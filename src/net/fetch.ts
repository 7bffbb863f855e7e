// Implements docs/library.md (fetch): the WHATWG fetch() contract over streams the caller opens through
// the network. HTTPS is TLS from this process to the server, so the exit sees only ciphertext.
import http from 'node:http';
import { type Duplex, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { AlliumError } from '../errors.js';
import { FetchError, tlsOver } from './http-fetch.js';

export { FetchError };

export interface FetchOverOptions {
  /** Opens a byte stream to host:port (through the network). */
  connect(host: string, port: number): Promise<Duplex>;
  /** Extra trusted CA certificates (PEM) for https, besides the system's. */
  ca?: string | Buffer | (string | Buffer)[];
  /** How long to wait for the response headers (default 60 s). */
  headersTimeoutMs?: number;
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const MAX_REDIRECTS = 20;

/**
 * fetch(input, init) through `opts.connect`: resolves with a standard Response whose body streams as it
 * arrives. Redirects are followed unless init.redirect says otherwise; gzip/deflate/br are decoded.
 */
export async function fetchOver(
  input: string | URL | Request,
  init: RequestInit | undefined,
  opts: FetchOverOptions,
): Promise<Response> {
  let request: Request;
  try {
    request = new Request(input, init);
  } catch (err) {
    throw new FetchError('ALLIUM_FETCH_URL', `cannot make a request: ${(err as Error).message}`);
  }
  // A streamed upload cannot be replayed on a redirect; anything else is read once into memory.
  const streamed = init?.body instanceof ReadableStream;
  let body = request.body && !streamed ? Buffer.from(await request.arrayBuffer()) : null;
  let url = new URL(request.url);
  let method = request.method;
  const headers = new Headers(request.headers);
  const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
  for (let hop = 0; ; hop++) {
    const res = await once(url, method, headers, streamed ? request.body : body, signal ?? undefined, opts);
    const location = res.headers.get('location');
    const redirect = request.redirect;
    if (![301, 302, 303, 307, 308].includes(res.status) || !location || redirect === 'manual') {
      markUrl(res, url, hop > 0);
      return res;
    }
    await res.body?.cancel();
    if (redirect === 'error')
      throw new FetchError(
        'ALLIUM_FETCH_REDIRECT_REFUSED',
        `fetch: redirect to ${location} with redirect: "error"`,
      );
    if (hop >= MAX_REDIRECTS)
      throw new FetchError(
        'ALLIUM_FETCH_REDIRECTS',
        `more than ${MAX_REDIRECTS} redirects from ${request.url}`,
      );
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new FetchError('ALLIUM_FETCH_URL', `redirected to an unsupported URL: ${next.href}`);
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = method === 'HEAD' ? 'HEAD' : 'GET';
      body = null;
      for (const h of [
        'content-type',
        'content-length',
        'content-encoding',
        'content-language',
        'content-location',
      ])
        headers.delete(h);
      if (streamed)
        throw new FetchError('ALLIUM_FETCH_REDIRECT_BODY', 'cannot replay a streamed body on a redirect');
    } else if (streamed) {
      throw new FetchError('ALLIUM_FETCH_REDIRECT_BODY', 'cannot replay a streamed body on a redirect');
    }
    if (next.origin !== url.origin) {
      headers.delete('authorization');
      headers.delete('cookie');
    }
    url = next;
  }
}

function markUrl(res: Response, url: URL, redirected: boolean): void {
  Object.defineProperty(res, 'url', { value: url.href });
  Object.defineProperty(res, 'redirected', { value: redirected });
}

async function once(
  url: URL,
  method: string,
  headers: Headers,
  body: Buffer | ReadableStream<Uint8Array> | null,
  signal: AbortSignal | undefined,
  opts: FetchOverOptions,
): Promise<Response> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new FetchError('ALLIUM_FETCH_URL', `only http and https URLs can be fetched, not ${url.protocol}`);
  signal?.throwIfAborted();
  const secure = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (secure ? 443 : 80));
  const stream = await opts.connect(host, port);
  let socket: Duplex = stream;
  if (secure) {
    socket = await tlsOver(stream, host, opts.ca, ['http/1.1']).catch((err: Error) => {
      throw new FetchError('ALLIUM_FETCH_TLS', `TLS with ${host} failed: ${err.message}`);
    });
  }
  const out: Record<string, string> = {
    host: url.host,
    accept: '*/*',
    'accept-encoding': 'gzip, deflate, br',
    'user-agent': 'allium',
  };
  for (const [k, v] of headers) out[k] = v;
  out.connection = 'close';
  if (Buffer.isBuffer(body)) out['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request({
      method,
      host,
      port,
      path: `${url.pathname}${url.search}`,
      headers: out,
      // Plain http.request over the socket made above: https.request would add TLS a second time.
      createConnection: () => socket as never,
    });
    const fail = (err: unknown) => {
      clearTimeout(timer);
      req.destroy();
      socket.destroy();
      reject(
        err instanceof AlliumError || (err as Error)?.name === 'AbortError'
          ? err
          : new FetchError('ALLIUM_FETCH_FAILED', `request to ${url.host} failed: ${(err as Error).message}`),
      );
    };
    const onAbort = () => fail(signal?.reason ?? new DOMException('aborted', 'AbortError'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => fail(new FetchError('ALLIUM_FETCH_TIMEOUT', `no response from ${url.host} in time`)),
      opts.headersTimeoutMs ?? 60_000,
    );
    req.on('error', fail);
    // Aborted while the stream was being opened: the listener above came too late to hear it.
    if (signal?.aborted) {
      onAbort();
      return;
    }
    req.once('response', (res) => {
      clearTimeout(timer);
      req.off('error', fail);
      req.on('error', () => {});
      const h = new Headers();
      for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
      const status = res.statusCode ?? 502;
      let bodyStream: Readable | null = null;
      if (!NULL_BODY_STATUS.has(status) && method !== 'HEAD') {
        bodyStream = decode(res, h.get('content-encoding'));
        if (signal) {
          signal.removeEventListener('abort', onAbort);
          signal.addEventListener('abort', () => bodyStream?.destroy(signal.reason), { once: true });
        }
      } else {
        res.resume();
      }
      try {
        resolve(
          new Response(bodyStream ? (Readable.toWeb(bodyStream) as ReadableStream<Uint8Array>) : null, {
            status: status < 200 ? 502 : status,
            statusText: res.statusMessage,
            headers: h,
          }),
        );
      } catch (err) {
        fail(err);
      }
    });
    if (body === null) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else Readable.fromWeb(body as never).pipe(req);
  });
}

function decode(res: http.IncomingMessage, encoding: string | null): Readable {
  const e = (encoding ?? '').trim().toLowerCase();
  const decoder =
    e === 'gzip' || e === 'x-gzip'
      ? zlib.createGunzip()
      : e === 'deflate'
        ? zlib.createInflate()
        : e === 'br'
          ? zlib.createBrotliDecompress()
          : null;
  if (!decoder) return res;
  res.on('error', (err) => decoder.destroy(err));
  return res.pipe(decoder);
}
