import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { relayIdOf, X25519Key } from '../crypto/keys.js';
import { ntorClientFinish, ntorClientStart } from '../crypto/ntor.js';
import { HandshakePool, type HandshakeResult } from './handshake-pool.js';

const onionKey = X25519Key.generate();
const relayId = relayIdOf(X25519Key.generate().publicKey);

function ask(pool: HandshakePool, onionskin: Buffer): Promise<HandshakeResult> {
  return new Promise((resolve, reject) =>
    pool.answer(onionskin, (err, r) => (err ? reject(err) : resolve(r!))),
  );
}

describe('HandshakePool', () => {
  it('answers on worker threads past the inline rate, with keys the client derives too', async () => {
    const pool = new HandshakePool({ relayId, onionKey, threads: 2, inlinePerSecond: 0.001 });
    try {
      const clients = Array.from({ length: 50 }, () => ntorClientStart(relayId, onionKey.publicKey));
      const answers = await Promise.all(clients.map((c) => ask(pool, c.onionskin)));
      for (let i = 0; i < clients.length; i++) {
        const keys = ntorClientFinish(clients[i].state, answers[i].reply);
        assert.ok(keys.kf.equals(answers[i].keys.kf) && keys.mb.equals(answers[i].keys.mb));
      }
      assert.ok(pool.answeredByWorkers >= 49, `workers answered ${pool.answeredByWorkers}`);
      assert.equal(pool.threads, 2);
    } finally {
      await pool.close();
    }
  });

  it('answers inline (no thread started) at a modest rate', async () => {
    const pool = new HandshakePool({ relayId, onionKey, threads: 1, inlinePerSecond: 1000 });
    const c = ntorClientStart(relayId, onionKey.publicKey);
    let sync = false;
    pool.answer(c.onionskin, (err, r) => {
      assert.equal(err, null);
      assert.ok(ntorClientFinish(c.state, r!.reply).kb.equals(r!.keys.kb));
      sync = true;
    });
    assert.equal(sync, true);
    assert.equal(pool.threads, 0);
    await pool.close();
  });

  it('reports a bad onionskin from a worker as an error, and keeps answering', async () => {
    const pool = new HandshakePool({ relayId, onionKey, threads: 1, inlinePerSecond: 0.001 });
    try {
      await assert.rejects(ask(pool, Buffer.alloc(96, 7)), /another relay id/);
      await assert.rejects(ask(pool, Buffer.alloc(5)), /onionskin is 96 bytes/);
      const c = ntorClientStart(relayId, onionKey.publicKey);
      const r = await ask(pool, c.onionskin);
      assert.ok(ntorClientFinish(c.state, r.reply).kf.equals(r.keys.kf));
    } finally {
      await pool.close();
    }
  });

  it('fails what is still waiting when closed, and refuses new work', async () => {
    const pool = new HandshakePool({ relayId, onionKey, threads: 1, inlinePerSecond: 0.001 });
    // The first answer is inline (the bucket starts with one token); the second waits for a worker.
    pool.answer(ntorClientStart(relayId, onionKey.publicKey).onionskin, () => {});
    const waiting = assert.rejects(
      ask(pool, ntorClientStart(relayId, onionKey.publicKey).onionskin),
      (e: Error & { code?: string }) => e.code === 'ALLIUM_HANDSHAKE_POOL_CLOSED',
    );
    await pool.close();
    await waiting;
    await assert.rejects(ask(pool, Buffer.alloc(96)), /stopping/);
  });
});
