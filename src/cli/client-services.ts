// What `allium client` serves around an AlliumClient: the SOCKS5 port, and optionally the HTTP proxy,
// the dashboard and the metrics endpoint. Every stream goes through one ClientMonitor, so the
// dashboard and the metrics count all of them.

import type { AlliumClient } from '../client/client.js';
import { startDashboard } from '../client/dashboard.js';
import { clientFamilies } from '../client/metrics.js';
import { ClientMonitor } from '../client/monitor.js';
import type { Logger } from '../log.js';
import { HttpProxyServer } from '../net/http-proxy-server.js';
import { hostForUrl } from '../net/local-http-server.js';
import { SocksServer } from '../net/socks-server.js';
import { serveMetrics } from './observability.js';

type Addr = { host: string; port: number };

export async function startClientServices(
  client: AlliumClient,
  o: {
    socks: Addr;
    socksOptimistic?: Addr;
    httpProxy?: Addr;
    httpProxyOptimistic?: Addr;
    dashboard?: Addr;
    metrics?: Addr;
  },
  logger: Logger,
): Promise<{ ready: Record<string, string>; close(): Promise<void> }> {
  const monitor = new ClientMonitor(client);
  const closers: (() => Promise<void>)[] = [];
  const ready: Record<string, string> = {};
  try {
    // The plain port and the optimistic one (its streams open with optimistic data).
    const listenSocks = async (addr: Addr, optimistic: boolean) => {
      const server = await SocksServer.listen({
        host: addr.host,
        port: addr.port,
        logger,
        optimistic,
        connect: (req) =>
          monitor.connect(req.host, req.port, { isolation: req.isolation, optimistic: req.optimistic }),
      });
      closers.push(() => server.close());
      return { server, address: `${hostForUrl(addr.host)}:${server.port}` };
    };
    const plain = await listenSocks(o.socks, false);
    const socks = plain.server;
    ready.socks = plain.address;
    const optimisticPort = o.socksOptimistic ? await listenSocks(o.socksOptimistic, true) : null;
    const early = optimisticPort?.server ?? null;
    if (optimisticPort) ready.socksOptimistic = optimisticPort.address;
    // The plain HTTP proxy and the one whose CONNECT tunnels answer before the exit has connected.
    const listenHttp = async (addr: Addr, optimisticTunnels: boolean) => {
      const server = await HttpProxyServer.listen({
        host: addr.host,
        port: addr.port,
        logger,
        optimisticTunnels,
        connect: (req) =>
          monitor.connect(req.host, req.port, { isolation: req.isolation, optimistic: req.optimistic }),
      });
      closers.push(() => server.close());
      return { server, address: `${hostForUrl(addr.host)}:${server.port}` };
    };
    const httpPort = o.httpProxy ? await listenHttp(o.httpProxy, false) : null;
    const http = httpPort?.server ?? null;
    if (httpPort) ready.http = httpPort.address;
    const httpEarlyPort = o.httpProxyOptimistic ? await listenHttp(o.httpProxyOptimistic, true) : null;
    const httpEarly = httpEarlyPort?.server ?? null;
    if (httpEarlyPort) ready.httpOptimistic = httpEarlyPort.address;
    const proxies = () => [
      { name: 'socks', connections: socks.connections, failures: socks.failures },
      ...(early
        ? [{ name: 'socks-optimistic', connections: early.connections, failures: early.failures }]
        : []),
      ...(http ? [{ name: 'http', connections: http.requests, failures: http.failures }] : []),
      ...(httpEarly
        ? [{ name: 'http-optimistic', connections: httpEarly.requests, failures: httpEarly.failures }]
        : []),
    ];
    const metrics = await serveMetrics(o.metrics, () => clientFamilies(monitor, proxies));
    closers.push(() => metrics.close());
    Object.assign(ready, metrics.ready);
    if (o.dashboard) {
      const info: Record<string, string> = {
        'SOCKS5 proxy': `socks5h://${ready.socks}`,
        ...(ready.socksOptimistic
          ? { 'SOCKS5 proxy, optimistic': `socks5h://${ready.socksOptimistic}` }
          : {}),
        ...(ready.http ? { 'HTTP proxy': `http://${ready.http}` } : {}),
        ...(ready.httpOptimistic
          ? { 'HTTP proxy, optimistic tunnels': `http://${ready.httpOptimistic}` }
          : {}),
        ...(ready.metrics ? { Metrics: `http://${ready.metrics}/metrics` } : {}),
        'Relays per circuit': String(client.pathLength),
      };
      const dash = await startDashboard({
        host: o.dashboard.host,
        port: o.dashboard.port,
        monitor,
        logger,
        info: () => ({
          ...info,
          'Relays in the consensus': String(client.currentConsensus?.relays.length ?? 0),
        }),
      });
      closers.push(() => dash.close());
      ready.dashboard = dash.url;
    }
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => {});
    throw err;
  }
  return {
    ready,
    close: async () => {
      for (const c of closers.reverse()) await c().catch(() => {});
    },
  };
}
