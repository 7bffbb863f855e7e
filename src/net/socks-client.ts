// A minimal SOCKS5 CONNECT client (no auth or RFC 1929 user/pass): used to check that a stream can be
// carried, and by `allium testnet --fetch-demo`.
import net from 'node:net';
import { AlliumError } from '../errors.js';

export class SocksClientError extends AlliumError {}

export function socksConnect(opts: {
  proxyHost: string;
  proxyPort: number;
  host: string;
  port: number;
  username?: string;
  password?: string;
  timeoutMs?: number;
}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.proxyHost, port: opts.proxyPort });
    socket.setNoDelay(true);
    const timer = setTimeout(
      () => fail(new SocksClientError('ALLIUM_SOCKS_TIMEOUT', 'SOCKS proxy did not answer in time')),
      opts.timeoutMs ?? 30_000,
    );
    let buf = Buffer.alloc(0);
    let stage = 0;
    const auth = opts.username !== undefined;
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', (err) =>
      fail(new SocksClientError('ALLIUM_SOCKS_IO', `SOCKS proxy: ${err.message}`)),
    );
    socket.on('connect', () => socket.write(Buffer.from([5, 1, auth ? 2 : 0])));
    const sendRequest = () => {
      const host = Buffer.from(opts.host);
      const port = Buffer.alloc(2);
      port.writeUInt16BE(opts.port);
      socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), host, port]));
      stage = 2;
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2) {
        if (buf[0] !== 5 || buf[1] !== (auth ? 2 : 0))
          return fail(new SocksClientError('ALLIUM_SOCKS_METHOD', 'SOCKS proxy refused the method'));
        buf = buf.subarray(2);
        if (auth) {
          const u = Buffer.from(opts.username ?? '');
          const p = Buffer.from(opts.password ?? '');
          socket.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
          stage = 1;
        } else sendRequest();
      }
      if (stage === 1 && buf.length >= 2) {
        if (buf[1] !== 0)
          return fail(new SocksClientError('ALLIUM_SOCKS_AUTH', 'SOCKS proxy refused the credentials'));
        buf = buf.subarray(2);
        sendRequest();
      }
      if (stage === 2 && buf.length >= 10) {
        if (buf[1] !== 0) {
          const e = new SocksClientError(
            'ALLIUM_SOCKS_REPLY',
            `SOCKS proxy answered ${buf[1]}`,
          ) as SocksClientError & { reply: number };
          e.reply = buf[1];
          return fail(e);
        }
        const len = buf[3] === 1 ? 10 : buf[3] === 4 ? 22 : 7 + buf[4];
        if (buf.length < len) return;
        clearTimeout(timer);
        socket.off('data', onData);
        const rest = buf.subarray(len);
        if (rest.length > 0) socket.unshift(rest);
        resolve(socket);
      }
    };
    socket.on('data', onData);
  });
}
