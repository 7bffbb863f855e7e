import { accessSync, constants, createWriteStream, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AlliumClient } from '../client/client.js';
import { createLogger } from '../log.js';
import { streamGet } from '../net/http-fetch.js';
import { humanBytes, progressStream, restoreTerminal } from './progress.js';
import { resolveTrust } from './trust-flags.js';

export async function runFetch(
  url: string,
  o: {
    directory?: string;
    directoryKey?: Buffer;
    authorities?: string;
    cache?: string[];
    output?: string;
    cacert?: string;
    pathLength: number;
    dataDir?: string;
    progress?: boolean;
    logLevel: string;
  },
) {
  const logger = createLogger({ level: o.logLevel, name: 'fetch' });
  // Ctrl-C: put the terminal back (the bar hid the cursor) and say what is left of the output.
  process.once('SIGINT', () => {
    restoreTerminal(process.stderr);
    process.stderr.write(`\nallium fetch: interrupted; ${partialOutput(o.output)}\n`);
    process.exit(130);
  });
  // A path that cannot be written is said before the network is asked anything.
  if (o.output) checkOutputDir(o.output);
  const client = await AlliumClient.start({
    ...(await resolveTrust(o, true)),
    caches: o.cache,
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

/** What an interrupted fetch leaves behind: the partial file is kept (as curl keeps it), and said so. */
function partialOutput(output: string | undefined): string {
  if (!output) return 'the body written to stdout so far is incomplete';
  let size: number | null = null;
  try {
    size = statSync(output).size;
  } catch {}
  return size === null
    ? `nothing was written to ${output}`
    : `${output} is kept with the first ${humanBytes(size)} only (incomplete): delete it, or fetch again to replace it`;
}

function checkOutputDir(output: string): void {
  try {
    accessSync(dirname(output), constants.W_OK);
  } catch (err) {
    (err as NodeJS.ErrnoException).path = dirname(output);
    throw err;
  }
}
