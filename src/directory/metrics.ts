// Implements docs/metrics.md (directory): listing, registration and consensus counters, read at scrape time.
import type { Family } from '../core/prometheus.js';
import type { Directory } from './directory.js';

export function directoryFamilies(dir: Directory): Family[] {
  const service = dir.service;
  return [
    {
      name: 'allium_directory_relays_listed',
      help: 'Relays listed right now (registered, reachable, not expired).',
      type: 'gauge',
      collect: () => service.liveRelays().length,
    },
    {
      name: 'allium_directory_exits_listed',
      help: 'Listed relays that are exits.',
      type: 'gauge',
      collect: () =>
        service.liveRelays().filter((r) => r.descriptor.exitPolicy.some((l) => l.startsWith('accept')))
          .length,
    },
    {
      name: 'allium_directory_registrations_total',
      help: 'Relay registrations by result: new, changed, refreshed, unreachable (refused).',
      type: 'counter',
      collect: () =>
        Object.entries(service.stats.registrations).map(([result, value]) => ({ labels: { result }, value })),
    },
    {
      name: 'allium_directory_consensus_fetches_total',
      help: 'GET /v1/consensus requests served.',
      type: 'counter',
      collect: () => service.stats.consensusFetches,
    },
    {
      name: 'allium_directory_rate_limited_total',
      help: 'Requests refused with 429 because their address exceeded --rate-limit.',
      type: 'counter',
      collect: () => dir.rateLimiter?.limited ?? 0,
    },
    {
      name: 'allium_directory_registrations_refused_total',
      help: 'New relays refused: address_limit (--max-relays-per-address), full (the consensus budget).',
      type: 'counter',
      collect: () => [
        { labels: { reason: 'address_limit' }, value: service.stats.refused.addressLimit },
        { labels: { reason: 'full' }, value: service.stats.refused.full },
      ],
    },
    {
      name: 'allium_directory_consensus_left_out',
      help: 'Live relays the last consensus left out to stay under its size cap.',
      type: 'gauge',
      collect: () => service.stats.consensusLeftOut,
    },
    {
      name: 'allium_directory_http_refused_total',
      help: 'HTTP connections refused at the connection cap (connections), requests cut at a timeout (timeout).',
      type: 'counter',
      collect: () => [
        { labels: { reason: 'connections' }, value: dir.httpStats.refused },
        { labels: { reason: 'timeout' }, value: dir.httpStats.timeouts },
      ],
    },
  ];
}
