// A real browser through the network: headless Chromium (Debian's `chromium`, driven by playwright-core)
// loads a local site through a testnet's SOCKS5 ports (plain and optimistic); then the client's
// dashboard in Chromium.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import { type BrowserContext, chromium } from 'playwright-core';
import { Testnet } from '../src/testnet/testnet.js';
import { CHROMIUM, missingChromium, skipUnlessAvailable } from './helpers/requirements.js';
import { tempDir } from './helpers/temp.js';
import { notePeers, type Peer } from './helpers/web.js';

// The few DOM shapes the in-page callbacks use (this project compiles without the DOM library).
type Win = {
  getComputedStyle(e: unknown): { color: string; fontStyle: string };
  document: { querySelectorAll(s: string): ArrayLike<El> };
};
type El = { dataset: Record<string, string | undefined> };
type Img = { complete: boolean; naturalWidth: number; naturalHeight: number };
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-artifacts');
const skip = skipUnlessAvailable(missingChromium());

/** A width x height PNG, a diagonal gradient (so the browser must really decode it). */
function makePng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour RGB
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([(x * 255) / width, (y * 255) / height, 128], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const SITE: Record<string, [string, Buffer]> = {
  '/': [
    'text/html; charset=utf-8',
    Buffer.from(`<!doctype html><html><head><title>Onion garden</title><link rel="stylesheet" href="/style.css"></head>
<body><h1 id="title">Grown through three relays</h1><p class="note">This page, its stylesheet and its picture came through Allium.</p>
<img id="picture" src="/picture.png" alt="a gradient"></body></html>`),
  ],
  '/style.css': ['text/css', Buffer.from('h1 { color: rgb(12, 34, 56); } .note { font-style: italic; }')],
  '/picture.png': ['image/png', makePng(96, 64)],
};

function startSite(): Promise<{ url: string; peers: Peer[]; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const f = SITE[req.url ?? ''];
    if (!f) return void res.writeHead(404).end();
    res
      .writeHead(200, { 'content-type': f[0], 'content-length': f[1].length, 'cache-control': 'no-store' })
      .end(f[1]);
  });
  const peers = notePeers(server);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        peers,
        requests,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    ),
  );
}

async function launch(extraArgs: string[]): Promise<{ browser: BrowserContext; profile: string }> {
  // A fresh user-data-dir per launch: no cache, cookies or history from another run.
  const profile = tempDir('chromium');
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1000, height: 700 },
    headless: true,
    timeout: 60_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
  return { browser, profile };
}

