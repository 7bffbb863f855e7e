// `allium fetch` on a real terminal (tmux): its progress bar hides the cursor and turns line wrapping
// off; Ctrl-C in the middle of a download gives both back and says what is left of the file.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CLI_PATH, Testnet } from '../src/testnet/testnet.js';
import { missingCommands, skipUnlessAvailable } from './helpers/requirements.js';
import { tempDir } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const WRAP_OFF = '\x1b[?7l';
const WRAP_ON = '\x1b[?7h';

const skip = skipUnlessAvailable(missingCommands('tmux'));
const socket = `allium-test-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });

let tn: Testnet;
let web: Server;
let tmp = '';

before(async () => {
  if (skip) return;
  tmp = tempDir('tty');
  tn = await Testnet.start({ relays: 3, exits: 1, client: false });
  // A body that never finishes in time: 64 KiB every 100 ms of an announced 1 GiB.
  web = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(1 << 30) });
    const chunk = Buffer.alloc(64 * 1024, 97);
    const timer = setInterval(() => res.write(chunk), 100);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
});

after(async () => {
  spawnSync('tmux', ['-L', socket, 'kill-server']);
  await tn?.stop();
  await new Promise((r) => (web ? web.close(r) : r(null)));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('Ctrl-C during a fetch restores the cursor and line wrapping, and says what is left of the file', {
  skip,
}, async () => {
  const raw = join(tmp, 'terminal.raw');
  const out = join(tmp, 'big.bin');
  const url = `http://127.0.0.1:${(web.address() as AddressInfo).port}/big`;
  tmux('new-session', '-d', '-s', 'fetch', '-x', '120', '-y', '30', 'bash --norc --noprofile');
  // Every byte the terminal receives, escape sequences included.
  tmux('pipe-pane', '-t', 'fetch', '-o', `cat >> ${raw}`);
  // As a user runs it from a clone: plain node, no runtime flags (the command relaunches itself).
  const cmd = `${process.execPath} ${CLI_PATH} fetch ${url} --directory ${tn.directoryUrl} --directory-key ${tn.directoryKey} -o ${out}; echo "exit=$?"`;
  tmux('send-keys', '-t', 'fetch', cmd, 'Enter');
  await waitFor(
    'the progress bar',
    () => existsSync(raw) && readFileSync(raw, 'latin1').includes(HIDE_CURSOR),
    {
      timeoutMs: 30_000,
      everyMs: 100,
    },
  );
  await waitFor('some of the body', () => existsSync(out) && readFileSync(out).length > 0, {
    timeoutMs: 30_000,
    everyMs: 100,
  });
  tmux('send-keys', '-t', 'fetch', 'C-c');
  const text = await waitFor(
    'the fetch to end',
    () => {
      const t = existsSync(raw) ? readFileSync(raw, 'latin1') : '';
      return /exit=\d+/.test(t) && t;
    },
    { timeoutMs: 30_000, everyMs: 100 },
  );
  assert.match(text, /exit=130/);
  assert.ok(text.includes(WRAP_OFF), 'the bar turned wrapping off (else this test proves nothing)');
  assert.ok(
    text.lastIndexOf(SHOW_CURSOR) > text.lastIndexOf(HIDE_CURSOR),
    'the cursor is shown again after it was last hidden',
  );
  assert.ok(text.lastIndexOf(WRAP_ON) > text.lastIndexOf(WRAP_OFF), 'line wrapping is on again');
  assert.match(text, /interrupted; .*big\.bin is kept with the first .* only \(incomplete\)/);
});
