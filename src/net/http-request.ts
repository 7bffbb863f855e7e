// A small HTTP(S) request with a deadline and a size cap, over node:http. The directory client uses it
// instead of the global fetch(): fetch loads undici and its WebAssembly HTTP parser, which costs every
// relay and client more resident memory than the rest of its directory traffic justifies, for a
// handful of requests a minute (docs/performance.md, "Runtime settings").
import http from 'node:http';
import https from 'node:https';
import { type AlliumCode, AlliumError } from '../errors.js';

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * Codes: ALLIUM_HTTP_TIMEOUT (no whole answer within timeoutMs), ALLIUM_HTTP_TOO_LARGE (body over
 * maxBytes), ALLIUM_HTTP_IO (connection refused, reset, DNS; `detail` holds the system code).
 */
export class HttpRequestError extends AlliumError {
  constructor(
    code: AlliumCode,
    message: string,
    readonly detail: string,
    readonly status?: number,
  ) {
    super(code, message);
  }
}

export interface HttpRequestOptions {
  method: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
}

/** One request; resolves with any status (redirects are not followed), rejects with HttpRequestError. */
export function httpRequest(target: string, opts: HttpRequestOptions): Promise<HttpAnswer> {
  const url = new URL(target);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise<HttpAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (err: HttpRequestError | null, answer?: HttpAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(answer!);
    };
    const timer = setTimeout(
      () =>
        finish(
          new HttpRequestError('ALLIUM_HTTP_TIMEOUT', `no answer within ${opts.timeoutMs} ms`, 'timeout'),
        ),
      opts.timeoutMs,
    );
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = Buffer.byteLength(opts.body);
    // No keep-alive agent: a relay asks a few times a minute, and an idle pooled socket would outlive stop().
    const req = lib.request(url, { method: opts.method, headers, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      const tooLarge = () =>
        finish(
          new HttpRequestError(
            'ALLIUM_HTTP_TOO_LARGE',
            `the answer exceeds ${opts.maxBytes} bytes`,
            'too large',
            status,
          ),
        );
      const declared = Number(res.headers['content-length'] ?? Number.NaN);
      if (Number.isFinite(declared) && declared > opts.maxBytes) return tooLarge();
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > opts.maxBytes) return tooLarge();
        chunks.push(chunk);
      });
      res.on('end', () => finish(null, { status, body: Buffer.concat(chunks, total).toString('utf8') }));
      res.on('error', (err: NodeJS.ErrnoException) =>
        finish(new HttpRequestError('ALLIUM_HTTP_IO', err.message, err.code ?? err.message, status)),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish(new HttpRequestError('ALLIUM_HTTP_IO', err.message, err.code ?? err.message)),
    );
    req.end(opts.body);
  });
}
