// curl, the real client, through the network's SOCKS port: the name in the URL is resolved at the
// exit (--socks5-hostname), as a user's browser or tool would have it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CurlOptions {
  /** Seconds curl may take in all (default 60). */
  maxTimeS?: number;
  /** Write the body to this file instead of stdout. */
  output?: string;
  /** More arguments, before the URL (e.g. --cacert, --limit-rate). */
  args?: string[];
  /** Fail on an HTTP error status (default true). */
  failOnHttpError?: boolean;
}

/**
 * Runs curl for `url` through the SOCKS5 proxy `socks` (host:port, optionally user:password@ first);
 * resolves with its output, rejects (with stdout, stderr and code) when curl exits non-zero.
 */
export function curlViaSocks(
  socks: string,
  url: string,
  opts: CurlOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  return run(
    'curl',
    [
      '-sS',
      ...(opts.failOnHttpError === false ? [] : ['--fail']),
      '--max-time',
      String(opts.maxTimeS ?? 60),
      '--socks5-hostname',
      socks,
      ...(opts.output ? ['-o', opts.output] : []),
      ...(opts.args ?? []),
      url,
    ],
    { maxBuffer: 64 << 20 },
  );
}
