// Implements docs/metrics.md (relay): the relay's counters as Prometheus families, read at scrape time.
import type { Family } from '../core/prometheus.js';
import { CELL_LEN } from '../wire/constants.js';
import type { Relay } from './relay.js';

/** What the relay holds right now: open circuits, exit streams, links and bytes queued on them. */
export function relayGauges(relay: Relay): {
  circuits: number;
  streams: number;
  links: number;
  queuedBytes: number;
  queuePeakBytes: number;
} {
  return relay.gauges();
}

export function relayFamilies(relay: Relay): Family[] {
  const s = relay.stats;
  return [
    {
      name: 'allium_relay_circuits_created_total',
      help: 'Circuits this relay accepted (CREATE answered).',
      type: 'counter',
      collect: () => s.circuits,
    },
    {
      name: 'allium_relay_circuits_open',
      help: 'Circuits through this relay right now.',
      type: 'gauge',
      collect: () => relayGauges(relay).circuits,
    },
    {
      name: 'allium_relay_streams_opened_total',
      help: 'Exit streams this relay connected to their destination.',
      type: 'counter',
      collect: () => s.streams,
    },
    {
      name: 'allium_relay_streams_open',
      help: 'Exit streams open right now.',
      type: 'gauge',
      collect: () => relayGauges(relay).streams,
    },
    {
      name: 'allium_relay_cells_total',
      help: 'Cells received (in) and sent (out) on all links.',
      type: 'counter',
      collect: () => [
        { labels: { direction: 'in' }, value: s.cellsIn },
        { labels: { direction: 'out' }, value: s.cellsOut },
      ],
    },
    {
      name: 'allium_relay_bytes_total',
      help: `Cell bytes received (in) and sent (out) on all links: cells x ${CELL_LEN}, before link encryption.`,
      type: 'counter',
      collect: () => [
        { labels: { direction: 'in' }, value: s.cellsIn * CELL_LEN },
        { labels: { direction: 'out' }, value: s.cellsOut * CELL_LEN },
      ],
    },
    {
      name: 'allium_relay_handshake_failures_total',
      help: 'Link handshakes and CREATE handshakes that failed.',
      type: 'counter',
      collect: () => s.handshakeFailures,
    },
    {
      name: 'allium_relay_integrity_failures_total',
      help: 'Cells whose integrity check failed (circuit destroyed).',
      type: 'counter',
      collect: () => s.integrityFailures,
    },
    {
      name: 'allium_relay_onion_key_rotations_total',
      help: 'Onion keys replaced by a new one since the relay started.',
      type: 'counter',
      collect: () => s.onionKeyRotations,
    },
    {
      name: 'allium_relay_limit_rejections_total',
      help: 'CREATEs, BEGINs and links refused by a resource limit (circuits per link, CREATE rate, streams per circuit, link queue, total queue).',
      type: 'counter',
      collect: () => s.limitRejections,
    },
    {
      name: 'allium_relay_circuit_handshakes_total',
      help: 'CREATE handshakes answered on the relaying thread (inline) and by the handshake worker threads (worker).',
      type: 'counter',
      collect: () => [
        { labels: { where: 'inline' }, value: relay.handshakes.answeredInline },
        { labels: { where: 'worker' }, value: relay.handshakes.answeredByWorkers },
      ],
    },
    {
      name: 'allium_relay_link_bound_creates_total',
      help: "CREATEs for a client's first hop answered with keys bound to the client's link (no ntor, protocol §3.6).",
      type: 'counter',
      collect: () => s.linkBoundCreates,
    },
    {
      name: 'allium_relay_receive_budget_bytes',
      help: 'The largest receive budget among the links toward middles: uploads this exit lets be in flight toward it (grows on long round trips).',
      type: 'gauge',
      collect: () => relay.receiveBudgetCells() * CELL_LEN,
    },
    {
      name: 'allium_relay_links_open',
      help: 'Links to clients and relays open right now.',
      type: 'gauge',
      collect: () => relayGauges(relay).links,
    },
    {
      name: 'allium_relay_queued_bytes',
      help: 'Bytes written to links but not yet taken by the kernel.',
      type: 'gauge',
      collect: () => relayGauges(relay).queuedBytes,
    },
    {
      name: 'allium_relay_exit_buffered_bytes',
      help: 'Bytes this exit holds for destinations: received from clients, not yet taken by the sockets (--max-exit-buffer).',
      type: 'gauge',
      collect: () => relay.exitLoad().bufferedBytes,
    },
    {
      name: 'allium_relay_exit_streams_closed_by_buffer_limit_total',
      help: 'Exit streams closed because all destinations together held more than --max-exit-buffer (the one holding the most first).',
      type: 'counter',
      collect: () => relay.exitLoad().streamsShed,
    },
    {
      name: 'allium_relay_exit_dns_lookups',
      help: 'DNS lookups in progress at this exit (--max-dns-lookups).',
      type: 'gauge',
      collect: () => relay.exitLoad().dnsLookups,
    },
    {
      name: 'allium_relay_link_queue_peak_bytes',
      help: 'The most bytes one link has had queued toward its peer since the relay started (compare --max-link-queue).',
      type: 'gauge',
      collect: () => relayGauges(relay).queuePeakBytes,
    },
    {
      name: 'allium_relay_queue_shed_circuits_total',
      help: 'Circuits closed because their link queue passed --max-link-queue (the circuit with the most queued first).',
      type: 'counter',
      collect: () => s.queueShedCircuits,
    },
    {
      name: 'allium_relay_onion_descriptors',
      help: 'Onion service descriptors this relay stores now (--max-onion-descriptors).',
      type: 'gauge',
      collect: () => relay.onionLoad().descriptorsHeld,
    },
    {
      name: 'allium_relay_onion_descriptor_bytes',
      help: 'Bytes of onion service descriptors this relay stores now (--max-onion-descriptor-bytes).',
      type: 'gauge',
      collect: () => relay.onionLoad().descriptorBytes,
    },
    {
      name: 'allium_relay_onion_descriptor_requests_total',
      help: 'HS_DESC_STORE and HS_DESC_FETCH answered, by outcome (a refused store: invalid, expired, not newer or full).',
      type: 'counter',
      collect: () => {
        const d = relay.onionLoad().descriptors;
        return [
          { labels: { request: 'store', result: 'stored' }, value: d.stored },
          { labels: { request: 'store', result: 'refused' }, value: d.refused },
          { labels: { request: 'fetch', result: 'found' }, value: d.fetched },
          { labels: { request: 'fetch', result: 'not_found' }, value: d.notFound },
        ];
      },
    },
    {
      name: 'allium_relay_intro_points',
      help: 'Onion services this relay serves as introduction point now (one circuit each).',
      type: 'gauge',
      collect: () => relay.onionLoad().introPoints,
    },
    {
      name: 'allium_relay_introductions_total',
      help: 'INTRODUCE1s passed on to a service (passed), and refused: unknown service, malformed, or past the rate (--max-intro-rate).',
      type: 'counter',
      collect: () => {
        const o = relay.onionLoad();
        return [
          { labels: { result: 'passed' }, value: o.introductions },
          { labels: { result: 'refused' }, value: o.introductionsRefused },
        ];
      },
    },
    {
      name: 'allium_relay_rendezvous_waiting',
      help: 'Clients waiting at this relay as rendezvous point for their service now (--max-rendezvous-cookies).',
      type: 'gauge',
      collect: () => relay.onionLoad().pendingCookies,
    },
    {
      name: 'allium_relay_rendezvous_joined_total',
      help: 'Client and service circuits this relay joined as rendezvous point.',
      type: 'counter',
      collect: () => relay.onionLoad().rendezvousJoined,
    },
    {
      name: 'allium_relay_idle_circuits_closed_total',
      help: 'Circuits destroyed after --idle-circuit-timeout without a cell.',
      type: 'counter',
      collect: () => s.idleCircuitsClosed,
    },
  ];
}
