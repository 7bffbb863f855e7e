// A small local web site for `allium testnet --demo`: something to fetch through the network.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoWebServer {
  url: string;
  /** Remote addresses of the connections it saw (to show that only the exit connected). */
  peers: string[];
  close(): Promise<void>;
}

export function startDemoWebServer(): Promise<DemoWebServer> {
  const peers: string[] = [];
  const server = http.createServer((req, res) => {
    const body = `<!doctype html><html><head><title>Hello from Allium</title></head><body><h1>Hello from Allium</h1><p>This page travelled through a 3-relay onion circuit. You asked for ${req.url}.</p></body></html>\n`;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  server.on('connection', (s) => peers.push(`${s.remoteAddress}:${s.remotePort}`));
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/`,
        peers,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
