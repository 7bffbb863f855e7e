// fetchOver (the library's fetch) and streamGet (`allium fetch`) against real HTTP servers on
// 127.0.0.1, the stream to each opened with a plain TCP connection where the network would open a
// circuit stream: redirects, content decoding, bodies, abort and timeouts.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { type FetchError, fetchOver } from './fetch.js';
import { streamGet } from './http-fetch.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A server that answers by path, and remembers every request it read. */
async function startServer(
  routes: Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => void>,
) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const route = routes[(req.url ?? '').split('?')[0]];
      if (route) route(req, res);
      else res.writeHead(404).end('not found');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Where the network would open a circuit stream: a TCP connection, and a note of where it went. */
function tcp(opened: string[] = []) {
  return {
    opened,
    connect: (host: string, port: number) =>
      new Promise<net.Socket>((resolve, reject) => {
        opened.push(`${host}:${port}`);
        const s = net.connect({ host, port }, () => resolve(s));
        s.once('error', reject);
      }),
  };
}

const BODY = 'the body of the page '.repeat(500);
let a: Awaited<ReturnType<typeof startServer>>;
let b: Awaited<ReturnType<typeof startServer>>;

before(async () => {
  b = await startServer({
    '/landing': (_req, res) => res.end('landed'),
  });
  a = await startServer({
    '/page': (_req, res) => res.writeHead(200, { 'x-test': 'yes' }).end(BODY),
    '/gzip': (_req, res) => res.writeHead(200, { 'content-encoding': 'gzip' }).end(zlib.gzipSync(BODY)),
    '/deflate': (_req, res) =>
      res.writeHead(200, { 'content-encoding': 'deflate' }).end(zlib.deflateSync(BODY)),
    '/br': (_req, res) => res.writeHead(200, { 'content-encoding': 'br' }).end(zlib.brotliCompressSync(BODY)),
    '/empty': (_req, res) => res.writeHead(204).end(),
    '/echo': (req, res) => res.end(`${req.method} ${req.headers['content-type'] ?? ''}`),
    '/to-page': (_req, res) => res.writeHead(302, { location: '/page' }).end(),
    '/see-other': (_req, res) => res.writeHead(303, { location: '/echo' }).end(),
    '/temporary': (_req, res) => res.writeHead(307, { location: '/echo' }).end(),
    '/loop': (_req, res) => res.writeHead(302, { location: '/loop' }).end(),
    '/elsewhere': (_req, res) => res.writeHead(302, { location: `${b.origin}/landing` }).end(),
    '/ftp': (_req, res) => res.writeHead(302, { location: 'ftp://127.0.0.1/x' }).end(),
    '/silent': () => {},
    '/slow-body': (_req, res) => {
      res.writeHead(200, { 'content-length': '1000000' });
      res.write('x'.repeat(1000));
    },
  });
});
after(async () => {
  await a?.close();
  await b?.close();
});

