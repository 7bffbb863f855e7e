import { createWriteStream, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { AlliumClient } from '../client/client.js';
import { createLogger } from '../log.js';
import { streamGet } from '../net/http-fetch.js';
import { progressStream } from './progress.js';

export async function runFetch(
  url: string,
  o: {
    directory: string;
    directoryKey: Buffer;
    output?: string;
    cacert?: string;
    pathLength: number;
    dataDir?: string;
    progress?: boolean;
    logLevel: string;
  },
) {
  const logger = createLogger({ level: o.logLevel, name: 'fetch' });
  const client = await AlliumClient.start({
    directoryUrl: o.directory,
    directoryKey: o.directoryKey,
    pathLength: o.pathLength,
    dataDir: o.dataDir,
    logger,
  });
  try {
    const res = await streamGet(url, {
      // The request is known up front: it goes right behind the BEGIN (one round trip saved).
      connect: (host, port) => client.connect(host, port, { optimistic: true }),
      ca: o.cacert ? readFileSync(o.cacert) : undefined,
    });
    const status = res.statusCode ?? 0;
    const length = Number(res.headers['content-length']);
    const bar = progressStream({
      total: Number.isFinite(length) && length > 0 ? length : null,
      label: new URL(url).host,
      // As curl does: no bar over a body that is itself going to the terminal.
      force: o.progress ?? (Boolean(process.stderr.isTTY) && (Boolean(o.output) || !process.stdout.isTTY)),
    });
    await pipeline(res, bar, o.output ? createWriteStream(o.output) : process.stdout);
    if (status >= 400) {
      console.error(`allium fetch: ${url} answered HTTP ${status}`);
      process.exitCode = 22;
    }
  } finally {
    await client.close();
  }
}
