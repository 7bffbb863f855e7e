// The HTTP server stack under every role's port, over real sockets on 127.0.0.1: body limits (declared
// and sent), JSON bodies, HEAD, garbage, idle connections, listen errors; and the router.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodePath, matchRoute, type Route } from './http-routes.js';
import { type HttpServerHandle, readJsonBody, serveHttp } from './http-server.js';

/** Sends raw bytes; resolves with all the server sent once it closes, or what it sent by `ms`. */
function exchange(port: number, bytes: string, ms = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, ms);
    s.on('connect', () => s.write(bytes));
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
  });
}

const LIMIT = 1024;
/** More than the kernel's socket buffers on both ends hold, so a client that reads nothing stalls it. */
const BIG = 'x'.repeat(64 * 1024 * 1024);
/** More than one write takes, so the answer is still being written when the next request arrives. */
const MEDIUM = 'm'.repeat(8 * 1024 * 1024);

describe('serveHttp', () => {
  let server: HttpServerHandle;
  const seen: string[] = [];
  before(async () => {
    server = await serveHttp({
      host: '127.0.0.1',
      port: 0,
      headers: { 'x-every': '1' },
      stalledReaderTimeoutMs: 1000,
      malformedPage: { type: 'application/json', body: '{"garbage":true}' },
      handle: async (req) => {
        seen.push(`${req.method} ${req.path}`);
        if (req.path === '/json') {
          const r = await readJsonBody(req, LIMIT);
          return {
            status: 200,
            type: 'application/json',
            body: JSON.stringify(r),
            close: !r.ok,
          };
        }
        if (req.path === '/throw') throw new Error('handler fault');
        if (req.path === '/big') return { status: 200, type: 'text/plain', body: BIG };
        if (req.path === '/medium') return { status: 200, type: 'text/plain', body: MEDIUM };
        if (req.path === '/slow') {
          await new Promise((r) => setTimeout(r, 2500));
          return { status: 200, type: 'text/plain', body: 'late\n' };
        }
        return { status: 200, type: 'text/plain', body: 'hello\n', headers: { 'x-one': '1' } };
      },
    });
  });
  after(() => server.close());

  const post = async (body: string | Buffer, type?: string) => {
    const res = await fetch(`${server.url}json`, {
      method: 'POST',
      headers: type ? { 'content-type': type } : {},
      body,
    });
    return (await res.json()) as { ok: boolean; reason?: string; value?: unknown };
  };

  it('answers with the server headers and the response headers, and HEAD without the body', async () => {
    const res = await fetch(server.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-every'), '1');
    assert.equal(res.headers.get('x-one'), '1');
    assert.equal(await res.text(), 'hello\n');
    const head = await exchange(server.port, 'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(head.text, /^HTTP\/1\.1 200 /);
    assert.match(head.text, /content-length: 6\r\n/i);
    assert.ok(head.text.endsWith('\r\n\r\n'), 'no body after the headers');
  });

  it('parses JSON bodies and refuses prototype keys, other media types and bad JSON', async () => {
    assert.deepEqual(await post('{"a":[1,2]}', 'application/json'), { ok: true, value: { a: [1, 2] } });
    assert.deepEqual(await post('{"constructor":1}', 'Application/JSON; charset=utf-8'), {
      ok: true,
      value: { constructor: 1 },
    });
    for (const bad of [
      '{"__proto__":{"x":1}}',
      '{"a":{"\\u005f_proto__":{}}}',
      '{"a":{"constructor":{"prototype":{}}}}',
      '{not json',
      '',
    ])
      assert.deepEqual(await post(bad, 'application/json'), { ok: false, reason: 'bad-json' }, bad);
    assert.deepEqual(await post('hello', 'text/plain'), { ok: false, reason: 'media-type' });
    // A body with no Content-Type at all.
    const untyped = await exchange(
      server.port,
      'POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}',
    );
    assert.match(untyped.text, /"reason":"media-type"/);
    const none = await fetch(`${server.url}json`, { method: 'DELETE' });
    assert.deepEqual(await none.json(), { ok: true });
  });

  it('refuses a body over the limit: declared before it is sent, or sent in chunks', async () => {
    // Headers only: the answer comes without the server waiting for the declared body.
    const declared = await exchange(
      server.port,
      `POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${LIMIT + 1}\r\n\r\n`,
    );
    assert.match(declared.text, /"reason":"too-large"/);
    assert.ok(declared.closed, 'the connection is closed after the refusal');
    const chunk = `"${'x'.repeat(600)}"`;
    const size = chunk.length.toString(16);
    const chunked = await exchange(
      server.port,
      `POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${size}\r\n${chunk}\r\n${size}\r\n${chunk}\r\n0\r\n\r\n`,
    );
    assert.match(chunked.text, /"reason":"too-large"/);
    assert.ok(chunked.closed);
    assert.deepEqual(await post(`"${'x'.repeat(LIMIT - 2)}"`, 'application/json'), {
      ok: true,
      value: 'x'.repeat(LIMIT - 2),
    });
  });

  it('answers garbage with its 400 page, a throwing handler with 500, and keeps serving', async () => {
    const garbage = await exchange(server.port, '\x16\x03\x01\x00\xff\r\n\r\n');
    assert.match(garbage.text, /^HTTP\/1\.1 400 [\s\S]*\r\n\r\n\{"garbage":true\}$/);
    assert.ok(garbage.closed);
    const res = await fetch(`${server.url}throw`);
    assert.equal(res.status, 500);
    assert.equal((await fetch(server.url)).status, 200);
  });

  it('drops a client that stops reading its answer, but waits as long as the handler takes', async () => {
    // Reads nothing for 3 s (the 64 MiB answer fills the socket buffers and stops), then everything
    // there is: a dropped connection ends far short of the answer.
    const read = await new Promise<number>((resolve) => {
      let bytes = 0;
      const s = net.connect(server.port, '127.0.0.1', () =>
        s.write('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      const timer = setTimeout(() => s.destroy(), 30_000);
      s.on('error', () => {});
      s.on('close', () => {
        clearTimeout(timer);
        resolve(bytes);
      });
      setTimeout(() => s.on('data', (d) => (bytes += d.length)), 3000);
    });
    assert.ok(read < BIG.length / 2, `a client that read nothing for 3 s still got ${read} bytes`);
    // A handler slower than that timeout still gets its answer through.
    const res = await fetch(`${server.url}slow`);
    assert.equal(await res.text(), 'late\n');
  });

  it('answers a request that arrives while the answer before it is still being written', async () => {
    // Two requests in one write: the second is handled while the 8 MiB answer to the first is on its
    // way, and its answer follows that one on the same connection.
    const both = await exchange(
      server.port,
      'GET /medium HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      10_000,
    );
    assert.ok(both.closed, 'the server closed after the second answer');
    assert.equal(both.text.match(/HTTP\/1\.1 200 /g)?.length, 2, 'two answers');
    assert.ok(both.text.endsWith('\r\n\r\nhello\n'), 'the second answer came after the first, whole');
    assert.ok(both.text.includes(MEDIUM), 'the first answer came whole');
  });

  it('rejects with node\u2019s own error when the port is taken', async () => {
    await assert.rejects(serveHttp({ host: '127.0.0.1', port: server.port, handle: () => ({}) as never }), {
      code: 'EADDRINUSE',
      syscall: 'listen',
    });
  });
});

describe('matchRoute', () => {
  const routes: Route<string>[] = [
    { method: 'GET', path: '/', handler: 'root' },
    { method: 'GET', path: '/v1/relays/:id', handler: 'get' },
    { method: 'DELETE', path: '/v1/relays/:id', handler: 'delete' },
  ];
  const m = (method: string, path: string) => {
    const r = matchRoute(routes, method, path);
    return r ? [r.route.handler, r.params] : null;
  };

  it('matches exact paths and :params, HEAD by the GET route, nothing else', () => {
    assert.deepEqual(m('GET', '/'), ['root', {}]);
    assert.deepEqual(m('HEAD', '/v1/relays/ab'), ['get', { id: 'ab' }]);
    assert.deepEqual(m('DELETE', '/v1/relays/a%62'), ['delete', { id: 'ab' }]);
    assert.equal(m('POST', '/v1/relays/ab'), null);
    assert.equal(m('GET', '/v1/relays/'), null);
    assert.equal(m('GET', '/v1/relays/ab/'), null);
    assert.equal(m('GET', '/v1/relays'), null);
    assert.equal(m('GET', '/V1/relays/ab'), null);
  });

  it('tells broken percent-encoding apart', () => {
    assert.equal(decodePath('/%E0%A4%A'), null);
    assert.equal(decodePath('/%'), null);
    assert.equal(decodePath('/a%20b'), '/a b');
  });
});