describe('fetchOver (the WHATWG fetch contract over streams)', () => {
  it('returns a standard Response: status, headers, body, url, through the stream it opened', async () => {
    const conn = tcp();
    const res = await fetchOver(`${a.origin}/page`, undefined, conn);
    assert.ok(res instanceof Response);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-test'), 'yes');
    assert.equal(await res.text(), BODY);
    assert.equal(res.url, `${a.origin}/page`);
    assert.equal(res.redirected, false);
    assert.deepEqual(conn.opened, [`127.0.0.1:${a.port}`]);
    const req = a.seen.at(-1)!;
    assert.equal(req.headers.host, `127.0.0.1:${a.port}`);
    assert.equal(req.headers.connection, 'close');
  });

  for (const encoding of ['gzip', 'deflate', 'br']) {
    it(`decodes a ${encoding} body`, async () => {
      const res = await fetchOver(`${a.origin}/${encoding}`, undefined, tcp());
      assert.equal(await res.text(), BODY);
    });
  }

  it('a 404 is a Response, and a 204 or a HEAD has a null body', async () => {
    assert.equal((await fetchOver(`${a.origin}/nope`, undefined, tcp())).status, 404);
    assert.equal((await fetchOver(`${a.origin}/empty`, undefined, tcp())).body, null);
    const head = await fetchOver(`${a.origin}/page`, { method: 'HEAD' }, tcp());
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
  });

  it('sends a request body with its length and type', async () => {
    const res = await fetchOver(
      `${a.origin}/echo`,
      { method: 'POST', body: 'name=value', headers: { 'content-type': 'text/plain' } },
      tcp(),
    );
    assert.equal(await res.text(), 'POST text/plain');
    const req = a.seen.at(-1)!;
    assert.equal(req.body, 'name=value');
    assert.equal(req.headers['content-length'], '10');
  });

  it('follows redirects: 302 to the page, 303 as a GET without the body, 307 with method and body', async () => {
    const conn = tcp();
    const r302 = await fetchOver(`${a.origin}/to-page`, undefined, conn);
    assert.equal(await r302.text(), BODY);
    assert.equal(r302.redirected, true);
    assert.equal(r302.url, `${a.origin}/page`);
    assert.equal(conn.opened.length, 2, 'a new stream for each request');
    const r303 = await fetchOver(`${a.origin}/see-other`, { method: 'POST', body: 'x' }, tcp());
    assert.equal(await r303.text(), 'GET ');
    assert.equal(a.seen.at(-1)!.body, '');
    const r307 = await fetchOver(
      `${a.origin}/temporary`,
      { method: 'POST', body: 'kept', headers: { 'content-type': 'a/b' } },
      tcp(),
    );
    assert.equal(await r307.text(), 'POST a/b');
    assert.equal(a.seen.at(-1)!.body, 'kept');
  });

  it('redirect "manual" returns the redirect, "error" rejects, and a loop stops after 20', async () => {
    const manual = await fetchOver(`${a.origin}/to-page`, { redirect: 'manual' }, tcp());
    assert.equal(manual.status, 302);
    assert.equal(manual.headers.get('location'), '/page');
    await assert.rejects(
      fetchOver(`${a.origin}/to-page`, { redirect: 'error' }, tcp()),
      (e: FetchError) => e.code === 'ALLIUM_FETCH_REDIRECT_REFUSED',
    );
    const conn = tcp();
    await assert.rejects(
      fetchOver(`${a.origin}/loop`, undefined, conn),
      (e: FetchError) => e.code === 'ALLIUM_FETCH_REDIRECTS',
    );
    assert.equal(conn.opened.length, 21);
  });

  it('drops credentials on a redirect to another origin, and refuses a redirect to another scheme', async () => {
    const res = await fetchOver(
      `${a.origin}/elsewhere`,
      { headers: { authorization: 'Bearer secret', cookie: 'id=1', 'x-kept': 'yes' } },
      tcp(),
    );
    assert.equal(await res.text(), 'landed');
    const atA = a.seen.at(-1)!;
    assert.equal(atA.headers.authorization, 'Bearer secret', 'the first origin got them');
    const atB = b.seen.at(-1)!;
    assert.equal(atB.headers.authorization, undefined);
    assert.equal(atB.headers.cookie, undefined);
    assert.equal(atB.headers['x-kept'], 'yes');
    await assert.rejects(
      fetchOver(`${a.origin}/ftp`, undefined, tcp()),
      (e: FetchError) => e.code === 'ALLIUM_FETCH_URL',
    );
  });

  it('refuses a URL that is not http or https before opening anything', async () => {
    const conn = tcp();
    await assert.rejects(
      fetchOver('ftp://127.0.0.1/x', undefined, conn),
      (e: FetchError) => e.code === 'ALLIUM_FETCH_URL',
    );
    assert.deepEqual(conn.opened, []);
  });

  it('an abort while the stream opens, while waiting for headers, or during the body ends the fetch', async () => {
    // While the stream is being opened (the network builds a circuit meanwhile).
    const opening = new AbortController();
    const conn = tcp();
    const whileOpening = fetchOver(
      `${a.origin}/page`,
      { signal: opening.signal },
      {
        connect: (host, port) => {
          opening.abort();
          return conn.connect(host, port);
        },
      },
    );
    await assert.rejects(whileOpening, (e: Error) => e.name === 'AbortError');
    // While the server has the request and says nothing.
    const waiting = new AbortController();
    const before = a.seen.length;
    const pending = fetchOver(`${a.origin}/silent`, { signal: waiting.signal }, tcp());
    while (a.seen.length === before) await new Promise((r) => setImmediate(r));
    waiting.abort();
    await assert.rejects(pending, (e: Error) => e.name === 'AbortError');
    // In the middle of the body.
    const reading = new AbortController();
    const res = await fetchOver(`${a.origin}/slow-body`, { signal: reading.signal }, tcp());
    const body = res.text();
    reading.abort();
    await assert.rejects(body, (e: Error) => e.name === 'AbortError');
  });

  it('gives up on a server that sends no response headers in time', async () => {
    await assert.rejects(
      fetchOver(`${a.origin}/silent`, undefined, { ...tcp(), headersTimeoutMs: 200 }),
      (e: FetchError) => e.code === 'ALLIUM_FETCH_TIMEOUT',
    );
  });
});

describe('streamGet (allium fetch)', () => {
  it('GETs a page over the stream it opened, with its headers', async () => {
    const conn = tcp();
    const res = await streamGet(`${a.origin}/page`, { ...conn, headers: { 'x-extra': '1' } });
    assert.equal(res.statusCode, 200);
    assert.equal(await text(res), BODY);
    assert.deepEqual(conn.opened, [`127.0.0.1:${a.port}`]);
    assert.equal(a.seen.at(-1)!.headers['x-extra'], '1');
    assert.match(String(a.seen.at(-1)!.headers['user-agent']), /^allium\//);
  });

  it('refuses a malformed URL or another scheme, and times out a silent server', async () => {
    await assert.rejects(streamGet('not a url', tcp()), (e: FetchError) => e.code === 'ALLIUM_FETCH_URL');
    await assert.rejects(
      streamGet('ftp://127.0.0.1/', tcp()),
      (e: FetchError) => e.code === 'ALLIUM_FETCH_URL',
    );
    await assert.rejects(
      streamGet(`${a.origin}/silent`, { ...tcp(), timeoutMs: 200 }),
      (e: FetchError) => e.code === 'ALLIUM_FETCH_TIMEOUT',
    );
  });

  it('a stream that cannot be opened rejects with the error of the one opening it', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    await assert.rejects(streamGet(`http://127.0.0.1:${port}/`, tcp()), (e: Error) =>
      /ECONNREFUSED/.test(e.message),
    );
  });
});
