// Implements docs/protocol.md §3.2 (ntor, relay side) off the relaying thread under load. An answer
// costs two X25519 operations and a key derivation: a relay answers on its own thread while CREATEs come at a modest rate (no
// thread hop on the circuit-build path), and hands them to worker threads once they come faster, so
// a flood of CREATEs from many links slows circuit setup, not the cells of circuits already built.
import { Worker } from 'node:worker_threads';
import { SpareEphemeralKey, type X25519Key } from '../crypto/keys.js';
import { type HopKeys, ntorServerRespond } from '../crypto/ntor.js';
import { AlliumError } from '../errors.js';
import { TokenBucket } from './limits.js';

export interface HandshakeJob {
  id: number;
  onionskin: Uint8Array;
}

export type HandshakeAnswer =
  | { id: number; reply: Uint8Array; keys: HopKeys }
  | { id: number; error: string };

export interface HandshakeResult {
  reply: Buffer;
  keys: HopKeys;
}

export type HandshakeCallback = (err: Error | null, result?: HandshakeResult) => void;

/** What a worker is told when the relay's onion keys change: the secrets it answers with. */
export interface WorkerKeys {
  onionSecret: Uint8Array;
  previousOnionSecret: Uint8Array | null;
}

export interface HandshakePoolOptions {
  relayId: Buffer;
  onionKey: X25519Key;
  /** The key onionKey replaced, while it still answers (protocol §3.1, onion key rotation). */
  previousOnionKey?: X25519Key | null;
  /** Worker threads to start once the inline budget is spent (0: always answer inline). */
  threads: number;
  /** Handshakes per second answered on the calling thread before workers take over. */
  inlinePerSecond: number;
}

const WORKER_URL = new URL('./handshake-worker.js', import.meta.url);

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export class HandshakePool {
  private workers: Worker[] = [];
  private nextWorker = 0;
  private nextId = 1;
  private readonly waiting = new Map<number, HandshakeCallback>();
  /** Jobs gathered in this turn of the event loop, per worker: one message each. */
  private batch: HandshakeJob[][] = [];
  private flushScheduled = false;
  private readonly inline: TokenBucket;
  private closed = false;
  /** Y for the next handshake answered on this thread. */
  private readonly spareKey = new SpareEphemeralKey();
  private refillScheduled = false;
  answeredInline = 0;
  answeredByWorkers = 0;

  constructor(private readonly opts: HandshakePoolOptions) {
    this.inline = new TokenBucket(opts.inlinePerSecond, Math.max(1, opts.inlinePerSecond / 10));
  }

  /** Worker threads running now (they start on first need). */
  get threads(): number {
    return this.workers.length;
  }

  /**
   * New onion keys (a rotation, or the end of the previous key's grace). Workers get them in order
   * with their jobs, so a job sent before answers with the keys it was sent under.
   */
  setKeys(onionKey: X25519Key, previousOnionKey: X25519Key | null): void {
    this.opts.onionKey = onionKey;
    this.opts.previousOnionKey = previousOnionKey;
    this.flush();
    for (const w of this.workers) w.postMessage(this.workerKeys());
  }

  private workerKeys(): WorkerKeys {
    return {
      onionSecret: this.opts.onionKey.secret(),
      previousOnionSecret: this.opts.previousOnionKey?.secret() ?? null,
    };
  }

  /**
   * Answers one onionskin. The callback runs synchronously when answered inline, later when a worker
   * answers; an error is a malformed or misaddressed onionskin (or a pool that was closed).
   */
  answer(onionskin: Buffer, cb: HandshakeCallback): void {
    if (this.closed) {
      cb(new AlliumError('ALLIUM_HANDSHAKE_POOL_CLOSED', 'the relay is stopping'));
      return;
    }
    // Inline while nothing waits for a worker, so answers never overtake each other.
    if (this.opts.threads <= 0 || (this.waiting.size === 0 && this.inline.take())) {
      let result: HandshakeResult;
      try {
        result = ntorServerRespond(onionskin, this.opts, this.spareKey.take());
      } catch (err) {
        cb(err as Error);
        return;
      }
      this.answeredInline++;
      cb(null, result);
      // The next Y, made once the link has flushed this answer (its flush was queued first).
      if (!this.refillScheduled) {
        this.refillScheduled = true;
        setImmediate(() => {
          this.refillScheduled = false;
          if (!this.closed) this.spareKey.refill();
        });
      }
      return;
    }
    this.startWorkers();
    const id = this.nextId++;
    this.waiting.set(id, cb);
    const w = this.nextWorker;
    this.nextWorker = (w + 1) % this.workers.length;
    if (!this.batch[w]) this.batch[w] = [];
    this.batch[w].push({ id, onionskin: new Uint8Array(onionskin) });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.batch;
    this.batch = [];
    for (let i = 0; i < batch.length; i++) {
      if (batch[i]?.length) this.workers[i]?.postMessage(batch[i]);
    }
  }

  private startWorkers(): void {
    if (this.workers.length > 0) return;
    // Each worker holds a copy of the onion keys; setKeys() sends it new ones.
    for (let i = 0; i < this.opts.threads; i++) {
      const worker = new Worker(WORKER_URL, {
        workerData: { relayId: this.opts.relayId, keys: this.workerKeys() },
      });
      worker.unref();
      worker.on('message', (answers: HandshakeAnswer[]) => this.onAnswers(answers));
      worker.on('error', (err) => this.failAll(err));
      this.workers.push(worker);
    }
  }

  private onAnswers(answers: HandshakeAnswer[]): void {
    for (const a of answers) {
      const cb = this.waiting.get(a.id);
      if (!cb) continue;
      this.waiting.delete(a.id);
      this.answeredByWorkers++;
      if ('error' in a) cb(new AlliumError('ALLIUM_HANDSHAKE', a.error));
      else {
        const k = a.keys;
        cb(null, {
          reply: toBuffer(a.reply),
          keys: {
            kf: toBuffer(k.kf),
            kb: toBuffer(k.kb),
            mf: toBuffer(k.mf),
            mb: toBuffer(k.mb),
            kt: toBuffer(k.kt),
          },
        });
      }
    }
  }

  /** A worker died (a bug, not bad input): its jobs fail, and the next need starts fresh workers. */
  private failAll(err: Error): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    const workers = this.workers;
    this.workers = [];
    this.batch = [];
    for (const w of workers) void w.terminate();
    for (const cb of waiting)
      cb(new AlliumError('ALLIUM_HANDSHAKE_WORKER', `handshake worker failed: ${err.message}`));
  }

  async close(): Promise<void> {
    this.closed = true;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const cb of waiting) cb(new AlliumError('ALLIUM_HANDSHAKE_POOL_CLOSED', 'the relay is stopping'));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
