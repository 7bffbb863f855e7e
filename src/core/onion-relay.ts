// Implements docs/protocol.md §8.5 and §8.7 at a relay: what it does as a descriptor store, an
// introduction point and a rendezvous point, no I/O. RelayCells hands it the onion service messages
// addressed to this hop (and every message of a circuit that has a role here), and the cells of a
// joined circuit bound for the hop past this one. Cells leave through the circuit table.

import { Scratch } from '../buffers/scratch.js';
import { verifyEstablishIntro } from '../crypto/intro-auth.js';
import type { Logger } from '../log.js';
import { CELL_BODY_LEN, CellCommand, DestroyReason, RelayCommand } from '../wire/constants.js';
import {
  decodeDescriptorFetch,
  decodeEstablishIntro,
  decodeEstablishRendezvous,
  decodeIntroduce,
  decodeRendezvous1,
  encodeDescriptorFetched,
  encodeDescriptorStored,
  encodeIntroduceAck,
  encodeRendezvous2,
  IntroduceAckStatus,
} from '../wire/onion-messages.js';
import type { DescriptorStore } from './descriptor-store.js';
import { IntroRateLimiter, introLimits } from './intro-rate-limiter.js';
import type { CellLink, RelayCircuit } from './relay-circuit.js';
import type { RelayCircuitTable } from './relay-circuit-table.js';

export interface OnionRelayLimits {
  /** The most INTRODUCE2s per second an introduction circuit may ask for (ESTABLISH_INTRO's rate). */
  introRate: number;
  /** The most it may ask for at once. */
  introBurst: number;
  /** Rendezvous cookies waiting for a service at once; past it ESTABLISH_RENDEZVOUS gets DESTROY(RESOURCELIMIT). */
  rendezvousCookies: number;
  /** How long a cookie waits for RENDEZVOUS1 before its circuit is destroyed (TIMEOUT). */
  rendezvousCookieMs: number;
}

export const DEFAULT_ONION_RELAY_LIMITS: OnionRelayLimits = {
  // Eight times the default a service gets (25 and 200, §8.8): room for a busy service, still a bound.
  introRate: 200,
  introBurst: 1600,
  rendezvousCookies: 4096,
  // Tor's: a client whose service has not answered in 5 minutes has given up.
  rendezvousCookieMs: 5 * 60_000,
};

export interface OnionRelayOptions<L extends CellLink> {
  table: RelayCircuitTable<L>;
  store: DescriptorStore;
  limits: OnionRelayLimits;
  log: Logger;
  /** The clock (ms) of cookies and introduction rates. */
  now: () => number;
}

const EMPTY = Buffer.alloc(0);
/** The most passed cells given their layer in one call: 64 cells are ~256 KiB of scratch. */
const MAX_PASS_BATCH = 64;
/** Where held cells are joined for one cipher call (reused, never kept). */
const passBatch = new Scratch();
const FIRST_ONION_COMMAND = RelayCommand.ESTABLISH_INTRO;
const LAST_ONION_COMMAND = RelayCommand.HS_DESC_FETCHED;

/** Whether a relay command is one of §8.5's (32-44). */
export function isOnionCommand(command: number): boolean {
  return command >= FIRST_ONION_COMMAND && command <= LAST_ONION_COMMAND;
}

export class OnionRelay<L extends CellLink = CellLink> {
  /** Introduction circuits by auth key (hex): one per key. */
  private readonly intros = new Map<string, RelayCircuit>();
  /** Client circuits waiting at this rendezvous point, by cookie (hex), and until when. */
  private readonly cookies = new Map<string, { circ: RelayCircuit; until: number }>();
  /** Cells of a joined circuit waiting to go into `passTo`, in order (passJoined), and whether to hold them. */
  private passTo: RelayCircuit | null = null;
  private passBodies: Buffer[] = [];
  private holding = false;
  readonly counts = {
    introCircuits: 0,
    introductions: 0,
    introductionsRefused: 0,
    rendezvousJoined: 0,
  };

  constructor(private readonly opts: OnionRelayOptions<L>) {}

  get pendingCookies(): number {
    return this.cookies.size;
  }

  get introPoints(): number {
    return this.intros.size;
  }

