// The benchmark's web server, run as its own process so its CPU and memory are measured
// apart from the bench driver. Serves every file of a directory from memory, plus an endless-ish
// generated stream for the slow-reader line that honours backpressure.
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

const dir = process.argv[2];
const host = process.argv[3] ?? '127.0.0.1';
if (!dir) {
  process.stderr.write('usage: web-server.js <directory of files> [host]\n');
  process.exit(2);
}

const files = new Map<string, Buffer>();
for (const name of readdirSync(dir)) files.set(`/${name}`, readFileSync(join(dir, name)));

// One random chunk reused for generated streams: the server's memory stays flat however long they run.
const chunk = files.get('/1m') ?? Buffer.alloc(1024 * 1024, 0x5a);
const STREAM_WRITE = 64 * 1024;

/** Bytes the kernel accepted for each generated stream (what the exit must have read, or buffered). */
const streams = new Map<string, { sent: number; done: boolean }>();

function serveStream(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
  const total = Number(url.searchParams.get('bytes') ?? '0');
  const id = url.searchParams.get('id') ?? 'stream';
  const st = { sent: 0, done: false };
  streams.set(id, st);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  let offset = 0;
  const pump = () => {
    while (st.sent < total) {
      const n = Math.min(STREAM_WRITE, total - st.sent, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + n);
      offset = (offset + n) % chunk.length;
      st.sent += n;
      // Stop at the first full buffer: only the socket draining lets us write more.
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
    st.done = true;
  };
  req.socket.once('close', () => {
    st.done = true;
  });
  pump();
}

/** The upload line: reads the whole body, keeps none of it, and answers with its length. */
function receiveUpload(req: http.IncomingMessage, res: http.ServerResponse): void {
  let bytes = 0;
  req.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  req.on('end', () => {
    const body = `${bytes}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

const server = http.createServer({ noDelay: true }, (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/stream') return serveStream(req, res, url);
  if (url.pathname === '/upload') return receiveUpload(req, res);
  if (url.pathname === '/stats') {
    const body = JSON.stringify(Object.fromEntries(streams));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const body = files.get(url.pathname);
  if (!body) {
    res.writeHead(404).end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 1000;
// A big backlog: 8 concurrent downloads through several proxies must never wait in SYN queues.
server.listen({ host, port: 0, backlog: 4096 }, () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`ready port=${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
