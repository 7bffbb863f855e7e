// Shared by the role commands: the optional --metrics endpoint (docs/metrics.md).
import type { Family } from '../core/prometheus.js';
import { hostForUrl } from '../net/local-http-server.js';
import { processFamilies, startMetricsServer } from '../net/metrics-server.js';

export interface Served {
  /** Fields for the `ready` line, e.g. { metrics: '127.0.0.1:9100' } (empty when not serving). */
  ready: Record<string, string>;
  close(): Promise<void>;
}

export async function serveMetrics(
  addr: { host: string; port: number } | undefined,
  families: () => Family[],
): Promise<Served> {
  if (!addr) return { ready: {}, close: async () => {} };
  const server = await startMetricsServer({
    host: addr.host,
    port: addr.port,
    families: () => [...families(), ...processFamilies()],
  });
  return { ready: { metrics: `${hostForUrl(addr.host)}:${server.port}` }, close: () => server.close() };
}
