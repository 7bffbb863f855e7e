// Implements docs/protocol.md §8.5-§8.7 on a client's or a service's own circuit: onion service
// messages to and from its last hop (the introduction point, rendezvous point or store), and the
// join at a rendezvous point, after which the far end is hop 3 under the end-to-end layer: the
// streams run to it, and a service's far end opens them (BEGIN).

import type { CircuitStream } from '../core/stream-mux.js';
import { type EndToEndLayers, endToEndLayers } from '../crypto/end-to-end-layer.js';
import type { ForwardLayer } from '../crypto/forward-onion.js';
import type { EndToEndKeys } from '../crypto/hs-ntor.js';
import { DestroyReason } from '../wire/constants.js';
import { CircuitError, ClientCircuit } from './client-circuit.js';

/** How long a relay may take to answer an onion service message (its circuit is built already). */
export const ONION_ANSWER_TIMEOUT_MS = 10_000;

interface Expectation {
  resolve(data: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | null;
}

export class OnionCircuit extends ClientCircuit {
  /** Answers awaited from the last hop, by relay command: one at a time per command. */
  private readonly expected = new Map<number, Expectation>();
  /** Set by join: this end's layers, hop 3 of the circuit (§8.7). */
  private layers: EndToEndLayers | null = null;
  /** Onion messages nobody awaits (an introduction circuit's INTRODUCE2s); unset: they destroy it. */
  onUnexpected: ((command: number, data: Buffer) => void) | null = null;
  /** A BEGIN from the far end (a service's circuits); unset: the circuit is destroyed (PROTOCOL). */
  onBeginStream: ((streamId: number, data: Buffer) => void) | null = null;
  private readonly closeListeners: ((why: string) => void)[] = [];
  /**
   * The client pool neither retires this circuit when idle nor gives its streams to anyone: its
   * owner does (an introduction circuit waits for clients it cannot foresee).
   */
  override keepOpen = true;

  /** Streams of the pool never use an onion circuit: its last hop has a role, not an exit. */
  override readonly general = false;

  get endToEnd(): ForwardLayer | null {
    return this.layers?.receive ?? null;
  }

  get joined(): boolean {
    return this.layers !== null;
  }

  protected override streamHop(): number {
    return this.layers ? this.hops.length : this.hops.length - 1;
  }

  protected override forwardLayers(hop: number): ForwardLayer[] {
    if (this.layers && hop === this.hops.length) return [...super.forwardLayers(hop - 1), this.layers.send];
    return super.forwardLayers(hop);
  }

  /** Sends an onion service message on stream 0 to the last hop (§8.5). */
  sendOnion(command: number, data: Buffer): void {
    if (this.closed) throw new CircuitError('ALLIUM_CIRCUIT_CLOSED', `circuit closed: ${this.closeReason}`);
    this.sendRelay(this.hops.length - 1, command, 0, data);
  }

  /**
   * Resolves with the data of the next `command` from the last hop; rejects when the circuit closes
   * or after `timeoutMs` (null: no timer, the caller bounds the wait). Call before the request goes
   * out, so an answer that comes at once finds its waiter.
   */
  expect(command: number, timeoutMs: number | null = ONION_ANSWER_TIMEOUT_MS): Promise<Buffer> {
    if (this.closed) {
      return Promise.reject(new CircuitError('ALLIUM_CIRCUIT_CLOSED', `circuit closed: ${this.closeReason}`));
    }
    if (this.expected.has(command)) {
      return Promise.reject(
        new CircuitError('ALLIUM_CIRCUIT_PROTOCOL', `already awaiting relay command ${command}`),
      );
    }
    return new Promise<Buffer>((resolve, reject) => {
      const timer =
        timeoutMs === null
          ? null
          : setTimeout(() => {
              this.expected.delete(command);
              reject(
                new CircuitError(
                  'ALLIUM_CIRCUIT_TIMEOUT',
                  `${this.exit.nickname} did not answer in ${timeoutMs} ms (relay command ${command})`,
                ),
              );
            }, timeoutMs);
      this.expected.set(command, { resolve, reject, timer });
    });
  }

  /** Sends `command` to the last hop and resolves with the data of its `answer`. */
  request(
    command: number,
    data: Buffer,
    answer: number,
    timeoutMs = ONION_ANSWER_TIMEOUT_MS,
  ): Promise<Buffer> {
    const answered = this.expect(answer, timeoutMs);
    try {
      this.sendOnion(command, data);
    } catch (err) {
      this.settle(answer)?.reject(err as Error);
    }
    return answered;
  }

  private settle(command: number): Expectation | undefined {
    const e = this.expected.get(command);
    if (!e) return undefined;
    this.expected.delete(command);
    if (e.timer) clearTimeout(e.timer);
    return e;
  }

  /** From the receive path (core/circuit-receive.ts): an onion message the last hop sent. */
  onionMessage(command: number, data: Buffer): void {
    // A copy: `data` may be a view into a batch buffer that is reused.
    const own = Buffer.from(data);
    const waiter = this.settle(command);
    if (waiter) waiter.resolve(own);
    else if (this.onUnexpected) this.onUnexpected(command, own);
    else this.destroy(DestroyReason.PROTOCOL, `protocol error: unexpected onion service message ${command}`);
  }

  /**
   * After RENDEZVOUS2 (client) or once RENDEZVOUS1 is sent (service): the far end becomes hop 3
   * under the end-to-end layer, and the streams run to it (§8.7). Both ends are of a release that
   * takes large windows.
   */
  join(keys: EndToEndKeys, side: 'client' | 'service'): void {
    if (this.layers) throw new CircuitError('ALLIUM_CIRCUIT_PROTOCOL', 'a circuit is joined once');
    this.layers = endToEndLayers(keys, side);
    this.largeWindows = true;
  }

  /** From the receive path: BEGIN from the far end of a joined circuit. */
  begin(streamId: number, data: Buffer): void {
    if (this.onBeginStream) this.onBeginStream(streamId, data);
    else this.destroy(DestroyReason.PROTOCOL, 'protocol error: BEGIN toward a client');
  }

  /**
   * A stream the far end began (a service's): its DATA counts as consumed once the local server's
   * socket took it, as at an exit (§5). Null for stream id 0 or one in use (a protocol violation).
   */
  acceptStream(streamId: number): CircuitStream | null {
    if (streamId === 0 || this.mux.streams.has(streamId) || this.closed) return null;
    return this.mux.open(streamId, { consumeOnWrite: true });
  }

  /** CONNECTED or END for a stream the far end began. */
  answerStream(command: number, streamId: number, data: Buffer): void {
    if (!this.closed) this.mux.sendOne(command, streamId, data);
  }

  /** Called once, when the circuit closes (by either side), with why. */
  onClose(listener: (why: string) => void): void {
    if (this.closed) listener(this.closeReason);
    else this.closeListeners.push(listener);
  }

  override close(reason: number, why: string): void {
    if (this.closed) return;
    super.close(reason, why);
    const err = new CircuitError('ALLIUM_CIRCUIT_DESTROYED', why, reason);
    for (const command of [...this.expected.keys()]) this.settle(command)?.reject(err);
    for (const listener of this.closeListeners.splice(0)) listener(why);
  }
}
