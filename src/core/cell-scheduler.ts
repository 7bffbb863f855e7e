// Implements docs/protocol.md §1.3's sending order on one link: cells wait in one queue per circuit
// and leave round-robin, a frame's worth per circuit per round. A circuit with one cell to send
// waits for one round, not behind every cell a bulk download has queued on the same link.

interface CircuitQueue {
  circId: number;
  /** (command, body) pairs; those before `head` are gone. */
  items: (number | Buffer)[];
  head: number;
}

export class CellScheduler {
  private readonly queues = new Map<number, CircuitQueue>();
  /** Circuits with cells queued, in round-robin order. */
  private readonly ready: CircuitQueue[] = [];
  private next = 0;
  /** Cells queued over all circuits. */
  size = 0;

  push(circId: number, command: number, body: Buffer): void {
    let q = this.queues.get(circId);
    if (!q) {
      q = { circId, items: [], head: 0 };
      this.queues.set(circId, q);
      this.ready.push(q);
    }
    q.items.push(command, body);
    this.size++;
  }

  /**
   * Moves up to `max` cells into `out` as (circId, command, body) triples, at most `perRound` from
   * each circuit before the next one's turn. Each circuit's cells keep their order. Returns how many.
   */
  take(max: number, perRound: number, out: (number | Buffer)[]): number {
    let taken = 0;
    while (taken < max && this.ready.length > 0) {
      if (this.next >= this.ready.length) this.next = 0;
      const q = this.ready[this.next];
      const n = Math.min(perRound, (q.items.length - q.head) / 2, max - taken);
      for (let k = 0; k < n; k++) {
        out.push(q.circId, q.items[q.head], q.items[q.head + 1]);
        q.head += 2;
      }
      taken += n;
      if (q.head === q.items.length) {
        // Empty: it leaves the ring (the next circuit slides into this position).
        this.ready.splice(this.next, 1);
        this.queues.delete(q.circId);
      } else {
        if (q.head >= 2048 && q.head * 2 >= q.items.length) {
          q.items = q.items.slice(q.head);
          q.head = 0;
        }
        this.next++;
      }
    }
    this.size -= taken;
    return taken;
  }

  /** Cells of `circId` waiting now. */
  queuedOf(circId: number): number {
    const q = this.queues.get(circId);
    return q ? (q.items.length - q.head) / 2 : 0;
  }

  /** The circuit with the most cells waiting (a pass over the waiting circuits), or null. */
  largest(): { circId: number; cells: number } | null {
    let best: CircuitQueue | null = null;
    let most = 0;
    for (const q of this.ready) {
      const n = (q.items.length - q.head) / 2;
      if (n > most) {
        best = q;
        most = n;
      }
    }
    return best ? { circId: best.circId, cells: most } : null;
  }

  /** Forgets the cells of `circId` (each body is passed to `dropped`); returns how many there were. */
  drop(circId: number, dropped?: (body: Buffer) => void): number {
    const q = this.queues.get(circId);
    if (!q) return 0;
    const n = (q.items.length - q.head) / 2;
    if (dropped) for (let i = q.head + 1; i < q.items.length; i += 2) dropped(q.items[i] as Buffer);
    this.queues.delete(circId);
    const at = this.ready.indexOf(q);
    this.ready.splice(at, 1);
    if (at < this.next) this.next--;
    this.size -= n;
    return n;
  }

  /** Forgets every queued cell. */
  clear(): void {
    this.queues.clear();
    this.ready.length = 0;
    this.next = 0;
    this.size = 0;
  }
}
