// Implements docs/metrics.md (client): circuits, build times, streams and bytes, read at scrape time.
import type { Family } from '../core/prometheus.js';
import { CELL_LEN } from '../wire/constants.js';
import type { ClientMonitor } from './monitor.js';

export interface ProxyCounters {
  name: string;
  connections: number;
  failures: number;
}

export function clientFamilies(monitor: ClientMonitor, proxies: () => ProxyCounters[] = () => []): Family[] {
  const s = monitor.client.stats;
  return [
    {
      name: 'allium_client_circuits_built_total',
      help: 'Circuits built.',
      type: 'counter',
      collect: () => s.circuitsBuilt,
    },
    {
      name: 'allium_client_circuits_failed_total',
      help: 'Circuit builds that failed.',
      type: 'counter',
      collect: () => s.circuitsFailed,
    },
    {
      name: 'allium_client_circuits_open',
      help: 'Built circuits open right now.',
      type: 'gauge',
      collect: () => monitor.circuits().length,
    },
    {
      ...monitor.buildTime.family(),
      collect: () => {
        monitor.syncBuildTimes();
        return monitor.buildTime.family().collect();
      },
    },
    {
      name: 'allium_client_streams_opened_total',
      help: 'Streams opened through the network.',
      type: 'counter',
      collect: () => s.streamsOpened,
    },
    {
      name: 'allium_client_streams_failed_total',
      help: 'Stream requests that failed (refused by the exit, or no circuit).',
      type: 'counter',
      collect: () => s.streamsFailed,
    },
    {
      name: 'allium_client_streams_open',
      help: 'Streams open right now.',
      type: 'gauge',
      collect: () => monitor.openStreams(),
    },
    {
      name: 'allium_client_bytes_total',
      help: 'Stream payload bytes received from (in) and sent to (out) destinations.',
      type: 'counter',
      collect: () => {
        const b = monitor.bytes();
        return [
          { labels: { direction: 'in' }, value: b.in },
          { labels: { direction: 'out' }, value: b.out },
        ];
      },
    },
    {
      name: 'allium_client_receive_budget_bytes',
      help: 'The largest receive budget among the entry links: data the client lets be in flight toward it (grows on long round trips).',
      type: 'gauge',
      collect: () => monitor.client.receiveBudgetCells() * CELL_LEN,
    },
    {
      name: 'allium_client_largest_window_bytes',
      help: 'The largest window named by an open circuit: in its circuit SENDMEs (circuit), and grown by a stream as its application read (stream).',
      type: 'gauge',
      collect: () => {
        const w = monitor.client.largestWindowsCells();
        return [
          { labels: { window: 'circuit' }, value: w.circuit * CELL_LEN },
          { labels: { window: 'stream' }, value: w.stream * CELL_LEN },
        ];
      },
    },
    {
      name: 'allium_client_guard_circuits',
      help: 'Per entry guard: circuit builds that got past it (attempted) and that completed (succeeded), halved now and then so recent builds weigh most (path bias).',
      type: 'gauge',
      collect: () =>
        monitor.guards().flatMap((g) => [
          { labels: { guard: g.nickname, result: 'attempted' }, value: g.attempts },
          { labels: { guard: g.nickname, result: 'succeeded' }, value: g.successes },
        ]),
    },
    {
      name: 'allium_client_guards_dropped_total',
      help: 'Entry guards dropped because far more circuits through them failed than a network fails (path bias).',
      type: 'counter',
      collect: () => monitor.client.guardsDropped,
    },
    {
      name: 'allium_client_proxy_connections_total',
      help: 'Connections accepted by the SOCKS5 and HTTP proxy ports.',
      type: 'counter',
      collect: () => proxies().map((p) => ({ labels: { proxy: p.name }, value: p.connections })),
    },
    {
      name: 'allium_client_proxy_failures_total',
      help: 'Proxy requests refused or failed.',
      type: 'counter',
      collect: () => proxies().map((p) => ({ labels: { proxy: p.name }, value: p.failures })),
    },
  ];
}