  /**
   * A relay message for this hop that is one of §8.5's, or any message on a circuit that has a role
   * here. Thrown WireErrors (a message that does not parse) cost the circuit (RelayCells' catch).
   */
  message(circ: RelayCircuit, command: number, data: Buffer): void {
    // Only the last hop of a circuit of two hops or more (§8.5): at the entry the relay would see the
    // service's or the client's address, as an exit would on a one-hop circuit (§4.2).
    if (circ.firstHop || circ.next || circ.extending) {
      this.refuse(circ, 'not the last hop past an entry');
      return;
    }
    const role = circ.onion;
    if (role !== null) {
      // Padding keeps a waiting circuit looking used; anything else is not for a circuit with a role.
      if (command === RelayCommand.DROP && role.kind !== 'joined') return;
      this.refuse(circ, `relay command ${command} on a circuit that is ${role.kind}`);
      return;
    }
    switch (command) {
      case RelayCommand.HS_DESC_STORE:
        this.send(circ, RelayCommand.HS_DESC_STORED, encodeDescriptorStored(this.opts.store.store(data)));
        return;
      case RelayCommand.HS_DESC_FETCH: {
        const { blindedKey } = decodeDescriptorFetch(data);
        this.send(
          circ,
          RelayCommand.HS_DESC_FETCHED,
          encodeDescriptorFetched(this.opts.store.fetch(blindedKey)),
        );
        return;
      }
      case RelayCommand.ESTABLISH_INTRO:
        this.establishIntro(circ, data);
        return;
      case RelayCommand.INTRODUCE1:
        this.introduce(circ, data);
        return;
      case RelayCommand.ESTABLISH_RENDEZVOUS:
        this.establishRendezvous(circ, data);
        return;
      case RelayCommand.RENDEZVOUS1:
        this.rendezvous(circ, data);
        return;
      default:
        // What relays send (INTRODUCE2, RENDEZVOUS2, the acknowledgements) never comes to a relay.
        this.refuse(circ, `relay command ${command} is not sent to a relay`);
        return;
    }
  }

  private establishIntro(circ: RelayCircuit, data: Buffer): void {
    if (circ.mux) {
      this.refuse(circ, 'ESTABLISH_INTRO on a circuit with streams');
      return;
    }
    const m = decodeEstablishIntro(data);
    try {
      verifyEstablishIntro(m, circ.crypto.forward.circuitBinding());
    } catch (err) {
      this.refuse(circ, (err as Error).message);
      return;
    }
    const key = m.authKey.toString('hex');
    const older = this.intros.get(key);
    const limits = introLimits(m, { rate: this.opts.limits.introRate, burst: this.opts.limits.introBurst });
    circ.onion = { kind: 'intro', key, limiter: new IntroRateLimiter(limits, this.opts.now()) };
    this.intros.set(key, circ);
    this.counts.introCircuits++;
    // One circuit per key: a service that rebuilt its circuit replaces the one it lost track of.
    if (older && !older.closed) this.opts.table.teardown(older, DestroyReason.FINISHED, null);
    this.send(circ, RelayCommand.INTRO_ESTABLISHED, EMPTY);
  }

  private introduce(circ: RelayCircuit, data: Buffer): void {
    // One introduction per circuit (Tor's rule too): each costs the client a circuit, not a cell.
    circ.onion = { kind: 'introduced' };
    let authKey: Buffer;
    try {
      authKey = decodeIntroduce(data).authKey;
    } catch {
      this.ack(circ, IntroduceAckStatus.MALFORMED);
      return;
    }
    const service = this.intros.get(authKey.toString('hex'));
    const role = service?.onion;
    if (!service || role?.kind !== 'intro') {
      this.ack(circ, IntroduceAckStatus.UNKNOWN_SERVICE);
      return;
    }
    if (!role.limiter.admit(this.opts.now())) {
      this.ack(circ, IntroduceAckStatus.RATE_LIMITED);
      return;
    }
    this.counts.introductions++;
    // Passed on unchanged: the relay cannot read it, and the service checks its MAC.
    this.send(service, RelayCommand.INTRODUCE2, data);
    this.ack(circ, IntroduceAckStatus.SUCCESS);
  }

  private ack(circ: RelayCircuit, status: IntroduceAckStatus): void {
    if (status !== IntroduceAckStatus.SUCCESS) this.counts.introductionsRefused++;
    this.send(circ, RelayCommand.INTRODUCE_ACK, encodeIntroduceAck(status));
  }

  private establishRendezvous(circ: RelayCircuit, data: Buffer): void {
    if (circ.mux) {
      this.refuse(circ, 'ESTABLISH_RENDEZVOUS on a circuit with streams');
      return;
    }
    const cookie = decodeEstablishRendezvous(data).cookie.toString('hex');
    if (this.cookies.has(cookie)) {
      this.refuse(circ, 'a rendezvous cookie already in use');
      return;
    }
    if (this.cookies.size >= this.opts.limits.rendezvousCookies) {
      this.sweep();
      if (this.cookies.size >= this.opts.limits.rendezvousCookies) {
        this.opts.log.debug('rendezvous cookies at their limit: refusing one');
        this.opts.table.teardown(circ, DestroyReason.RESOURCELIMIT, null);
        return;
      }
    }
    circ.onion = { kind: 'rendezvous', cookie };
    this.cookies.set(cookie, { circ, until: this.opts.now() + this.opts.limits.rendezvousCookieMs });
    this.send(circ, RelayCommand.RENDEZVOUS_ESTABLISHED, EMPTY);
  }

