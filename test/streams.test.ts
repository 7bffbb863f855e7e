// Stream semantics through a whole circuit: a half-close (the client ends its side after the request,
// like `nc -N`) still delivers the whole response, and the stream then closes by itself.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';

let netw: InProcessNetwork;
let server: net.Server;
const response = Buffer.alloc(300_000, 'x');

before(async () => {
  netw = await startNetwork({ relays: 3, exits: 1 });
  // Answers only once the client has finished sending (read to EOF), then closes.
  server = net.createServer((s) => {
    let req = 0;
    s.on('data', (d) => (req += d.length));
    s.on('end', () => s.end(Buffer.concat([Buffer.from(`${req}\n`), response])));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
});
after(async () => {
  server?.close();
  await netw?.stop();
});

test('a half-closed stream still receives the whole response, then closes', async () => {
  for (let i = 0; i < 3; i++) {
    const s = await netw.client.connect('127.0.0.1', (server.address() as net.AddressInfo).port);
    s.end('request bytes');
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    const got = Buffer.concat(chunks);
    assert.equal(got.subarray(0, 3).toString(), '13\n');
    assert.equal(got.length, 3 + response.length);
    await new Promise((r) => setImmediate(r));
    assert.equal(s.destroyed, true, 'closed once both sides ended');
  }
});
