// The reply a SOCKS5 proxy gives to CONNECT, read off the raw socket: the code a program such as
// curl would print.
import net from 'node:net';

/** The SOCKS5 reply code for CONNECT to host:80 (no authentication) at the proxy on 127.0.0.1:port. */
export function socksReply(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const name = Buffer.from(host);
    s.on('connect', () =>
      s.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length]), name, Buffer.from([0, 80])])),
    );
    // The greeting's answer (2 bytes), then the CONNECT reply, whose second byte is the code.
    let got = Buffer.alloc(0);
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 4) {
        s.destroy();
        resolve(got[3]);
      }
    });
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      reject(new Error('no SOCKS reply'));
    }, 30_000).unref();
  });
}