  private rendezvous(circ: RelayCircuit, data: Buffer): void {
    if (circ.mux) {
      this.refuse(circ, 'RENDEZVOUS1 on a circuit with streams');
      return;
    }
    const m = decodeRendezvous1(data);
    const cookie = m.cookie.toString('hex');
    const waiting = this.cookies.get(cookie);
    if (!waiting || waiting.until <= this.opts.now()) {
      this.refuse(circ, 'RENDEZVOUS1 with an unknown cookie');
      return;
    }
    this.cookies.delete(cookie);
    const client = waiting.circ;
    this.send(client, RelayCommand.RENDEZVOUS2, encodeRendezvous2(m));
    client.onion = { kind: 'joined', other: circ };
    circ.onion = { kind: 'joined', other: client };
    this.counts.rendezvousJoined++;
  }

  /**
   * A cell of a joined circuit that this hop opened and found is for the hop past it (§8.7): it goes
   * into the other circuit as a backward cell under this hop's layer there, the end-to-end tag in
   * the place of T. Only RELAY cells cross (a RELAY_EARLY would carry an EXTEND past the point).
   * Between holdPasses() and releasePasses() the cells wait, in order, to get that layer in one call.
   */
  passJoined(circ: RelayCircuit, other: RelayCircuit, command: number, body: Buffer): void {
    if (command !== CellCommand.RELAY || other.closed) {
      this.opts.table.teardown(circ, DestroyReason.PROTOCOL, null);
      return;
    }
    if (this.passTo !== other || this.passBodies.length >= MAX_PASS_BATCH) this.sendPasses();
    this.passTo = other;
    this.passBodies.push(body);
    if (!this.holding) this.sendPasses();
  }

  /** The cells passJoined is given from now on wait for releasePasses (a run of cells of one circuit). */
  holdPasses(): void {
    this.holding = true;
  }

  /** Sends the cells that wait, and stops holding. */
  releasePasses(): void {
    this.holding = false;
    this.sendPasses();
  }

  /**
   * The cells that wait, into their circuit with this hop's backward layer added to all of them in
   * one call: per cell the same bytes as one call each (the layer's keystream and seq run on).
   */
  private sendPasses(): void {
    const other = this.passTo;
    const bodies = this.passBodies;
    if (other === null || bodies.length === 0) return;
    this.passTo = null;
    this.passBodies = [];
    if (other.closed) return;
    const n = bodies.length;
    let input: Buffer;
    if (n === 1) input = bodies[0];
    else {
      input = passBatch.take(n * CELL_BODY_LEN);
      for (let k = 0; k < n; k++) bodies[k].copy(input, k * CELL_BODY_LEN);
    }
    const out = other.crypto.backward.add(input);
    other.cellsBackward += n;
    for (let k = 0; k < n; k++) {
      other.prev.link.send(
        other.prev.circId,
        CellCommand.RELAY,
        out.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN),
      );
    }
  }

  /** Gives back the scratch space a burst of passed cells grew. */
  releaseScratch(): void {
    passBatch.release();
  }

  /** `circ` is being torn down: its registration or cookie goes, and a joined circuit's other half with it. */
  closing(circ: RelayCircuit): void {
    const role = circ.onion;
    if (role === null) return;
    // Cells passed before the teardown go out before its DESTROY, as they would one at a time.
    if (role.kind === 'joined') this.sendPasses();
    circ.onion = null;
    if (role.kind === 'intro') {
      if (this.intros.get(role.key) === circ) this.intros.delete(role.key);
    } else if (role.kind === 'rendezvous') {
      if (this.cookies.get(role.cookie)?.circ === circ) this.cookies.delete(role.cookie);
    } else if (role.kind === 'joined') {
      const other = role.other;
      if (other.onion?.kind === 'joined' && other.onion.other === circ) {
        other.onion = null;
        this.opts.table.teardown(other, DestroyReason.DESTROYED, null);
      }
    }
  }

  /** Destroys circuits whose cookie waited too long (TIMEOUT), and drops expired descriptors. */
  sweep(): void {
    const now = this.opts.now();
    const late: RelayCircuit[] = [];
    for (const { circ, until } of this.cookies.values()) if (until <= now) late.push(circ);
    for (const circ of late) this.opts.table.teardown(circ, DestroyReason.TIMEOUT, null);
    this.opts.store.sweep();
  }

  private send(circ: RelayCircuit, command: number, data: Buffer): void {
    this.opts.table.sendBackward(circ, command, 0, data);
  }

  private refuse(circ: RelayCircuit, why: string): void {
    this.opts.log.debug({ why }, 'onion service message refused; destroying the circuit');
    this.opts.table.teardown(circ, DestroyReason.PROTOCOL, null);
  }
}
