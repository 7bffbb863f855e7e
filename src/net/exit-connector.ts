// Implements docs/protocol.md §4.2 and §7 at the exit: resolve (DNS happens here, never at the client),
// check the policy against the address we will really connect to, then connect.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { ExitPolicy } from '../core/exit-policy.js';
import { StreamError } from '../core/stream-mux.js';
import { EndReason } from '../wire/constants.js';

export interface ExitConnection {
  socket: net.Socket;
  address: string;
}

export const EXIT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * The most the kernel keeps in one TCP socket's send buffer (Linux: the last field of
 * net.ipv4.tcp_wmem; 4 MiB where it cannot be read). Node cannot set SO_SNDBUF on a TCP socket, so
 * this is what a connection whose destination stopped reading may hold in the kernel.
 */
export function kernelSendBufferMax(): number {
  try {
    const max = Number(readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'utf8').trim().split(/\s+/)[2]);
    if (Number.isFinite(max) && max > 0) return max;
  } catch {}
  return 4 * 1024 * 1024;
}

/**
 * How the exit resolves names (an ExitResolver's lookup for the stream's circuit). Never dns.lookup,
 * whose thread pool a few names that never answer would fill. Tests pass a rebinding DNS.
 */
export type ExitLookup = (host: string) => Promise<Array<{ address: string; family: number }>>;

export async function exitConnect(
  host: string,
  port: number,
  policy: ExitPolicy,
  resolve: ExitLookup,
  timeoutMs = EXIT_CONNECT_TIMEOUT_MS,
): Promise<ExitConnection> {
  let address = host;
  // One deadline for resolving and connecting, so the exit always answers before the client gives up.
  const deadline = Date.now() + timeoutMs;
  if (net.isIP(host) === 0) {
    try {
      let timer: NodeJS.Timeout | undefined;
      const results = await Promise.race([
        resolve(host),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new StreamError('ALLIUM_EXIT_TIMEOUT', `resolving ${host} timed out`, EndReason.TIMEOUT),
              ),
            timeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      // Take the first address the policy allows, so one allowed answer is enough.
      const allowed = results.find((r) => policy.allows(r.address, port));
      if (!allowed) {
        if (results.length > 0) {
          throw new StreamError(
            'ALLIUM_EXIT_POLICY',
            `exit policy refuses ${host}:${port}`,
            EndReason.EXITPOLICY,
          );
        }
        throw new StreamError('ALLIUM_EXIT_RESOLVE', `cannot resolve ${host}`, EndReason.RESOLVEFAILED);
      }
      address = allowed.address;
    } catch (err) {
      if (err instanceof StreamError) throw err;
      throw new StreamError('ALLIUM_EXIT_RESOLVE', `cannot resolve ${host}`, EndReason.RESOLVEFAILED);
    }
  } else if (!policy.allows(host, port)) {
    throw new StreamError('ALLIUM_EXIT_POLICY', `exit policy refuses ${host}:${port}`, EndReason.EXITPOLICY);
  }
  const socket = await connectTcp(address, port, Math.max(0, deadline - Date.now()), host);
  return { socket, address };
}

/**
 * A TCP connection to host:port (an address, or a name the system resolves: only for a local server
 * its operator named, never for a client's destination), failing with a StreamError whose END reason
 * says why. `name` is how messages call the host.
 */
export function connectTcp(host: string, port: number, timeoutMs: number, name = host): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new StreamError('ALLIUM_EXIT_TIMEOUT', `connecting to ${name}:${port} timed out`, EndReason.TIMEOUT),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const reason =
        err.code === 'ECONNREFUSED'
          ? EndReason.CONNECTREFUSED
          : err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH'
            ? EndReason.NOROUTE
            : err.code === 'ETIMEDOUT'
              ? EndReason.TIMEOUT
              : EndReason.MISC;
      reject(
        new StreamError('ALLIUM_EXIT_CONNECT', `cannot connect to ${name}:${port}: ${err.code}`, reason),
      );
    });
  });
}
