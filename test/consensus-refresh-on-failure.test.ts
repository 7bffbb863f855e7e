// A client that finds no exit for a destination asks the directory again at once, instead of at its
// next scheduled refresh (30-54 s after the consensus it holds was made): an exit started meanwhile
// carries the next try.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AlliumClient } from '../src/client/client.js';
import { DirectoryClient } from '../src/net/directory-client.js';
import { Testnet } from '../src/testnet/testnet.js';
import { AlliumProcess, relayArgs } from './helpers/allium-process.js';
import { tempDir } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

let tn: Testnet;
let web: Server;
let client: AlliumClient | null = null;
let exit: AlliumProcess | null = null;
const tmp = tempDir('refresh');

before(async () => {
  // Its only exit refuses loopback destinations.
  tn = await Testnet.start({ relays: 3, exits: 1, exitsAllowPrivate: false, client: false });
  web = createServer((_q, res) => res.end('hello\n'));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
});

after(async () => {
  await client?.close();
  await exit?.kill();
  await tn?.stop();
  await new Promise((r) => web.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

test('no exit for a destination: the client refetches the consensus at once and uses an exit that joined', async () => {
  const key = Buffer.from(tn.directoryKey, 'base64');
  client = await AlliumClient.start({ directoryUrl: tn.directoryUrl, directoryKey: key });
  const port = (web.address() as AddressInfo).port;
  await assert.rejects(client.connect('127.0.0.1', port), { code: 'ALLIUM_PATH_NO_EXIT' });

  exit = await AlliumProcess.start(
    'late-exit',
    relayArgs({
      directory: tn.directoryUrl,
      key: tn.directoryKey,
      dataDir: join(tmp, 'late-exit'),
      nickname: 'lateexit',
      extra: ['--exit', '--allow-private'],
    }),
  );
  assert.ok(exit.running, exit.log);
  const directory = new DirectoryClient({ url: tn.directoryUrl, directoryKey: key });
  await waitFor(
    'the directory lists the new exit',
    async () => (await directory.consensus()).relays.length >= 4,
    {
      timeoutMs: 15_000,
      everyMs: 100,
    },
  );
  // The client still holds the old consensus: this try fails, and makes it ask again.
  await assert.rejects(client.connect('127.0.0.1', port), { code: 'ALLIUM_PATH_NO_EXIT' });
  // Its scheduled refresh is at least 30 s after the consensus it holds was made; this waits less.
  await waitFor(
    'the client fetched the consensus again after the failure',
    () => (client?.currentConsensus?.relays.length ?? 0) >= 4,
    { timeoutMs: 15_000, everyMs: 100 },
  );
  const s = await client.connect('127.0.0.1', port);
  s.end('GET / HTTP/1.0\r\n\r\n');
  let text = '';
  for await (const chunk of s) text += chunk;
  assert.match(text, /hello/);
});
