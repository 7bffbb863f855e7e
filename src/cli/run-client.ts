import { AlliumClient } from '../client/client.js';
import { createLogger } from '../log.js';
import { startClientServices } from './client-services.js';
import { announceReady, keepAlive, onShutdown } from './lifecycle.js';
import { receiveBudgetCells } from './options.js';
import { checkPortFlags } from './port-flags.js';
import { runtimeFlagsAdvice } from './runtime-flags.js';
import { resolveTrust } from './trust-flags.js';

export async function runClient(o: {
  directory?: string;
  directoryKey?: Buffer;
  authorities?: string;
  cache?: string[];
  socks: { host: string; port: number };
  socksOptimistic?: { host: string; port: number };
  httpProxyOptimistic?: { host: string; port: number };
  pathLength: number;
  receiveBudget: number;
  linkBoundFirstHop: boolean;
  dataDir?: string;
  httpProxy?: { host: string; port: number };
  dashboard?: { host: string; port: number };
  metrics?: { host: string; port: number };
  logLevel: string;
}) {
  const logger = createLogger({ level: o.logLevel, name: 'client' });
  const advice = runtimeFlagsAdvice();
  if (advice) logger.warn(advice);
  keepAlive(logger);
  // Before the wait for relays: a taken port is said at once.
  await checkPortFlags([
    ['--socks', o.socks],
    ['--socks-optimistic', o.socksOptimistic],
    ['--http-proxy', o.httpProxy],
    ['--http-proxy-optimistic', o.httpProxyOptimistic],
    ['--dashboard', o.dashboard],
    ['--metrics', o.metrics],
  ]);
  const client = await AlliumClient.start({
    ...(await resolveTrust(o, true)),
    caches: o.cache,
    pathLength: o.pathLength,
    receiveBudgetCells: receiveBudgetCells(o.receiveBudget),
    linkBoundFirstHop: o.linkBoundFirstHop,
    dataDir: o.dataDir,
    logger,
  });
  // Build the first circuit now, so the first request does not wait for it.
  await client.buildCircuit();
  const services = await startClientServices(client, o, logger);
  onShutdown(async () => {
    await services.close();
    await client.close();
  });
  announceReady({ role: 'client', ...services.ready });
}
