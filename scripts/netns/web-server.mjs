#!/usr/bin/env node
// The `web` host of the namespace harness: serves the files of one directory, and /slow, a
// body trickled out slowly so a test can kill a relay while a download is running.
// Usage: node web-server.mjs --host 10.77.0.200 --port 8080 --root DIR [--log-requests]
// --log-requests logs each request with its peer, so a test can read who asked for what.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import { join, normalize } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '0.0.0.0' },
    port: { type: 'string', default: '8080' },
    root: { type: 'string' },
    'log-requests': { type: 'boolean', default: false },
  },
});
if (!values.root) {
  console.error('web-server: --root DIR is required');
  process.exit(2);
}
const root = values.root;

/** /slow?kib=N&ms=M: N KiB (default 2048), 16 KiB every M ms (default 50), with a content-length. */
function slow(url, res) {
  const kib = Math.min(Number(url.searchParams.get('kib') ?? 2048) || 2048, 64 * 1024);
  const every = Math.min(Math.max(Number(url.searchParams.get('ms') ?? 50) || 50, 1), 1000);
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  let left = kib * 1024;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
  const timer = setInterval(() => {
    const n = Math.min(left, chunk.length);
    res.write(chunk.subarray(0, n));
    left -= n;
    if (left === 0) {
      clearInterval(timer);
      res.end();
    }
  }, every);
  res.on('close', () => clearInterval(timer));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://web');
  if (values['log-requests'])
    console.log(
      `request ${req.method} ${url.pathname} from ${req.socket.remoteAddress}:${req.socket.remotePort}`,
    );
  if (url.pathname === '/slow') return slow(url, res);
  // normalize() keeps a request inside root: "/../x" becomes "/x".
  const file = join(root, normalize(url.pathname));
  let size;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a file');
    size = st.size;
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  createReadStream(file).pipe(res);
});
server.on('connection', (s) => {
  // One line per connection: the harness's log shows who reached the web host.
  console.log(`connection from ${s.remoteAddress}:${s.remotePort}`);
});
server.listen(Number(values.port), values.host, () => {
  const a = server.address();
  console.log(`ready role=web url=http://${a.address}:${a.port}/`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
