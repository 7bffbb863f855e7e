// The bytes on every link, as captured by tcpdump on loopback, never contain the destination (as the
// BEGIN encodes it: port and host name), the request or the response: only the exit's connection to
// the web server (captured the same way, as a control) carries the request and the response.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Testnet } from '../src/testnet/testnet.js';
import { encodeBegin } from '../src/wire/relay-messages.js';
import { curlViaSocks } from './helpers/curl.js';
import { firstMissing, missingCommands, missingRoot, skipUnlessAvailable } from './helpers/requirements.js';
import { tempDir } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';
import { makeFiles, startHttpServer, type WebServer } from './helpers/web.js';

const skip = skipUnlessAvailable(firstMissing(missingRoot(), missingCommands('tcpdump')));
/** A name the exit answers itself with 127.0.0.1 (RFC 6761): the destination, unlike any other bytes. */
const DEST_HOST = 'allium-capture-probe-4b1e.localhost';

function startCapture(file: string, filter: string): Promise<ChildProcess> {
  const p = spawn('tcpdump', ['-i', 'lo', '-U', '-s', '0', '-w', file, filter], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tcpdump did not start')), 10_000);
    p.stderr!.on('data', (d: Buffer) => {
      if (d.toString().includes('listening on')) {
        clearTimeout(timer);
        resolve(p);
      }
    });
    p.once('exit', (code) => reject(new Error(`tcpdump exited ${code}`)));
  });
}

function stopCapture(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    p.removeAllListeners('exit');
    p.once('exit', () => resolve());
    p.kill('SIGINT');
  });
}

let tn: Testnet;
let web: WebServer;
const files = makeFiles();
const dir = tempDir('capture');

before(async () => {
  if (skip) return;
  web = await startHttpServer(files);
  tn = await Testnet.start({ relays: 3, exits: 1 });
});
after(async () => {
  await tn?.stop();
  await web?.close();
});

test('no plaintext on any link; the same capture sees it on the exit-to-web connection', {
  skip,
}, async () => {
  const relayPorts = tn.relays.map((r) => r.ready.port);
  const linkFile = join(dir, 'links.pcap');
  const webFile = join(dir, 'web.pcap');
  const links = await startCapture(linkFile, `tcp and (${relayPorts.map((p) => `port ${p}`).join(' or ')})`);
  const control = await startCapture(webFile, `tcp and port ${web.port}`);
  const path = '/random1m?request-marker-4b1e';
  files[path] = files['/random1m'];
  await curlViaSocks(`${tn.socksHost}:${tn.socksPort}`, `http://${DEST_HOST}:${web.port}${path}`, {
    output: join(dir, 'out'),
  });
  // tcpdump writes each packet as it sees it (-U): wait until the capture stops growing.
  let size = -1;
  await waitFor(
    'the capture holds the whole transfer',
    () => {
      const now = statSync(linkFile).size;
      const done = now > 1024 * 1024 && now === size;
      size = now;
      return done;
    },
    { everyMs: 100 },
  );
  await stopCapture(links);
  await stopCapture(control);
  const linkBytes = readFileSync(linkFile);
  const webBytes = readFileSync(webFile);
  assert.ok(linkBytes.length > 1024 * 1024, 'the links carried the download');

  // The destination as the client's BEGIN carries it (port u16 | host), as text, and the bare name;
  // the request line and samples of the response.
  const destination = [
    encodeBegin(DEST_HOST, web.port),
    Buffer.from(`${DEST_HOST}:${web.port}`),
    Buffer.from(DEST_HOST),
  ];
  for (const n of destination)
    assert.ok(
      !linkBytes.includes(n),
      `a link carried the destination: ${JSON.stringify(n.toString('latin1'))}`,
    );
  // The name reached the web server in the Host header: the control sees it where it is in the clear.
  assert.ok(webBytes.includes(Buffer.from(DEST_HOST)), 'control: the web connection carries the host name');
  const needles: Buffer[] = [Buffer.from('request-marker-4b1e')];
  const body = files['/random1m'];
  for (let i = 0; i < 32; i++) {
    const at = Math.floor((i / 32) * (body.length - 64));
    needles.push(body.subarray(at, at + 32));
  }
  const onWeb = needles.filter((n) => webBytes.includes(n)).length;
  // Some samples straddle two captured TCP segments; most must be found for the control to count.
  assert.ok(
    onWeb >= needles.length / 2,
    `control: the web connection carries the plaintext (${onWeb}/${needles.length})`,
  );
  for (const n of needles)
    assert.ok(!linkBytes.includes(n), `a link carried plaintext: ${n.toString('hex').slice(0, 32)}`);
});
