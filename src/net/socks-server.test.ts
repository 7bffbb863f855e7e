import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { SocksServer } from './socks-server.js';

const GREET = Buffer.from('050100', 'hex');
const REQUEST = Buffer.concat([
  Buffer.from('0501000309', 'hex'),
  Buffer.from('localhost'),
  Buffer.from('0050', 'hex'),
]);

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with everything the server sent once it closes the connection, or null after `ms`. */
function closed(s: net.Socket, ms = 5000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => resolve(null), ms);
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** Runs a full no-auth CONNECT and an echo through the (PassThrough) stream. */
async function echoThrough(port: number): Promise<string> {
  const s = await connect(port);
  s.write(Buffer.concat([GREET, REQUEST]));
  const got: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo')), 5000);
    s.on('data', (c) => {
      got.push(c);
      const all = Buffer.concat(got);
      // 05 00 (method) + 10-byte success reply, then our echo.
      if (all.length === 12) s.write('ping');
      if (all.length >= 16) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  s.destroy();
  return Buffer.concat(got).subarray(12).toString();
}

describe('SOCKS server limits', () => {
  it('closes connections beyond maxConnections at once, counts them, and serves again when room frees', async () => {
    const server = await SocksServer.listen({
      host: '127.0.0.1',
      port: 0,
      maxConnections: 5,
      connect: async () => new PassThrough(),
    });
    try {
      const stalled = await Promise.all(Array.from({ length: 5 }, () => connect(server.port)));
      // Let the server accept the five before the next ones arrive.
      for (let i = 0; i < 50 && server.active < 5; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(server.active, 5);
      const extra = await Promise.all(Array.from({ length: 15 }, () => connect(server.port)));
      const results = await Promise.all(extra.map((s) => closed(s)));
      assert.ok(
        results.every((r) => r !== null && r.length === 0),
        'every extra connection is closed unanswered',
      );
      assert.equal(server.refused, 15);
      assert.equal(server.active, 5);
      for (const s of stalled) s.destroy();
      for (let i = 0; i < 50 && server.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await echoThrough(server.port), 'ping');
      assert.equal(server.connections, 6);
    } finally {
      await server.close();
    }
  });

  it('closes a client that does not finish its handshake in time (slowloris), and counts it', async () => {
    const server = await SocksServer.listen({
      host: '127.0.0.1',
      port: 0,
      handshakeTimeoutMs: 300,
      connect: async () => new PassThrough(),
    });
    try {
      const slow = await connect(server.port);
      slow.write(Buffer.from('0502', 'hex')); // a greeting announcing two methods, then silence
      const sent = await closed(slow);
      assert.deepEqual(sent, Buffer.alloc(0));
      assert.equal(server.handshakeTimeouts, 1);
      // A client that finishes is unaffected by the timer.
      assert.equal(await echoThrough(server.port), 'ping');
      assert.equal(server.handshakeTimeouts, 1);
    } finally {
      await server.close();
    }
  });

  it('resets the connection when its stream fails after the answer, so a cut download is not taken for a whole one', async () => {
    let stream: PassThrough | null = null;
    const server = await SocksServer.listen({
      host: '127.0.0.1',
      port: 0,
      connect: async () => {
        stream = new PassThrough();
        return stream;
      },
    });
    try {
      const s = await connect(server.port);
      s.write(Buffer.concat([GREET, REQUEST]));
      const got: Buffer[] = [];
      const ended = new Promise<string>((resolve) => {
        s.on('data', (c: Buffer) => {
          got.push(c);
          // After the 12 bytes of method choice and reply, part of an answer, then the stream breaks.
          if (Buffer.concat(got).length === 12) {
            stream!.write('partial answer');
            setTimeout(() => stream!.destroy(new Error('circuit destroyed')), 50);
          }
        });
        s.once('end', () => resolve('end (FIN)'));
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
      assert.equal(await ended, 'ECONNRESET');
      assert.equal(Buffer.concat(got).subarray(12).toString(), 'partial answer');
    } finally {
      await server.close();
    }
  });

  it('counts a refused handshake as a failure', async () => {
    const server = await SocksServer.listen({
      host: '127.0.0.1',
      port: 0,
      connect: async () => new PassThrough(),
    });
    try {
      const s = await connect(server.port);
      s.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
      const answer = await closed(s);
      assert.match(answer?.toString() ?? '', /not an HTTP proxy/);
      assert.equal(server.failures, 1);
    } finally {
      await server.close();
    }
  });
});
