import { AlliumClient } from '../client/client.js';
import { createLogger } from '../log.js';
import { SocksServer } from '../net/socks-server.js';
import { announceReady, keepAlive, onShutdown } from './lifecycle.js';

export async function runClient(o: {
  directory: string;
  directoryKey: Buffer;
  socks: { host: string; port: number };
  pathLength: number;
  logLevel: string;
}) {
  const logger = createLogger({ level: o.logLevel, name: 'client' });
  keepAlive(logger);
  const client = await AlliumClient.start({
    directoryUrl: o.directory,
    directoryKey: o.directoryKey,
    pathLength: o.pathLength,
    logger,
  });
  // Build the first circuit now, so the first request does not wait for it.
  await client.buildCircuit();
  const socks = await SocksServer.listen({
    host: o.socks.host,
    port: o.socks.port,
    logger,
    connect: (req) => client.connect(req.host, req.port, { isolation: req.isolation }),
  });
  onShutdown(async () => {
    await socks.close();
    await client.close();
  });
  announceReady({ role: 'client', socks: `${o.socks.host}:${socks.port}` });
}
