// curl as the one load generator for every path (direct, Allium, C Tor): same binary, same flags.
import { execFile } from 'node:child_process';
import { BenchError } from './errors.js';

export interface SocksProxy {
  host: string;
  port: number;
}

export interface CurlResult {
  /** Seconds from start to the first response byte. */
  ttfb: number;
  /** Seconds from start to the last byte. */
  total: number;
  bytes: number;
  httpCode: number;
}

export interface CurlOptions {
  proxy?: SocksProxy | null;
  /** An HTTP proxy instead (plain http:// URLs are then sent to it in absolute form). */
  httpProxy?: SocksProxy | null;
  /** SOCKS5 username: distinct usernames get distinct (isolated) circuits. */
  user?: string;
  maxTimeSeconds: number;
  /** Bytes per second curl reads at most (the slow reader). */
  limitRate?: number;
  /** Where the body goes (default /dev/null). */
  output?: string;
  /** A file to upload (PUT) instead of downloading. */
  upload?: string;
}

// SocksProxy variables in the environment would change what curl does behind our back.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k) && !/^curl_/i.test(k)),
);

export function curl(url: string, o: CurlOptions): Promise<CurlResult> {
  const args = ['-sS', '--fail', '-o', o.output ?? '/dev/null', '--max-time', String(o.maxTimeSeconds)];
  if (o.proxy) {
    const cred = o.user ? `${encodeURIComponent(o.user)}:x@` : '';
    args.push('--proxy', `socks5h://${cred}${o.proxy.host}:${o.proxy.port}`);
  }
  if (o.httpProxy) {
    args.push('--proxy', `http://${o.httpProxy.host}:${o.httpProxy.port}`);
    if (o.user) args.push('--proxy-user', `${o.user}:x`);
  }
  if (o.limitRate) args.push('--limit-rate', String(o.limitRate));
  if (o.upload) args.push('-T', o.upload);
  args.push('-w', '%{json}', url);
  return new Promise((resolve, reject) => {
    execFile('curl', args, { env, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      let w: Record<string, unknown> = {};
      try {
        w = JSON.parse(stdout);
      } catch {
        // curl printed nothing usable: report its error below.
      }
      const bytes = Number((o.upload ? w.size_upload : w.size_download) ?? 0);
      if (err && !(o.limitRate && bytes > 0 && Number(w.exitcode) === 28)) {
        reject(
          new BenchError(
            'ALLIUM_BENCH_CURL',
            `curl ${url}${o.proxy ? ` via ${o.proxy.host}:${o.proxy.port}` : ''} failed: ${stderr.trim() || err.message}`,
          ),
        );
        return;
      }
      resolve({
        ttfb: Number(w.time_starttransfer),
        total: Number(w.time_total),
        bytes,
        httpCode: Number(w.http_code),
      });
    });
  });
}
