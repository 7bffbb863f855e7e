import { Directory } from '../directory/directory.js';
import { createLogger } from '../log.js';
import { announceReady, keepAlive, onShutdown } from './lifecycle.js';

export async function runDirectory(o: {
  dataDir: string;
  host: string;
  port: number;
  relayTtl: number;
  logLevel: string;
}) {
  const logger = createLogger({ level: o.logLevel, name: 'directory' });
  keepAlive(logger);
  const dir = await Directory.start({
    dataDir: o.dataDir,
    host: o.host,
    port: o.port,
    relayTtlMs: o.relayTtl * 1000,
    logger,
  });
  onShutdown(() => dir.stop());
  announceReady({ role: 'directory', url: dir.url, key: dir.publicKey.toString('base64') });
}
