// The bytes on every link, as captured by tcpdump on loopback, never contain the request or the response:
// only the exit's connection to the web server (captured the same way, as a control) carries them.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Testnet } from '../src/testnet/testnet.js';
import { makeFiles, startHttpServer, type WebServer } from './helpers/web.js';

const run = promisify(execFile);
const canCapture = spawnSync('tcpdump', ['--version']).status === 0 && process.getuid?.() === 0;

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
const dir = mkdtempSync(join(tmpdir(), 'allium-capture-'));

before(async () => {
  if (!canCapture) return;
  web = await startHttpServer(files);
  tn = await Testnet.start({ relays: 3, exits: 1 });
});
after(async () => {
  await tn?.stop();
  await web?.close();
});

test('no plaintext on any link; the same capture sees it on the exit-to-web connection', {
  skip: !canCapture && 'needs tcpdump and root',
}, async () => {
  const relayPorts = tn.relays.map((r) => r.ready.port);
  const linkFile = join(dir, 'links.pcap');
  const webFile = join(dir, 'web.pcap');
  const links = await startCapture(linkFile, `tcp and (${relayPorts.map((p) => `port ${p}`).join(' or ')})`);
  const control = await startCapture(webFile, `tcp and port ${web.port}`);
  const path = '/random1m?request-marker-4b1e';
  files[path] = files['/random1m'];
  await run('curl', [
    '-sS',
    '--fail',
    '--max-time',
    '60',
    '--socks5-hostname',
    `${tn.socksHost}:${tn.socksPort}`,
    '-o',
    join(dir, 'out'),
    `${web.url}${path}`,
  ]);
  await new Promise((r) => setTimeout(r, 300));
  await stopCapture(links);
  await stopCapture(control);
  const linkBytes = readFileSync(linkFile);
  const webBytes = readFileSync(webFile);
  assert.ok(linkBytes.length > 1024 * 1024, 'the links carried the download');

  const needles: Buffer[] = [Buffer.from('request-marker-4b1e'), Buffer.from(`127.0.0.1:${web.port}`)];
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
