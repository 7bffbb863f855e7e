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
  o: { socks: Addr; socksOptimistic?: Addr; httpProxy?: Addr; dashboard?: Addr; metrics?: Addr },
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
    let http: HttpProxyServer | null = null;
    if (o.httpProxy) {
      http = await HttpProxyServer.listen({
        host: o.httpProxy.host,
        port: o.httpProxy.port,
        logger,
        connect: (req) =>
          monitor.connect(req.host, req.port, { isolation: req.isolation, optimistic: req.optimistic }),
      });
      closers.push(() => http!.close());
      ready.http = `${hostForUrl(o.httpProxy.host)}:${http.port}`;
    }
    const proxies = () => [
      { name: 'socks', connections: socks.connections, failures: socks.failures },
      ...(early
        ? [{ name: 'socks-optimistic', connections: early.connections, failures: early.failures }]
        : []),
      ...(http ? [{ name: 'http', connections: http.requests, failures: http.failures }] : []),
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
