// Implements docs/protocol.md §3.2 (ntor, relay side) on a worker thread for HandshakePool: jobs
// arrive in batches, answers go back in one message per batch.
import { parentPort, workerData } from 'node:worker_threads';
import { X25519Key } from '../crypto/keys.js';
import { ntorServerRespond } from '../crypto/ntor.js';
import type { HandshakeAnswer, HandshakeJob, WorkerKeys } from './handshake-pool.js';

const relayId = Buffer.from(workerData.relayId as Uint8Array);
let me = withKeys(workerData.keys as WorkerKeys);

function withKeys(k: WorkerKeys) {
  return {
    relayId,
    onionKey: X25519Key.fromSecret(k.onionSecret),
    previousOnionKey: k.previousOnionSecret ? X25519Key.fromSecret(k.previousOnionSecret) : null,
  };
}

parentPort!.on('message', (msg: HandshakeJob[] | WorkerKeys) => {
  if (!Array.isArray(msg)) {
    me = withKeys(msg);
    return;
  }
  const jobs = msg;
  const answers: HandshakeAnswer[] = jobs.map((job) => {
    try {
      const r = ntorServerRespond(Buffer.from(job.onionskin), me);
      return { id: job.id, reply: r.reply, keys: r.keys };
    } catch (err) {
      return { id: job.id, error: (err as Error).message };
    }
  });
  parentPort!.postMessage(answers);
});
