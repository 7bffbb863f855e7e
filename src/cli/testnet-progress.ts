// What `allium testnet` prints while the network comes up, and how to use it once it is up.
import type { ProcessInfo } from '../testnet/testnet.js';

type Addr = { host: string; port: number };

export function hostPortArg(a: Addr): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** One line per process as it becomes ready, with how long the network has been starting. */
export function progressLine(p: ProcessInfo, total: number, done: number, sinceMs: number): string {
  const r = p.ready;
  const what =
    r.role === 'directory'
      ? `directory  ${r.url}`
      : r.role === 'relay'
        ? `relay ${r.nickname}${r.exit === '1' ? ' (exit)' : ''}  ${r.address}:${r.port}`
        : `client  SOCKS5 ${r.socks}${r.http ? `, HTTP proxy ${r.http}` : ''}`;
  const metrics = r.metrics ? `  metrics http://${r.metrics}/metrics` : '';
  return `  [${String(done).padStart(String(total).length)}/${total}] up: ${what}${metrics}  (${(sinceMs / 1000).toFixed(1)} s)`;
}

/** How to use the network: the lines a user copies. */
export function usageLines(client: Record<string, string>, opts: { hints?: boolean } = {}): string[] {
  const lines = [`  SOCKS5 proxy:  ${client.socks}`];
  if (client.socksOptimistic) lines.push(`  SOCKS5, optimistic: ${client.socksOptimistic}`);
  if (client.http) lines.push(`  HTTP proxy:    http://${client.http}`);
  if (client.httpOptimistic) lines.push(`  HTTP proxy, optimistic tunnels: http://${client.httpOptimistic}`);
  if (client.dashboard) lines.push(`  dashboard:     ${client.dashboard}`);
  if (client.metrics) lines.push(`  metrics:       http://${client.metrics}/metrics`);
  if (opts.hints === false) return lines;
  lines.push('', 'try (the exits here allow loopback destinations, so local web servers work):');
  lines.push(`  curl --socks5-hostname ${client.socks} http://127.0.0.1:8000/`);
  if (client.http) {
    lines.push(`  curl --proxy http://${client.http} http://127.0.0.1:8000/`);
    lines.push(`  HTTPS_PROXY=http://${client.http} curl https://example.org/`);
  }
  return lines;
}
