// Implements docs/metrics.md (client) and docs/client.md#dashboard: watches one AlliumClient's circuits
// and streams for the metrics endpoint, the dashboard and the library. Every stream a user opens goes
// through `connect` here, so bytes are counted even after the stream has closed.
import { Histogram } from '../core/prometheus.js';
import type { CircuitStream } from '../core/stream-mux.js';
import { DestroyReason } from '../wire/constants.js';
import type { AlliumClient, ConnectOptions } from './client.js';
import type { ClientCircuit } from './client-circuit.js';

export interface StreamView {
  id: number;
  /** host:port; shown only on the user's own dashboard, never logged. */
  target: string;
  bytesIn: number;
  bytesOut: number;
  ageSeconds: number;
}

export interface CircuitView {
  serial: number;
  path: { nickname: string; id: string; role: 'entry' | 'middle' | 'exit' }[];
  /** What the circuit serves: default, socks, http-proxy, library, or retired (after "new circuits"). */
  purpose: string;
  ageSeconds: number;
  streams: StreamView[];
  streamsOpened: number;
  bytesIn: number;
  bytesOut: number;
}

/** An entry guard's path-bias counts (src/client/path-bias.ts), as the dashboard and metrics show them. */
export interface GuardView {
  id: string;
  /** From the consensus; the id's first 16 hex digits for a guard it no longer lists. */
  nickname: string;
  /** Builds that got past the guard, and how many of them completed. */
  attempts: number;
  successes: number;
  verdict: string;
}

interface StreamInfo {
  target: string;
  openedAt: number;
  circuit: number;
}

const BUILD_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ClientMonitor {
  private readonly info = new WeakMap<CircuitStream, StreamInfo>();
  /** Bytes of closed streams, per circuit serial (dropped when the circuit is gone). */
  private readonly closedBytes = new Map<number, { in: number; out: number }>();
  private readonly live = new Set<CircuitStream>();
  private seenBuilt = 0;
  readonly buildTime = new Histogram(
    'allium_client_circuit_build_seconds',
    'Time to build a circuit (entry link, CREATE and every EXTEND).',
    BUILD_BUCKETS,
  );
  totals = { bytesIn: 0, bytesOut: 0 };

  constructor(readonly client: AlliumClient) {}

  /** The entry guards' circuit build counts and path-bias verdicts. */
  guards(): GuardView[] {
    const relays = this.client.currentConsensus?.relays ?? [];
    return this.client.pathBiasGuards().map((g) => ({
      id: g.guard,
      nickname: relays.find((r) => r.id === g.guard)?.nickname ?? g.guard.slice(0, 16),
      attempts: g.attempts,
      successes: g.successes,
      verdict: g.verdict,
    }));
  }

  /** Opens a stream through the client and keeps count of it. */
  async connect(host: string, port: number, opts: ConnectOptions = {}): Promise<CircuitStream> {
    const stream = await this.client.connect(host, port, opts);
    const circ = this.client.listCircuits().find((c) => c.streams().includes(stream));
    const serial = circ?.serial ?? 0;
    this.info.set(stream, {
      target: `${host.includes(':') ? `[${host}]` : host}:${port}`,
      openedAt: Date.now(),
      circuit: serial,
    });
    this.live.add(stream);
    stream.once('close', () => {
      this.live.delete(stream);
      this.totals.bytesIn += stream.bytesIn;
      this.totals.bytesOut += stream.bytesOut;
      const c = this.closedBytes.get(serial) ?? { in: 0, out: 0 };
      c.in += stream.bytesIn;
      c.out += stream.bytesOut;
      this.closedBytes.set(serial, c);
    });
    return stream;
  }

  /** Stream payload bytes moved so far, closed and open streams together. */
  bytes(): { in: number; out: number } {
    let i = this.totals.bytesIn;
    let o = this.totals.bytesOut;
    for (const s of this.live) {
      i += s.bytesIn;
      o += s.bytesOut;
    }
    return { in: i, out: o };
  }

  /** Feeds build times the client recorded since the last call into the histogram. */
  syncBuildTimes(): void {
    const { circuitsBuilt, buildTimesMs } = this.client.stats;
    const fresh = Math.min(circuitsBuilt - this.seenBuilt, buildTimesMs.length);
    for (const ms of buildTimesMs.slice(buildTimesMs.length - fresh)) this.buildTime.observe(ms / 1000);
    this.seenBuilt = circuitsBuilt;
  }

  openStreams(): number {
    let n = 0;
    for (const c of this.client.listCircuits()) n += c.openStreams;
    return n;
  }

  /** Built circuits (not ones still being built), newest first. */
  circuits(): CircuitView[] {
    const now = Date.now();
    const list = this.client
      .listCircuits()
      .filter((c) => !c.closed && c.hops.length === this.client.pathLength);
    const alive = new Set(list.map((c) => c.serial));
    for (const serial of this.closedBytes.keys())
      if (!alive.has(serial) && serial !== 0) this.closedBytes.delete(serial);
    return list
      .sort((a, b) => b.serial - a.serial)
      .map((c) => {
        const streams = c.streams().map((s) => {
          const i = this.info.get(s);
          return {
            id: s.streamId,
            target: i?.target ?? '?',
            bytesIn: s.bytesIn,
            bytesOut: s.bytesOut,
            ageSeconds: i ? Math.round((now - i.openedAt) / 1000) : 0,
          };
        });
        const closed = this.closedBytes.get(c.serial) ?? { in: 0, out: 0 };
        return {
          serial: c.serial,
          path: c.hops.map((h, i) => ({
            nickname: h.relay.nickname,
            id: h.relay.id,
            role: i === 0 ? 'entry' : i === c.hops.length - 1 ? 'exit' : 'middle',
          })),
          purpose: purposeOf(c),
          ageSeconds: Math.round((now - c.createdAt) / 1000),
          streams,
          streamsOpened: c.streamsOpened,
          bytesIn: closed.in + streams.reduce((n, s) => n + s.bytesIn, 0),
          bytesOut: closed.out + streams.reduce((n, s) => n + s.bytesOut, 0),
        };
      });
  }

  /**
   * "New circuits": later streams get new circuits, idle old circuits close now, and one fresh circuit
   * is built so the next request does not wait. Old circuits with open streams close when those end.
   */
  async newCircuits(): Promise<void> {
    this.client.newCircuits();
    for (const c of this.client.listCircuits())
      if (c.openStreams === 0 && !c.closed) c.destroy(DestroyReason.FINISHED, 'new circuits requested');
    await this.client.buildCircuit();
  }
}

function purposeOf(c: ClientCircuit): string {
  const key = c.isolation;
  if (key === '') return 'default';
  if (key.startsWith('\u0000retired')) return 'retired';
  if (key === '\u0000spare') return 'spare';
  const i = key.indexOf(':');
  return i > 0 ? key.slice(0, i) : 'isolated';
}
