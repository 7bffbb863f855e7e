// Implements RFC 1928 (SOCKS5 CONNECT) and RFC 1929 around the no-I/O step machine in wire/socks5.ts.
// Credentials become the isolation key: different credentials never share a circuit.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { StreamError } from '../core/stream-mux.js';
import { AlliumError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import {
  encodeSocksReply,
  Socks5Handshake,
  SocksReply,
  socksReplyForEndReason,
  socksReplyForOnionCode,
} from '../wire/socks5.js';
import { spliceStream } from './splice-stream.js';

export interface SocksRequest {
  host: string;
  port: number;
  isolation: string;
  /** The stream should be opened optimistically (protocol §4.2): see SocksServerOptions.optimistic. */
  optimistic: boolean;
}

export interface SocksServerOptions {
  host: string;
  port: number;
  connect(req: SocksRequest): Promise<Duplex>;
  logger?: Logger;
  /** A client must finish greeting, auth and request within this (default 10 s): slowloris. */
  handshakeTimeoutMs?: number;
  /** Open connections at most (default 1024); more are closed at once and counted in `refused`. */
  maxConnections?: number;
  /**
   * Answer CONNECT as soon as the stream's BEGIN is on its way, not when the exit has connected: the
   * application's first bytes then follow the BEGIN (optimistic data, protocol §4.2), one circuit
   * round trip sooner. The price: an exit that cannot reach the destination shows as a reset
   * connection, not as a SOCKS error code. Default false.
   */
  optimistic?: boolean;
}

export const DEFAULT_SOCKS_MAX_CONNECTIONS = 1024;
export const DEFAULT_SOCKS_HANDSHAKE_TIMEOUT_MS = 10_000;

export class SocksServer {
  private readonly sockets = new Set<net.Socket>();
  /** Connections accepted (since start). */
  connections = 0;
  /** Handshakes refused and requests the network could not serve. */
  failures = 0;
  /** Connections closed at once because maxConnections were open. */
  refused = 0;
  /** Connections closed because the handshake did not finish in time. */
  handshakeTimeouts = 0;
  private readonly maxConnections: number;

  private constructor(
    private readonly server: net.Server,
    private readonly opts: SocksServerOptions,
  ) {
    this.maxConnections = opts.maxConnections ?? DEFAULT_SOCKS_MAX_CONNECTIONS;
  }

  /** Connections open right now. */
  get active(): number {
    return this.sockets.size;
  }

  static listen(opts: SocksServerOptions): Promise<SocksServer> {
    const server = net.createServer();
    const s = new SocksServer(server, opts);
    server.on('connection', (socket) => s.onConnection(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve(s);
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private onConnection(socket: net.Socket): void {
    if (this.sockets.size >= this.maxConnections) {
      // Before any byte is read: a flood of idle connections costs one file descriptor each, briefly.
      this.refused++;
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.connections++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const log = this.opts.logger ?? silentLogger;
    const hs = new Socks5Handshake();
    const timer = setTimeout(() => {
      this.handshakeTimeouts++;
      socket.destroy();
    }, this.opts.handshakeTimeoutMs ?? DEFAULT_SOCKS_HANDSHAKE_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      let input = chunk;
      for (;;) {
        const step = hs.step(input);
        input = Buffer.alloc(0);
        if (step.kind === 'need-more') return;
        if (step.kind === 'reply') {
          socket.write(step.bytes);
          continue;
        }
        if (step.kind === 'fail') {
          clearTimeout(timer);
          socket.off('data', onData);
          this.failures++;
          log.debug({ err: step.error.message }, 'SOCKS handshake refused');
          socket.end(step.bytes);
          return;
        }
        // A CONNECT request: stop reading until the stream exists.
        clearTimeout(timer);
        socket.off('data', onData);
        socket.pause();
        const isolation = step.username !== undefined ? `socks:${step.username}:${step.password ?? ''}` : '';
        const optimistic = this.opts.optimistic === true;
        this.opts.connect({ host: step.host, port: step.port, isolation, optimistic }).then(
          (stream) => {
            if (socket.destroyed) {
              stream.destroy();
              return;
            }
            socket.write(encodeSocksReply(SocksReply.SUCCEEDED));
            if (step.rest.length > 0) stream.write(step.rest);
            spliceStream(socket, stream, (err) => {
              this.failures++;
              log.info({ code: err.code }, `SOCKS request failed after an early answer: ${err.message}`);
            });
            socket.resume();
          },
          (err: Error) => {
            this.failures++;
            const onion = err instanceof AlliumError ? socksReplyForOnionCode(err.code) : null;
            const code =
              onion ??
              (err instanceof StreamError
                ? socksReplyForEndReason(err.endReason)
                : SocksReply.GENERAL_FAILURE);
            log.info(
              { code: (err as StreamError).code, reply: code },
              `SOCKS request failed: ${err.message}`,
            );
            socket.end(encodeSocksReply(code));
          },
        );
        return;
      }
    };
    socket.on('data', onData);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
