import { createLogger } from '../log.js';
import { OnionService } from '../service/service.js';
import { announceReady, keepAlive, onShutdown } from './lifecycle.js';
import { runtimeFlagsAdvice } from './runtime-flags.js';
import { resolveTrust } from './trust-flags.js';

export async function runServe(o: {
  to: string;
  port: number;
  dataDir: string;
  directory?: string;
  directoryKey?: Buffer;
  authorities?: string;
  cache?: string[];
  introPoints: number;
  republish: number;
  maxBuffer?: number;
  logLevel: string;
}) {
  const logger = createLogger({ level: o.logLevel, name: 'service' });
  const advice = runtimeFlagsAdvice();
  if (advice) logger.warn(advice);
  keepAlive(logger);
  const service = await OnionService.start({
    ...(await resolveTrust(o, true)),
    caches: o.cache,
    to: o.to,
    port: o.port,
    dataDir: o.dataDir,
    introPoints: o.introPoints,
    republishIntervalMs: o.republish * 1000,
    ...(o.maxBuffer === undefined ? {} : { maxBufferBytes: o.maxBuffer }),
    logger,
  });
  onShutdown(() => service.close());
  // Said before the wait: the address is known from the key alone, and an operator waiting on a slow
  // network can already copy it.
  process.stderr.write(`onion service ${service.address} -> ${o.to} (port ${o.port})\n`);
  try {
    await service.ready;
  } catch (err) {
    // Not fatal: the service keeps building introduction points and storing its descriptor.
    logger.warn({ code: (err as { code?: string }).code }, `${(err as Error).message}`);
    return;
  }
  const url = o.port === 80 ? `http://${service.address}/` : `http://${service.address}:${o.port}/`;
  process.stderr.write(`reachable through the network: ${url}\n`);
  announceReady({ role: 'service', address: service.address, to: o.to, port: o.port });
}
