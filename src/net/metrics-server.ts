// Implements docs/metrics.md (the endpoint): serves the Prometheus text exposition at GET /metrics.
import { type Family, renderFamilies } from '../core/prometheus.js';
import { AlliumError } from '../errors.js';
import {
  type LocalHttpServer,
  type LocalRequest,
  type LocalResponse,
  serveLocalHttp,
} from './local-http-server.js';

export class MetricsServerError extends AlliumError {}

export interface MetricsServer {
  host: string;
  port: number;
  /** e.g. http://127.0.0.1:9100/metrics */
  url: string;
  close(): Promise<void>;
}

/** Listens on host:port; `families` is called on every scrape, so it sees the current counters. */
export async function startMetricsServer(opts: {
  host: string;
  port: number;
  families: () => Family[];
}): Promise<MetricsServer> {
  const text = (status: number, body: string, headers?: Record<string, string>): LocalResponse => ({
    status,
    type: 'text/plain',
    body,
    headers,
  });
  const handle = (req: LocalRequest): LocalResponse => {
    // HEAD answers carry the headers only (node's HTTP server drops their body).
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return text(405, 'use GET /metrics\n', { allow: 'GET, HEAD' });
    if (req.path !== '/metrics' && req.path !== '/') return text(404, 'metrics are at /metrics\n');
    let body: string;
    try {
      body = renderFamilies(opts.families());
    } catch (err) {
      return text(500, `could not collect metrics: ${(err as Error).message}\n`);
    }
    return { status: 200, type: 'text/plain; version=0.0.4; charset=utf-8', body };
  };
  let server: LocalHttpServer;
  try {
    server = await serveLocalHttp({ host: opts.host, port: opts.port, what: 'metrics', handle });
  } catch (err) {
    throw new MetricsServerError(
      'ALLIUM_METRICS_LISTEN',
      `${(err as Error).message} (is the port in use? pick another --metrics HOST:PORT)`,
    );
  }
  return {
    host: opts.host,
    port: server.port,
    url: `${server.url}metrics`,
    close: () => server.close(),
  };
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
      name: 'nodejs_heap_size_total_bytes',
      help: "V8's heap as reserved from the system, in bytes.",
      type: 'gauge',
      collect: () => process.memoryUsage().heapTotal,
    },
    {
      name: 'nodejs_heap_size_used_bytes',
      help: "V8's heap in use, in bytes.",
      type: 'gauge',
      collect: () => process.memoryUsage().heapUsed,
    },
    {
      name: 'nodejs_external_memory_bytes',
      help: 'Memory of Buffers and other objects outside the V8 heap that it tracks, in bytes.',
      type: 'gauge',
      collect: () => process.memoryUsage().external,
    },
    {
      name: 'process_start_time_seconds',
      help: 'Start time of the process since the Unix epoch, in seconds.',
      type: 'gauge',
      collect: () => startedAtSeconds,
    },
  ];
}
