// Implements docs/protocol.md §3 from the client's side: a circuit built by telescoping (CREATE to the
// entry, then one EXTEND per further relay through the hops so far, §3.5), with the entry's keys from
// the link when it allows (§3.6), as a no-I/O step machine. Its driver (client/client-circuit.ts)
// sends the cells it asks for, runs the step timer and hands it the answers.
import {
  type CircuitHopCrypto,
  circuitHopCrypto,
  type ForwardLayer,
  wrapForwardMany,
} from '../crypto/forward-onion.js';
import { SpareEphemeralKey } from '../crypto/keys.js';
import { type LinkBoundHop, linkBoundConfirmed, linkBoundHopStart } from '../crypto/link-bound-hop.js';
import {
  type NtorClientState,
  ntorClientFinish,
  ntorClientPrecompute,
  ntorClientStart,
} from '../crypto/ntor.js';
import { type AlliumCode, AlliumError } from '../errors.js';
import { decodeCreated, encodeCreate } from '../wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType, RelayCommand } from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { encodeRelayMessage } from '../wire/relay-cell.js';
import { encodeExtend } from '../wire/relay-messages.js';

/** How long each step of a build (CREATE/CREATED, EXTEND/EXTENDED) may wait for its answer. */
export const CIRCUIT_STEP_TIMEOUT_MS = 15_000;

/** One hop of a circuit: the relay, and the keys the client shares with it. */
export interface CircuitHop {
  relay: ConsensusRelay;
  crypto: CircuitHopCrypto;
}

/** A cell the build sends on its circuit. */
export interface BuildCell {
  command: number;
  body: Buffer;
}

export type BuildStep =
  /**
   * Send `cells` in order: a new step began. Its answer is due within CIRCUIT_STEP_TIMEOUT_MS
   * (then call timedOut()); after the cells are sent, precompute() does the answer's work ahead.
   */
  | { kind: 'send'; cells: BuildCell[] }
  /** Nothing to do: the build still waits for the answer it waited for. */
  | { kind: 'waiting' }
  /** Every hop answered. */
  | { kind: 'built' }
  /**
   * Destroy the circuit with DESTROY(`reason`) for `why`. With `code`, the build fails with that
   * error code and `why`; else with the circuit's destruction.
   */
  | { kind: 'failed'; reason: number; why: string; code: AlliumCode | null };

/** The next handshake's x, made while the last one's answer is on its way. */
const spareKey = new SpareEphemeralKey();
const WAITING: BuildStep = { kind: 'waiting' };
const BUILT: BuildStep = { kind: 'built' };

export interface CircuitBuildOptions {
  /**
   * The link's secret when the entry's keys may come from it (§3.6; a path of two or more): its
   * CREATE needs no answer before the first EXTEND, which goes out right behind it.
   */
  linkSecret?: Buffer | null;
  /** The clock of buildStepsMs (ms); performance.now by default. */
  clock?: () => number;
}

/**
 * One circuit's build. start() gives the first cells; created() and extended() take the answers
 * (the CREATED cell's body, an EXTENDED message's handshake data from the last hop), timedOut() the
 * step timer. Answers that come out of turn fail the build: they are the network breaking the protocol.
 */
export class CircuitBuild {
  /** The hops so far, in path order; a link-bound entry is one from the moment its CREATE goes. */
  readonly hops: CircuitHop[] = [];
  /** Milliseconds each hop took (CREATE/CREATED, then each EXTEND/EXTENDED), for the logs. */
  readonly stepsMs: number[] = [];
  private readonly path: ConsensusRelay[];
  private readonly linkSecret: Buffer | null;
  private readonly clock: () => number;
  /** The handshake whose answer the build waits for, and when its step began. */
  private pending: { state: NtorClientState; relay: ConsensusRelay; since: number } | null = null;
  /** A link-bound entry whose CREATED has not come back yet: what it must confirm. */
  private linkBound: LinkBoundHop | null = null;
  private state: 'new' | 'building' | 'built' | 'failed' = 'new';

