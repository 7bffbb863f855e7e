// Whether a TCP address can be listened on now: a command that starts several processes checks its
// fixed ports first, rather than finding one taken after starting the others.
import { createServer } from 'node:net';

/** Resolves when host:port could be listened on (and is released again); rejects with the listen error. */
export function checkListenable(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

/**
 * A port on `host` that was free a moment ago, for a process started next that must be named before
 * it listens (an authority's URL goes into the set every authority reads at start).
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}