describe('headless Chromium through a testnet', { skip }, () => {
  let tn: Testnet;
  let site: Awaited<ReturnType<typeof startSite>>;
  const browsers: { browser: BrowserContext; profile: string }[] = [];

  before(async () => {
    site = await startSite();
    tn = await Testnet.start({
      relays: 5,
      clientArgs: ['--dashboard', '127.0.0.1:0', '--socks-optimistic', '127.0.0.1:0'],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    for (const b of browsers) {
      await b.browser.close().catch(() => {});
      rmSync(b.profile, { recursive: true, force: true });
    }
    await tn?.stop();
    await site?.close();
  });

  /** Loads the site in a fresh Chromium through `proxy` and checks what a visitor would see. */
  async function loadSiteThrough(proxy: string, screenshot: string): Promise<void> {
    const b = await launch([
      `--proxy-server=${proxy}`,
      // Chromium sends loopback addresses around a proxy unless told not to.
      '--proxy-bypass-list=<-loopback>',
    ]);
    browsers.push(b);
    site.requests.length = 0;
    site.peers.length = 0;
    const page = await b.browser.newPage();
    const res = await page.goto(site.url, { waitUntil: 'load', timeout: 60_000 });
    assert.equal(res?.status(), 200);
    assert.equal(await page.title(), 'Onion garden');
    assert.equal(await page.textContent('#title'), 'Grown through three relays');
    // The stylesheet applied...
    assert.equal(
      await page.$eval('#title', (e) => (globalThis as unknown as Win).getComputedStyle(e).color),
      'rgb(12, 34, 56)',
    );
    assert.equal(
      await page.$eval('.note', (e) => (globalThis as unknown as Win).getComputedStyle(e).fontStyle),
      'italic',
    );
    // ...and the image decoded at its real size.
    const img = await page.$eval('#picture', (e) => {
      const i = e as unknown as Img;
      return { complete: i.complete, w: i.naturalWidth, h: i.naturalHeight };
    });
    assert.deepEqual(img, { complete: true, w: 96, h: 64 });
    await page.screenshot({ path: join(ARTIFACTS, screenshot) });
    assert.ok(site.requests.includes('/style.css') && site.requests.includes('/picture.png'));
    const exitPids = new Set(tn.relays.filter((r) => r.ready.exit === '1').map((r) => r.proc.pid));
    assert.ok(site.peers.length > 0);
    for (const p of site.peers)
      assert.ok(
        exitPids.has(p.pid ?? -1),
        `connection from ${p.address}:${p.port} (pid ${p.pid}) is not an exit`,
      );
  }

  test('loads a page, its CSS and its image through the SOCKS5 port; the site sees only the exit', async () => {
    await loadSiteThrough(`socks5://${tn.socksHost}:${tn.socksPort}`, 'browser-site.png');
  });

  test('loads the same page through the optimistic SOCKS5 port (--socks-optimistic)', async () => {
    const port = tn.processes.find((p) => p.name === 'client')!.ready.socksOptimistic;
    assert.ok(port, 'the client announced its optimistic SOCKS port');
    await loadSiteThrough(`socks5://${port}`, 'browser-site-optimistic.png');
  });

  test('the dashboard lists live circuits as entry -> middle -> exit; "New circuits" changes them', async () => {
    const dashboard = tn.processes.find((p) => p.name === 'client')!.ready.dashboard;
    assert.ok(dashboard, 'the client announced its dashboard');
    const b = await launch([]);
    browsers.push(b);
    const page = await b.browser.newPage();
    await page.goto(dashboard, { waitUntil: 'load', timeout: 30_000 });
    await page.waitForSelector('li.circuit', { timeout: 15_000 });
    const read = () =>
      page.$$eval('li.circuit', (els) =>
        els.map((e) => ({
          serial: (e as unknown as El).dataset.serial,
          hops: [...e.querySelectorAll('.hop')].map((h) => ({ name: h.textContent, cls: h.className })),
          retired: e.classList.contains('retired'),
        })),
      );
    const before = await read();
    const nicknames = new Set(tn.relays.map((r) => r.ready.nickname));
    for (const c of before) {
      assert.equal(c.hops.length, 3);
      assert.deepEqual(
        c.hops.map((h) => h.cls),
        ['hop entry', 'hop middle', 'hop exit'],
      );
      for (const h of c.hops) assert.ok(nicknames.has(h.name ?? ''), `${h.name} is a relay of this testnet`);
    }
    const beforeLive = new Set(before.filter((c) => !c.retired).map((c) => c.serial));
    assert.ok(beforeLive.size > 0);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-before.png') });
    await page.click('#new-circuits');
    await page.waitForFunction(
      (old: string[]) => {
        const doc = (globalThis as unknown as Win).document;
        const live = Array.from(doc.querySelectorAll('li.circuit:not(.retired)')).map(
          (e) => e.dataset.serial,
        );
        return live.length > 0 && live.every((s) => !old.includes(s ?? ''));
      },
      [...beforeLive] as string[],
      { timeout: 30_000 },
    );
    const afterList = await read();
    const afterLive = afterList.filter((c) => !c.retired).map((c) => c.serial);
    for (const s of afterLive) assert.ok(!beforeLive.has(s), `circuit ${s} is new`);
    assert.match((await page.textContent('#status')) ?? '', /new circuits ready/);
    const shot = join(ARTIFACTS, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 1000);
  });

  test('the dashboard refuses requests for another host name and cross-site POSTs', async () => {
    const dashboard = tn.processes.find((p) => p.name === 'client')!.ready.dashboard;
    const u = new URL(dashboard);
    const code = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: '/api/circuits',
          headers: { host: `evil.example:${u.port}` },
        },
        (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(code, 421);
    const post = await fetch(`${dashboard}api/new-circuits`, { method: 'POST' });
    assert.equal(post.status, 403);
  });
});
