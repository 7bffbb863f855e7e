// A local git "smart HTTP" server for the tests: `git http-backend` run as CGI by a tiny Node server
// (HTTP or HTTPS), serving one bare repository with a known commit.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './temp.js';
import { notePeers, type Peer, type TlsMaterial } from './web.js';

export interface GitServer {
  url: string;
  port: number;
  peers: Peer[];
  /** The commit the repository's main branch points at. */
  head: string;
  close(): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Allium Test',
  GIT_AUTHOR_EMAIL: 'test@allium.invalid',
  GIT_COMMITTER_NAME: 'Allium Test',
  GIT_COMMITTER_EMAIL: 'test@allium.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: tmpdir(),
};

/** A bare repository `repo.git` with one commit holding README.md (`content`). */
function makeRepo(content: string): { root: string; head: string } {
  const root = tempDir('git');
  const work = join(root, 'work');
  const env = { ...process.env, ...GIT_ENV };
  execFileSync('git', ['init', '-q', '-b', 'main', work], { env });
  writeFileSync(join(work, 'README.md'), content);
  execFileSync('git', ['-C', work, 'add', 'README.md'], { env });
  execFileSync('git', ['-C', work, 'commit', '-q', '-m', 'first'], { env });
  execFileSync('git', ['clone', '-q', '--bare', work, join(root, 'repo.git')], { env });
  const head = execFileSync('git', ['-C', work, 'rev-parse', 'HEAD'], { env, encoding: 'utf8' }).trim();
  return { root, head };
}

function cgi(root: string) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const child = spawn('git', ['http-backend'], {
      env: {
        ...process.env,
        ...GIT_ENV,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(u.pathname),
        QUERY_STRING: u.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        CONTENT_LENGTH: req.headers['content-length'] ?? '',
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        HTTP_GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_ADDR: req.socket.remoteAddress ?? '',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(child.stdin);
    child.stdin.on('error', () => {});
    // CGI output: headers, a blank line, then the body.
    let head = Buffer.alloc(0);
    let inBody = false;
    child.stdout.on('data', (d: Buffer) => {
      if (inBody) return void res.write(d);
      head = Buffer.concat([head, d]);
      const i = head.indexOf('\r\n\r\n');
      const j = i >= 0 ? i : head.indexOf('\n\n');
      if (j < 0) return;
      const sep = i >= 0 ? 4 : 2;
      let status = 200;
      for (const line of head.subarray(0, j).toString().split(/\r?\n/)) {
        const k = line.indexOf(':');
        const name = line.slice(0, k).trim();
        const value = line.slice(k + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      inBody = true;
      const rest = head.subarray(j + sep);
      if (rest.length) res.write(rest);
    });
    child.on('close', () => {
      if (!inBody) res.writeHead(500);
      res.end();
    });
  };
}

export function startGitServer(opts: { tls?: TlsMaterial; content: string }): Promise<GitServer> {
  const { root, head } = makeRepo(opts.content);
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, cgi(root))
    : http.createServer(cgi(root));
  const peers = notePeers(server);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      const host = opts.tls ? 'localhost' : '127.0.0.1';
      resolve({
        url: `${opts.tls ? 'https' : 'http'}://${host}:${port}/repo.git`,
        port,
        peers,
        head,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    }),
  );
}
