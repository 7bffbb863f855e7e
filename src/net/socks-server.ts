// Implements RFC 1928 (SOCKS5 CONNECT) and RFC 1929 around the no-I/O step machine in wire/socks5.ts.
// Credentials become the isolation key: different credentials never share a circuit.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { StreamError } from '../core/stream-mux.js';
import { type Logger, silentLogger } from '../log.js';
import { encodeSocksReply, Socks5Handshake, SocksReply, socksReplyForEndReason } from '../wire/socks5.js';

export interface SocksRequest {
  host: string;
  port: number;
  isolation: string;
}

export interface SocksServerOptions {
  host: string;
  port: number;
  connect(req: SocksRequest): Promise<Duplex>;
  logger?: Logger;
  handshakeTimeoutMs?: number;
}

export class SocksServer {
  private readonly sockets = new Set<net.Socket>();
  connections = 0;
  failures = 0;

  private constructor(
    private readonly server: net.Server,
    private readonly opts: SocksServerOptions,
  ) {}

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
    this.connections++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const log = this.opts.logger ?? silentLogger;
    const hs = new Socks5Handshake();
    const timer = setTimeout(() => socket.destroy(), this.opts.handshakeTimeoutMs ?? 10_000);
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
        this.opts.connect({ host: step.host, port: step.port, isolation }).then(
          (stream) => {
            if (socket.destroyed) {
              stream.destroy();
              return;
            }
            socket.write(encodeSocksReply(SocksReply.SUCCEEDED));
            if (step.rest.length > 0) stream.write(step.rest);
            stream.on('error', () => socket.destroy());
            socket.on('error', () => stream.destroy());
            socket.on('close', () => stream.destroy());
            stream.on('close', () => socket.destroySoon());
            socket.pipe(stream);
            stream.pipe(socket);
            socket.resume();
          },
          (err: Error) => {
            this.failures++;
            const code =
              err instanceof StreamError ? socksReplyForEndReason(err.endReason) : SocksReply.GENERAL_FAILURE;
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
