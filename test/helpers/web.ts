// Local web servers for the tests: HTTP with a large random file, and HTTPS with a fresh self-signed
// certificate made by the openssl command.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { tempDir } from './temp.js';

export interface Peer {
  address: string;
  port: number;
  /** The process that owns the connecting socket (found with `ss`), so a test can tell who connected. */
  pid: number | null;
}

export interface WebServer {
  port: number;
  url: string;
  peers: Peer[];
  close(): Promise<void>;
}

export interface Files {
  [path: string]: Buffer;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function makeFiles(): Files {
  return {
    '/hello': Buffer.from('RESPONSE-MARKER-7f3a hello through the onion\n'),
    '/random10m': randomBytes(10 * 1024 * 1024),
    '/random1m': randomBytes(1024 * 1024),
  };
}

function handler(files: Files) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const body = files[req.url ?? ''];
    if (!body) {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  };
}

/** The pid of the process whose TCP socket has local port `port` on loopback. */
export function socketOwner(port: number): number | null {
  const r = spawnSync('ss', ['-tnpH', 'state', 'all', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(r.stdout ?? '');
  return m ? Number(m[1]) : null;
}

/** Every connection `server` accepts, with the process that made it, in order. */
export function notePeers(server: http.Server): Peer[] {
  const peers: Peer[] = [];
  server.on('connection', (s) =>
    peers.push({
      address: s.remoteAddress ?? '',
      port: s.remotePort ?? 0,
      pid: socketOwner(s.remotePort ?? 0),
    }),
  );
  return peers;
}

function listen(server: http.Server, scheme: string, host = '127.0.0.1'): Promise<WebServer> {
  const peers = notePeers(server);
  return new Promise((resolve) => {
    server.listen({ port: 0, host, backlog: 511 }, () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        port,
        url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`,
        peers,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

/** An HTTP server of `files` for the tests of one file: started before them, closed after. */
export function webServerForFile(files: Files): { readonly server: WebServer } {
  const holder = {} as { server: WebServer };
  before(async () => {
    holder.server = await startHttpServer(files);
  });
  after(async () => {
    await holder.server?.close();
  });
  return holder;
}

export function startHttpServer(files: Files, host = '127.0.0.1'): Promise<WebServer> {
  return listen(http.createServer(handler(files)), 'http', host);
}

export interface TlsMaterial {
  certPath: string;
  cert: Buffer;
  key: Buffer;
}

export function makeCertificate(): TlsMaterial {
  const dir = tempDir('cert');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { stdio: 'ignore' },
  );
  return { certPath, cert: readFileSync(certPath), key: readFileSync(keyPath) };
}

export function startHttpsServer(files: Files, tlsMaterial: TlsMaterial): Promise<WebServer> {
  return listen(
    https.createServer({ cert: tlsMaterial.cert, key: tlsMaterial.key }, handler(files)),
    'https',
  );
}