  constructor(path: ConsensusRelay[], opts: CircuitBuildOptions = {}) {
    this.path = path;
    this.linkSecret = opts.linkSecret && path.length > 1 ? opts.linkSecret : null;
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Hops whose relay has answered: a link-bound entry counts once its CREATED came back. */
  get confirmedHops(): number {
    return this.hops.length - (this.linkBound ? 1 : 0);
  }

  /** The entry has not confirmed its link-bound hop yet: a CREATED or DESTROY is all it may send (§3.6). */
  get awaitingEntryConfirmation(): boolean {
    return this.linkBound !== null;
  }

  /** The relay whose answer the build waits for, if any. */
  get waitingFor(): ConsensusRelay | null {
    return this.pending?.relay ?? null;
  }

  /** The first cells: CREATE to the entry (and, link-bound, the first EXTEND right behind it). */
  start(): BuildStep {
    if (this.state !== 'new') return this.protocolError('the build was started twice');
    this.state = 'building';
    const cells: BuildCell[] = [];
    if (this.linkSecret) {
      const since = this.clock();
      const { hdata, hop } = linkBoundHopStart(this.linkSecret);
      this.linkBound = hop;
      cells.push({ command: CellCommand.CREATE, body: encodeCreate(HandshakeType.LINK_BOUND, hdata) });
      this.hops.push({ relay: this.path[0], crypto: circuitHopCrypto(hop.keys, { firstHop: true }) });
      this.noteStep(since);
    }
    return this.sendNext(cells);
  }

  /** Does the pending handshake's answer's first half now, off the build's path (idempotent). */
  precompute(): void {
    if (this.pending) ntorClientPrecompute(this.pending.state);
    spareKey.refill();
  }

  /** A CREATED cell's body. */
  created(body: Buffer): BuildStep {
    if (this.state === 'failed') return WAITING;
    let hdata: Buffer;
    try {
      hdata = decodeCreated(body).hdata;
    } catch (err) {
      return this.protocolError((err as Error).message);
    }
    const linkBound = this.linkBound;
    if (linkBound) {
      // Still unconfirmed here: the entry is the relay that failed the build.
      if (!linkBoundConfirmed(linkBound, hdata)) {
        return this.protocolError('the entry did not confirm the link-bound first hop');
      }
      this.linkBound = null;
      return WAITING;
    }
    if (this.hops.length !== 0) return this.protocolError('CREATED after the first hop');
    return this.answered(hdata);
  }

  /** The handshake data of an EXTENDED message from the last hop. */
  extended(hdata: Buffer): BuildStep {
    if (this.state === 'failed') return WAITING;
    return this.answered(hdata);
  }

  /** The step timer ran out before its answer came. */
  timedOut(): BuildStep {
    const relay = this.pending?.relay;
    if (this.state !== 'building' || !relay) return WAITING;
    return this.fail(
      DestroyReason.TIMEOUT,
      `no answer from ${relay.nickname} within ${CIRCUIT_STEP_TIMEOUT_MS} ms`,
      null,
    );
  }

  /** Completes the pending handshake with the relay's answer; then the next step, or the end. */
  private answered(hdata: Buffer): BuildStep {
    const pending = this.pending;
    if (!pending || this.state !== 'building') return this.protocolError('unexpected CREATED/EXTENDED');
    this.pending = null;
    let keys: ReturnType<typeof ntorClientFinish>;
    try {
      keys = ntorClientFinish(pending.state, hdata);
    } catch (err) {
      return this.protocolError((err as Error).message);
    }
    this.hops.push({
      relay: pending.relay,
      crypto: circuitHopCrypto(keys, { firstHop: this.hops.length === 0 }),
    });
    this.noteStep(pending.since);
    if (this.hops.length < this.path.length) return this.sendNext([]);
    // The entry's CREATED comes before anything it forwards on the circuit: still missing, it never came.
    if (this.linkBound) {
      return this.fail(
        DestroyReason.PROTOCOL,
        `${this.path[0].nickname} never confirmed the first hop`,
        'ALLIUM_CIRCUIT_PROTOCOL',
      );
    }
    this.state = 'built';
    return BUILT;
  }

  /** `cells` and the next relay's handshake. A relay whose keys cannot start one fails the build. */
  private sendNext(cells: BuildCell[]): BuildStep {
    try {
      cells.push(this.nextHandshake());
    } catch (err) {
      const code = err instanceof AlliumError ? err.code : 'ALLIUM_CIRCUIT_PROTOCOL';
      return this.fail(DestroyReason.REQUESTED, (err as Error).message, code);
    }
    return { kind: 'send', cells };
  }

  /** An ntor handshake with the next relay of the path: CREATE to the entry, else EXTEND to the last hop. */
  private nextHandshake(): BuildCell {
    const relay = this.path[this.hops.length];
    const since = this.clock();
    const { onionskin, state } = ntorClientStart(
      Buffer.from(relay.id, 'hex'),
      Buffer.from(relay.onionKey, 'base64'),
      spareKey.take(),
    );
    this.pending = { state, relay, since };
    if (this.hops.length === 0) {
      return { command: CellCommand.CREATE, body: encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin) };
    }
    const extend = encodeExtend({
      address: relay.address,
      port: relay.port,
      relayId: Buffer.from(relay.id, 'hex'),
      htype: HandshakeType.NTOR_X25519_SHA256,
      hdata: onionskin,
    });
    // RELAY_EARLY, for the last hop so far, tagged for every hop on the way (§3.4, §3.5).
    const layers: ForwardLayer[] = this.hops.map((h) => h.crypto.forward);
    const { bodies } = wrapForwardMany(
      layers,
      [encodeRelayMessage(RelayCommand.EXTEND, 0, extend)],
      CellCommand.RELAY_EARLY,
    );
    return { command: CellCommand.RELAY_EARLY, body: bodies[0] };
  }

  private noteStep(since: number): void {
    this.stepsMs.push(Math.round((this.clock() - since) * 100) / 100);
  }

  private protocolError(message: string): BuildStep {
    return this.fail(DestroyReason.PROTOCOL, `protocol error: ${message}`, null);
  }

  private fail(reason: number, why: string, code: AlliumCode | null): BuildStep {
    this.state = 'failed';
    this.pending = null;
    return { kind: 'failed', reason, why, code };
  }
}
