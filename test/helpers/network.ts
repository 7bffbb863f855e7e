// A whole network in one process (directory, relays, client on 127.0.0.1), for tests that need to look
// inside the relays. The process-based network is src/testnet/testnet.ts.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { AlliumClient, type ClientOptions } from '../../src/client/client.js';
import { Directory } from '../../src/directory/directory.js';
import { TEST_NETWORK_ONION_SETTINGS } from '../../src/directory/ring-values.js';
import { Relay, type RelayOptions } from '../../src/relay/relay.js';
import { tempDir } from './temp.js';

export interface InProcessNetwork {
  directory: Directory;
  relays: Relay[];
  client: AlliumClient;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startNetwork(opts: {
  relays: number;
  exits?: number;
  allowPrivate?: boolean;
  relayOptions?: (i: number) => Partial<RelayOptions>;
  pathLength?: number;
  /** Spare circuits the client keeps (default 0 here, so tests see only the circuits they make). */
  spareCircuits?: number;
  clientOptions?: Partial<ClientOptions>;
}): Promise<InProcessNetwork> {
  const dataDir = tempDir('test');
  const directory = await Directory.start({
    dataDir: join(dataDir, 'directory'),
    onionPeriodSeconds: TEST_NETWORK_ONION_SETTINGS.periodSeconds,
    onionOnlyListedBeforeReveal: TEST_NETWORK_ONION_SETTINGS.onlyListedBeforeReveal,
  });
  const exits = opts.exits ?? Math.max(1, Math.floor(opts.relays / 2));
  const relays = await Promise.all(
    Array.from({ length: opts.relays }, (_, i) =>
      Relay.start({
        dataDir: join(dataDir, `relay${i + 1}`),
        directoryUrl: directory.url,
        directoryKey: directory.publicKey,
        nickname: `relay${i + 1}`,
        exitPolicy: i < exits ? ['accept *:*'] : [],
        allowPrivate: opts.allowPrivate ?? true,
        ...opts.relayOptions?.(i),
      }),
    ),
  );
  const client = await AlliumClient.start({
    directoryUrl: directory.url,
    directoryKey: directory.publicKey,
    minRelays: opts.relays,
    pathLength: opts.pathLength,
    spareCircuits: opts.spareCircuits ?? 0,
    ...opts.clientOptions,
  });
  return {
    directory,
    relays,
    client,
    dataDir,
    async stop() {
      await client.close();
      await Promise.all(relays.map((r) => r.stop()));
      await directory.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
