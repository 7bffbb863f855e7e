// Implements docs/metrics.md (the endpoint): serves the Prometheus text exposition at GET /metrics.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Family, renderFamilies } from '../core/prometheus.js';
import { AlliumError } from '../errors.js';

export class MetricsServerError extends AlliumError {}

export interface MetricsServer {
  host: string;
  port: number;
  /** e.g. http://127.0.0.1:9100/metrics */
  url: string;
  close(): Promise<void>;
}

export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Listens on host:port; `families` is called on every scrape, so it sees the current counters. */
export function startMetricsServer(opts: {
  host: string;
  port: number;
  families: () => Family[];
}): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('use GET /metrics\n');
      return;
    }
    if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    let body: string;
    try {
      body = renderFamilies(opts.families());
    } catch (err) {
      res
        .writeHead(500, { 'content-type': 'text/plain' })
        .end(`could not collect metrics: ${(err as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MetricsServerError(
          'ALLIUM_METRICS_LISTEN',
          `cannot serve metrics on ${opts.host}:${opts.port}: ${err.code ?? err.message} (is the port in use? pick another --metrics HOST:PORT)`,
        ),
      ),
    );
    server.listen({ host: opts.host, port: opts.port }, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        host: opts.host,
        port,
        url: `http://${hostForUrl(opts.host)}:${port}/metrics`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

const startedAtSeconds = Date.now() / 1000;

/** The standard process_* families every Prometheus client exposes. */
export function processFamilies(): Family[] {
  return [
    {
      name: 'process_cpu_seconds_total',
      help: 'User and system CPU time spent, in seconds.',
      type: 'counter',
      collect: () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      },
    },
    {
      name: 'process_resident_memory_bytes',
      help: 'Resident memory size in bytes.',
      type: 'gauge',
      collect: () => process.memoryUsage().rss,
    },
    {
      name: 'process_start_time_seconds',
      help: 'Start time of the process since the Unix epoch, in seconds.',
      type: 'gauge',
      collect: () => startedAtSeconds,
    },
  ];
}
