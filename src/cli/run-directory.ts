import { Directory } from '../directory/directory.js';
import { directoryFamilies } from '../directory/metrics.js';
import { createLogger } from '../log.js';
import { announceReady, keepAlive, onShutdown } from './lifecycle.js';
import { serveMetrics } from './observability.js';

export async function runDirectory(o: {
  dataDir: string;
  host: string;
  port: number;
  relayTtl: number;
  consensusFresh: number;
  consensusValid: number;
  reachabilityCheck: boolean;
  rateLimit: number;
  rateBurst: number;
  maxRelaysPerAddress: number;
  maxRelaysPerLocalAddress: number;
  metrics?: { host: string; port: number };
  logLevel: string;
}) {
  const logger = createLogger({ level: o.logLevel, name: 'directory' });
  keepAlive(logger);
  const dir = await Directory.start({
    dataDir: o.dataDir,
    host: o.host,
    port: o.port,
    relayTtlMs: o.relayTtl * 1000,
    consensusFreshMs: o.consensusFresh * 1000,
    consensusValidMs: o.consensusValid * 1000,
    reachabilityCheck: o.reachabilityCheck ? undefined : false,
    rateLimit: o.rateLimit === 0 ? false : { requestsPerSecond: o.rateLimit, burst: o.rateBurst },
    listing: {
      maxRelaysPerAddress: o.maxRelaysPerAddress,
      maxRelaysPerLocalAddress: o.maxRelaysPerLocalAddress,
    },
    logger,
  });
  const metrics = await serveMetrics(o.metrics, () => directoryFamilies(dir));
  onShutdown(async () => {
    await metrics.close();
    await dir.stop();
  });
  announceReady({ role: 'directory', url: dir.url, key: dir.publicKey.toString('base64'), ...metrics.ready });
}
