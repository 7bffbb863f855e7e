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
