import { Directory } from '../directory/directory.js';
import { directoryFamilies } from '../directory/metrics.js';
import { DirectoryStore } from '../directory/store.js';
import { createLogger } from '../log.js';
import { announceReady, keepAlive, onShutdown } from './lifecycle.js';
import { serveMetrics } from './observability.js';
import { readAuthoritySet } from './trust-flags.js';

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
  authorities?: string;
  votingInterval?: number;
  onionPeriod?: number;
  onionNewRelaysOnRing?: boolean;
  printAuthority?: string;
}) {
  if (o.printAuthority !== undefined) {
    await printAuthority(o.dataDir, o.printAuthority, o.host, o.port);
    return;
  }
  const authorities = o.authorities === undefined ? undefined : await readAuthoritySet(o.authorities);
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
    authorities,
    votingIntervalMs: o.votingInterval === undefined ? undefined : o.votingInterval * 1000,
    onionPeriodSeconds: o.onionPeriod,
    onionOnlyListedBeforeReveal: o.onionNewRelaysOnRing !== true,
    logger,
  });
  const metrics = await serveMetrics(o.metrics, () => directoryFamilies(dir));
  onShutdown(async () => {
    await metrics.close();
    await dir.stop();
  });
  announceReady({ role: 'directory', url: dir.url, key: dir.publicKey.toString('base64'), ...metrics.ready });
}

/** One line of JSON: this directory's entry in an authority set file (protocol.md §6.5). */
async function printAuthority(dataDir: string, nickname: string, host: string, port: number): Promise<void> {
  const store = new DirectoryStore(dataDir);
  await store.init();
  const { key } = await store.loadOrCreateKey();
  const urlHost = host.includes(':') ? `[${host}]` : host;
  process.stdout.write(
    `${JSON.stringify({
      nickname,
      id: key.id.toString('hex'),
      identityKey: key.publicKey.toString('base64'),
      url: `http://${urlHost}:${port}`,
    })}\n`,
  );
}
