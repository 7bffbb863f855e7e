// The library API as a Node program uses it: createClient, fetch (streaming, HTTPS, POST, redirects,
// gzip), connect, isolation, close; and the README example, run as written.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { type Client, createClient } from '../src/index.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { makeCertificate, makeFiles, sha256, startHttpsServer, type WebServer } from './helpers/web.js';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A web server with what the fetch tests need besides plain files. */
function startSite(files: Record<string, Buffer>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === '/echo' && req.method === 'POST') {
      const parts: Buffer[] = [];
      req.on('data', (d) => parts.push(d));
      req.on('end', () =>
        res
          .writeHead(200, { 'content-type': 'text/plain', 'x-method': req.method ?? '' })
          .end(Buffer.concat(parts)),
      );
      return;
    }
    if (req.url === '/redirect') return void res.writeHead(302, { location: '/hello' }).end();
    if (req.url === '/gzip')
      return void res
        .writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'text/plain' })
        .end(gzipSync(Buffer.from('compressed hello\n'.repeat(100))));
    const body = files[req.url ?? ''];
    if (!body) return void res.writeHead(404).end('not found\n');
    res
      .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
      .end(body);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    }),
  );
}

describe('the library API (createClient) over an in-process network', () => {
  let net: InProcessNetwork;
  let client: Client;
  let site: { url: string; close(): Promise<void> };
  let secure: WebServer;
  const files = makeFiles();
  const tls = makeCertificate();

  before(async () => {
    net = await startNetwork({ relays: 4, exits: 2 });
    site = await startSite(files);
    secure = await startHttpsServer(files, tls);
    client = await createClient({
      directory: net.directory.url,
      directoryKey: net.directory.publicKey.toString('base64'),
      ca: tls.cert,
    });
  });
  after(async () => {
    await client?.close();
    await site?.close();
    await secure?.close();
    await net?.stop();
  });

  test('fetch returns a standard Response whose 10 MiB body arrives in many chunks, byte for byte', async () => {
    const before = client.stats().bytesIn;
    const res = await client.fetch(`${site.url}/random10m`);
    assert.ok(res instanceof Response);
    assert.equal(res.status, 200);
    assert.equal(res.ok, true);
    assert.equal(res.headers.get('content-length'), String(files['/random10m'].length));
    assert.equal(res.url, `${site.url}/random10m`);
    const hash = createHash('sha256');
    let chunks = 0;
    let total = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      chunks++;
      total += chunk.length;
      hash.update(chunk);
    }
    assert.equal(total, files['/random10m'].length);
    assert.equal(hash.digest('hex'), sha256(files['/random10m']));
    assert.ok(chunks > 10, `the body streamed in ${chunks} chunks`);
    // It came through a circuit, not around the network.
    assert.ok(client.stats().bytesIn - before >= files['/random10m'].length);
  });

  test('fetch over HTTPS verifies the server (TLS end to end) and refuses an untrusted certificate', async () => {
    const before = secure.peers.length;
    const res = await client.fetch(`https://localhost:${secure.port}/hello`);
    assert.equal(await res.text(), files['/hello'].toString());
    assert.equal(secure.peers.length, before + 1);
    const strict = await createClient({
      directory: net.directory.url,
      directoryKey: net.directory.publicKey,
    });
    try {
      await assert.rejects(
        strict.fetch(`https://localhost:${secure.port}/hello`),
        (err: Error & { code: string }) => {
          assert.equal(err.code, 'ALLIUM_FETCH_TLS');
          assert.match(err.message, /certificate/i);
          return true;
        },
      );
    } finally {
      await strict.close();
    }
  });

  test('fetch sends a POST body, follows a redirect, and decodes gzip', async () => {
    const post = await client.fetch(`${site.url}/echo`, { method: 'POST', body: 'ping through the onion' });
    assert.equal(post.headers.get('x-method'), 'POST');
    assert.equal(await post.text(), 'ping through the onion');
    const moved = await client.fetch(`${site.url}/redirect`);
    assert.equal(moved.redirected, true);
    assert.equal(moved.url, `${site.url}/hello`);
    assert.equal(await moved.text(), files['/hello'].toString());
    const manual = await client.fetch(`${site.url}/redirect`, { redirect: 'manual' });
    assert.equal(manual.status, 302);
    const gz = await client.fetch(`${site.url}/gzip`);
    assert.equal(await gz.text(), 'compressed hello\n'.repeat(100));
  });

  test('a missing page is a Response with status 404, not an error', async () => {
    const res = await client.fetch(`${site.url}/nope`);
    assert.equal(res.status, 404);
    assert.equal(res.ok, false);
    assert.equal(await res.text(), 'not found\n');
  });

  test('connect returns a Duplex to host:port through the network', async () => {
    const { port } = new URL(site.url);
    const s = await client.connect('127.0.0.1', Number(port));
    s.write('GET /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    const parts: Buffer[] = [];
    for await (const d of s) parts.push(d as Buffer);
    const text = Buffer.concat(parts).toString();
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.ok(text.endsWith(files['/hello'].toString()));
  });

  test('different isolation keys get different circuits; the same key shares one', async () => {
    await (await client.fetch(`${site.url}/hello`, { isolation: 'alice' })).text();
    await (await client.fetch(`${site.url}/hello`, { isolation: 'bob' })).text();
    await (await client.fetch(`${site.url}/hello`, { isolation: 'alice' })).text();
    const byKey = (k: string) => client.raw.listCircuits().filter((c) => c.isolation === `library:${k}`);
    assert.equal(byKey('alice').length, 1, 'alice reused her circuit');
    assert.equal(byKey('bob').length, 1);
    assert.notEqual(byKey('alice')[0], byKey('bob')[0]);
    const views = client.circuits();
    assert.ok(
      views.every((v) => v.path.length === 3 && v.path[0].role === 'entry' && v.path[2].role === 'exit'),
    );
  });

  test('close() ends every circuit, and later calls fail with a clear error', async () => {
    const c = await createClient({ directory: net.directory.url, directoryKey: net.directory.publicKey });
    await (await c.fetch(`${site.url}/hello`)).text();
    assert.ok(c.raw.listCircuits().length > 0);
    await c.close();
    assert.equal(c.raw.listCircuits().length, 0);
    await assert.rejects(c.fetch(`${site.url}/hello`), /closed/);
  });

  test('createClient with a malformed key says what it expects', async () => {
    await assert.rejects(
      createClient({ directory: net.directory.url, directoryKey: 'c2hvcnQ=' }),
      (err: Error & { code: string }) => {
        assert.equal(err.code, 'ALLIUM_CLIENT_DIRECTORY_KEY');
        assert.match(err.message, /32 bytes/);
        return true;
      },
    );
  });

  test('the README example runs as written (import from "allium", then the process exits by itself)', async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Use it from Node'));
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(code, 'README has a js example under "Use it from Node"');
    // Inside the package, so `import 'allium'` resolves to this package's "exports" (dist/src/index.js).
    const dir = join(REPO, 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'readme-example.mjs');
    writeFileSync(file, code);
    const { stdout } = await run(process.execPath, [file], {
      timeout: 60_000,
      env: {
        ...process.env,
        ALLIUM_DIRECTORY: net.directory.url,
        ALLIUM_DIRECTORY_KEY: net.directory.publicKey.toString('base64'),
        URL: `${site.url}/random1m`,
      },
    });
    assert.match(stdout, new RegExp(`^200 application/octet-stream ${files['/random1m'].length} bytes\n`));
    assert.match(stdout, /again on another circuit: 200/);
  });
});
