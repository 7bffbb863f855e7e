import { createLogger } from '../log.js';
import { relayFamilies } from '../relay/metrics.js';
import { Relay } from '../relay/relay.js';
import { announceReady, keepAlive, onShutdown } from './lifecycle.js';
import { serveMetrics } from './observability.js';
import { runtimeFlagsAdvice } from './runtime-flags.js';
import { resolveTrust } from './trust-flags.js';

export async function runRelay(o: {
  directory?: string;
  directoryKey?: Buffer;
  authorities?: string;
  cachePort?: number;
  dataDir: string;
  nickname: string;
  host: string;
  port?: number;
  address?: string;
  exit: boolean;
  exitPolicy?: string;
  allowPrivate: boolean;
  bandwidth: number;
  family?: string;
  refresh: number;
  directoryWait: number;
  logSensitive: boolean;
  metrics?: { host: string; port: number };
  logLevel: string;
  maxCircuitsPerLink: number;
  maxStreamsPerCircuit: number;
  createRate: number;
  createBurst: number;
  maxPendingHandshakes: number;
  inlineHandshakes: number;
  handshakeThreads: number;
  maxLinkQueue: number;
  maxTotalQueue?: number;
  idleLinkTimeout: number;
  dnsServer?: string;
  dnsTimeout: number;
  maxDnsLookups: number;
  maxDnsLookupsPerCircuit: number;
  maxExitCircuitBuffer: number;
  maxExitBuffer?: number;
  linkStallTimeout: number;
  idleCircuitTimeout: number;
  onionKeyLifetime: number;
  onionKeyGrace: number;
  maxOnionDescriptors: number;
  maxOnionDescriptorBytes: number;
  maxIntroRate: number;
  maxIntroBurst: number;
  maxRendezvousCookies: number;
}) {
  const logger = createLogger({ level: o.logLevel, name: 'relay' });
  const advice = runtimeFlagsAdvice();
  if (advice) logger.warn(advice);
  keepAlive(logger);
  const exitPolicy = o.exitPolicy
    ? o.exitPolicy
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : o.exit
      ? ['accept *:*']
      : [];
  const relay = await Relay.start({
    dataDir: o.dataDir,
    ...(await resolveTrust(o, false)),
    cachePort: o.cachePort,
    nickname: o.nickname,
    host: o.host,
    port: o.port,
    address: o.address,
    exitPolicy,
    allowPrivate: o.allowPrivate,
    bandwidth: o.bandwidth,
    family: o.family
      ?.split(',')
      .map((x) => x.trim().toLowerCase())
      .filter(Boolean),
    refreshMs: o.refresh * 1000,
    directoryWaitMs: o.directoryWait * 1000,
    logSensitive: o.logSensitive,
    limits: {
      circuitsPerLink: o.maxCircuitsPerLink,
      streamsPerCircuit: o.maxStreamsPerCircuit,
      createsPerSecond: o.createRate,
      createBurst: o.createBurst,
      pendingHandshakes: o.maxPendingHandshakes,
      inlineHandshakesPerSecond: o.inlineHandshakes,
      handshakeThreads: o.handshakeThreads,
      linkQueueBytes: o.maxLinkQueue,
      ...(o.maxTotalQueue === undefined ? {} : { totalQueueBytes: o.maxTotalQueue }),
      idleLinkMs: o.idleLinkTimeout * 1000,
      dnsTimeoutMs: o.dnsTimeout * 1000,
      dnsLookups: o.maxDnsLookups,
      dnsLookupsPerCircuit: o.maxDnsLookupsPerCircuit,
      exitCircuitBufferBytes: o.maxExitCircuitBuffer,
      ...(o.maxExitBuffer === undefined ? {} : { exitBufferBytes: o.maxExitBuffer }),
      linkStallMs: o.linkStallTimeout * 1000,
      idleCircuitMs: o.idleCircuitTimeout * 1000,
      onionDescriptors: o.maxOnionDescriptors,
      onionDescriptorBytes: o.maxOnionDescriptorBytes,
      introRate: o.maxIntroRate,
      introBurst: o.maxIntroBurst,
      rendezvousCookies: o.maxRendezvousCookies,
    },
    dnsServers: o.dnsServer
      ?.split(',')
      .map((x) => x.trim())
      .filter(Boolean),
    onionKeyPolicy: { lifetimeMs: o.onionKeyLifetime * 3600_000, graceMs: o.onionKeyGrace * 3600_000 },
    logger,
  });
  const metrics = await serveMetrics(o.metrics, () => relayFamilies(relay));
  onShutdown(async () => {
    await metrics.close();
    await relay.stop();
  });
  announceReady({
    role: 'relay',
    nickname: o.nickname,
    id: relay.idHex,
    address: relay.address,
    port: relay.port,
    exit: relay.isExit ? 1 : 0,
    ...(relay.cachePort !== undefined ? { cache: `${relay.address}:${relay.cachePort}` } : {}),
    ...metrics.ready,
  });
}
