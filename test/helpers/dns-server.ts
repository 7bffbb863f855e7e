// A tiny DNS server on 127.0.0.1 (UDP and TCP on one port) for the exit's resolver: answers A records
// for the names it is given, NODATA for their AAAA, NXDOMAIN for other names, and never answers a
// name `silent` picks (a query to such a name is read and counted, and nothing is ever sent back).
import dgram from 'node:dgram';
import net from 'node:net';

export interface DnsServer {
  /** `127.0.0.1:PORT`, for --dns-server. */
  address: string;
  /** Queries read (UDP and TCP), and how many of them were left unanswered. */
  stats: { queries: number; unanswered: number };
  close(): Promise<void>;
}

interface Question {
  id: number;
  name: string;
  type: number;
  /** The question section as received (echoed in the answer). */
  section: Buffer;
}

function parseQuery(msg: Buffer): Question | null {
  if (msg.length < 17) return null;
  const id = msg.readUInt16BE(0);
  if (msg.readUInt16BE(4) !== 1) return null;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= msg.length) return null;
    const len = msg[off];
    if (len === 0) break;
    if (len > 63 || off + 1 + len > msg.length) return null;
    labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  off += 1;
  if (off + 4 > msg.length) return null;
  const type = msg.readUInt16BE(off);
  return { id, name: labels.join('.').toLowerCase(), type, section: msg.subarray(12, off + 4) };
}

function answer(q: Question, a: string | undefined): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, RD, RA; RCODE 3 (NXDOMAIN) for a name it does not know.
  header.writeUInt16BE(0x8180 | (a === undefined ? 3 : 0), 2);
  header.writeUInt16BE(1, 4);
  const records: Buffer[] = [];
  if (a !== undefined && q.type === 1) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the name in the question
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6); // TTL
    rr.writeUInt16BE(4, 10);
    Buffer.from(a.split('.').map(Number)).copy(rr, 12);
    records.push(rr);
  }
  header.writeUInt16BE(records.length, 6);
  return Buffer.concat([header, q.section, ...records]);
}

export async function startDnsServer(opts: {
  answers: Record<string, string>;
  silent: (name: string) => boolean;
}): Promise<DnsServer> {
  const stats = { queries: 0, unanswered: 0 };
  const reply = (msg: Buffer): Buffer | null => {
    const q = parseQuery(msg);
    if (!q) return null;
    stats.queries++;
    if (opts.silent(q.name)) {
      stats.unanswered++;
      return null;
    }
    return answer(q, opts.answers[q.name]);
  };
  const conns = new Set<net.Socket>();
  const tcp = net.createServer((s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const out = reply(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (out) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          s.write(Buffer.concat([len, out]));
        }
      }
    });
  });
  // UDP and TCP on one port number: the UDP port is the kernel's choice, and another process may
  // hold that number for TCP, so take another pair then (bounded).
  let udp: dgram.Socket | null = null;
  let port = 0;
  for (let attempt = 0; udp === null; attempt++) {
    const u = dgram.createSocket('udp4');
    u.on('message', (msg, from) => {
      const out = reply(msg);
      if (out) u.send(out, from.port, from.address);
    });
    await new Promise<void>((resolve) => u.bind(0, '127.0.0.1', resolve));
    port = u.address().port;
    const listened = await new Promise<Error | null>((resolve) => {
      tcp.once('error', resolve);
      tcp.listen(port, '127.0.0.1', () => {
        tcp.off('error', resolve);
        resolve(null);
      });
    });
    if (!listened) udp = u;
    else {
      u.close();
      if (attempt >= 20) throw listened;
    }
  }
  return {
    address: `127.0.0.1:${port}`,
    stats,
    close: async () => {
      for (const s of conns) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
      const bound = udp as dgram.Socket;
      await new Promise<void>((r) => bound.close(() => r()));
    },
  };
}
