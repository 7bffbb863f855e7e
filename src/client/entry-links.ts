// A client's links to its entry relays (docs/protocol.md §1-§2): one per entry, shared by the
// circuits through it, each circuit with an id of its own on it; the cells of each frame go to
// their circuit together, so it can peel them in batches.

import { randomIntBetween } from '../crypto/random.js';
import { connectLink, type Link } from '../net/link.js';
import { CIRC_ID_INITIATOR_BIT, DestroyReason, MAX_LINK_BOUND_CREATES_PER_LINK } from '../wire/constants.js';
import type { ClientCircuit } from './client-circuit.js';

export class EntryLinks {
  /** Links by the entry's relay id: being opened, or open. */
  readonly links = new Map<string, Promise<Link>>();
  private readonly circuitsByLink = new Map<Link, Map<number, ClientCircuit>>();
  /** Link-bound first hops built on each link so far. */
  private readonly linkBoundCreates = new WeakMap<Link, number>();

  /** The link to entry `relayId` at host:port: the open one, or a new one (anonymous, §1.2). */
  linkTo(relayId: string, host: string, port: number): Promise<Link> {
    const existing = this.links.get(relayId);
    if (existing) return existing;
    const p = connectLink({ host, port, relayId: Buffer.from(relayId, 'hex'), me: { identity: null } }).then(
      (link) => {
        this.circuitsByLink.set(link, new Map());
        link.on({
          cells: (cells) => {
            const map = this.circuitsByLink.get(link);
            if (!map) return;
            // Hand each circuit its cells of this frame together, so it can peel them in batches.
            for (let i = 0; i < cells.length; ) {
              let j = i + 1;
              while (j < cells.length && cells[j].circId === cells[i].circId) j++;
              map.get(cells[i].circId)?.onCells(j - i === 1 ? [cells[i]] : cells.slice(i, j));
              i = j;
            }
          },
          close: () => {
            this.links.delete(relayId);
            const map = this.circuitsByLink.get(link);
            this.circuitsByLink.delete(link);
            for (const c of map?.values() ?? []) {
              c.close(DestroyReason.CHANNEL_CLOSED, 'the link to the entry relay closed');
            }
          },
        });
        return link;
      },
    );
    this.links.set(relayId, p);
    p.catch(() => this.links.delete(relayId));
    return p;
  }

  /** Every open link. */
  open(): IterableIterator<Link> {
    return this.circuitsByLink.keys();
  }

  /**
   * Gives a new circuit an id of its own on `link` (high bit set: this side opened the link, §2.2);
   * `make` builds it with that id. It is forgotten when it calls forget().
   */
  add(link: Link, make: (circId: number) => ClientCircuit): ClientCircuit {
    const map = this.circuitsByLink.get(link)!;
    let circId: number;
    do circId = (randomIntBetween(1, 0x7fffffff) | CIRC_ID_INITIATOR_BIT) >>> 0;
    while (map.has(circId));
    const circ = make(circId);
    map.set(circId, circ);
    return circ;
  }

  forget(circ: ClientCircuit): void {
    this.circuitsByLink.get(circ.link)?.delete(circ.circId);
  }

  /**
   * Whether a circuit on `link` may take its entry's keys from the link (§3.6), counting it if so: past
   * MAX_LINK_BOUND_CREATES_PER_LINK on one link the entry refuses them, so ntor from there on.
   */
  takeLinkBound(link: Link): boolean {
    const soFar = this.linkBoundCreates.get(link) ?? 0;
    if (soFar >= MAX_LINK_BOUND_CREATES_PER_LINK) return false;
    this.linkBoundCreates.set(link, soFar + 1);
    return true;
  }

  closeAll(): void {
    for (const p of this.links.values())
      p.then(
        (l) => l.close(),
        () => {},
      );
    this.links.clear();
  }
}
