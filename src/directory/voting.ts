// Implements docs/protocol.md §6.7-§6.9 at an authority (docs/directory.md "Several authorities"):
// each voting period it signs its vote, gathers the others' (from every authority, which pass on
// what they hold), computes the consensus by the rule of §6.8, signs it, gathers the others'
// signatures of the same bytes, and serves the newest consensus that a majority signed. Why a vote
// or signature is missing is kept for the status page and the log.
// Just over 400 lines for a reason: one period's steps share its state; what the voting is given, the
// period's state and the status page's view of it are in voting-options, voting-period, voting-status.
import {
  consensusBodyText,
  consensusSignatureProblem,
  openVote,
  signConsensusBody,
  signVote,
} from '../core/authority-documents.js';
import { authorityLabel, majorityOf } from '../core/authority-set.js';
import { computeConsensus } from '../core/consensus-rule.js';
import { sha256 } from '../crypto/keys.js';
import {
  type AuthorityConsensus,
  type AuthorityEntry,
  type ConsensusSignature,
  parseConsensusSignature,
  type Vote,
  type VoteDocument,
} from '../wire/authority-docs.js';
import type { VotingOptions } from './voting-options.js';
import type { ComputedConsensus, Period } from './voting-period.js';
import { type VotingStatus, voteDifference, votingStatus } from './voting-status.js';

export type { PeerApi, VotingOptions } from './voting-options.js';
export type { AuthorityRow, VotingStatus } from './voting-status.js';

const KEEP_PERIODS = 4;

export class AuthorityVoting {
  private readonly o: VotingOptions;
  private readonly clock: () => number;
  private readonly periods = new Map<number, Period>();
  private readonly needed: number;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private stopped = false;
  private readonly saidDifference = new Map<string, { leftOut: number; lacking: number }>();

  constructor(opts: VotingOptions) {
    this.o = opts;
    this.clock = opts.now ?? Date.now;
    this.needed = majorityOf(opts.set.authorities.length);
  }

  periodStart(now: number): number {
    return Math.floor(now / this.o.intervalMs) * this.o.intervalMs;
  }

  /** Works through the schedule on a timer until stop(). */
  start(): void {
    this.stopped = false;
    const step = Math.max(50, Math.floor(this.o.intervalMs / 10));
    const run = () => {
      if (this.stopped) return;
      void this.tick().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(run, step);
        this.timer.unref();
      });
    };
    run();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * One step: the vote of the current period, then the votes missing (until all are held or half
   * the period has gone), then the consensus, then the signatures missing.
   */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = this.clock();
      const p = this.period(this.periodStart(now));
      if (!p.computed && !p.computeProblem) {
        await this.gatherVotes(p);
        const deadline = p.validAfter + this.o.intervalMs / 2;
        if (p.votes.size === this.o.set.authorities.length || this.clock() >= deadline) this.compute(p);
      }
      if (p.computed && p.signatures.size < this.o.set.authorities.length) await this.gatherSignatures(p);
      this.noteSigned(p);
    } finally {
      this.busy = false;
    }
  }

  private period(validAfter: number): Period {
    let p = this.periods.get(validAfter);
    if (p) return p;
    for (const old of this.periods.values()) this.report(old);
    p = {
      validAfter,
      votes: new Map(),
      voteProblems: new Map(),
      unreachable: new Map(),
      computed: null,
      computeProblem: null,
      signatures: new Map(),
      signatureProblems: new Map(),
      json: null,
      reported: false,
      signedNoted: false,
    };
    this.periods.set(validAfter, p);
    // The newest consensus a majority signed is kept past KEEP_PERIODS: while no newer one forms it
    // is still served, until it expires.
    const keep = this.newestSigned()?.validAfter;
    for (let i = 0; i < KEEP_PERIODS + 2 && this.periods.size > KEEP_PERIODS; i++) {
      const oldest = Math.min(...[...this.periods.keys()].filter((k) => k !== keep));
      this.periods.delete(oldest);
    }
    const now = this.clock();
    const vote: Vote = {
      network: 'allium',
      authority: this.o.self,
      validAfter,
      freshUntil: validAfter + Math.max(this.o.freshMs, 2 * this.o.intervalMs),
      validUntil: validAfter + Math.max(this.o.validMs, this.o.freshMs, 2 * this.o.intervalMs),
      relays: this.o.relays(now),
    };
    const onion = this.o.onion?.(validAfter);
    if (onion) vote.onion = onion;
    p.votes.set(this.o.self, { doc: signVote(this.o.signer, vote), vote });
    return p;
  }

  private others(): AuthorityEntry[] {
    return this.o.set.authorities.filter((a) => a.id !== this.o.self);
  }

  private async gatherVotes(p: Period): Promise<void> {
    const missing = this.others().filter((a) => !p.votes.has(a.id));
    // Ask every authority still missing a vote; each answers with every vote it holds, so a vote
    // reaches us through any authority that could fetch it.
    await Promise.all(
      this.others().map(async (peer) => {
        if (missing.length === 0) return;
        let answer: { votes: unknown[]; current?: number };
        try {
          answer = await this.o.peers.votes(peer, p.validAfter);
        } catch (err) {
          const why = `unreachable: ${(err as Error).message}`;
          p.unreachable.set(peer.id, why);
          if (!p.votes.has(peer.id)) p.voteProblems.set(peer.id, why);
          return;
        }
        p.unreachable.delete(peer.id);
        for (const json of answer.votes) this.takeVote(p, json);
        if (!p.votes.has(peer.id) && !p.voteProblems.has(peer.id)) {
          const theirs = answer.current;
          p.voteProblems.set(
            peer.id,
            theirs !== undefined && theirs !== p.validAfter
              ? `no vote for this period: its period starts at ${new Date(theirs).toISOString()}, ours at ${new Date(p.validAfter).toISOString()} (check its clock)`
              : 'no vote for this period yet',
          );
        }
      }),
    );
  }

  private takeVote(p: Period, json: unknown): void {
    let vote: Vote;
    try {
      vote = openVote(json, this.o.set, { now: this.clock() });
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'refused a vote');
      return;
    }
    if (vote.validAfter !== p.validAfter) return;
    const held = p.votes.get(vote.authority);
    if (held) {
      if (held.doc.body !== (json as VoteDocument).body) {
        p.voteProblems.set(vote.authority, 'signed two different votes for this period: kept the first');
      }
      return;
    }
    p.votes.set(vote.authority, { doc: json as VoteDocument, vote });
    p.voteProblems.delete(vote.authority);
  }

  private compute(p: Period): void {
    const ids = this.o.set.authorities.map((a) => a.id);
    try {
      const { consensus, ignored } = computeConsensus({
        authorities: ids,
        votes: [...p.votes.values()].map((v) => v.vote),
        validAfter: p.validAfter,
      });
      for (const i of ignored) p.voteProblems.set(i.authority, i.reason);
      const body = consensusBodyText(consensus);
      const digest = sha256(Buffer.from(body, 'utf8')).toString('hex');
      p.computed = { consensus, body, digest };
      p.signatures.set(this.o.self, signConsensusBody(this.o.signer, body));
      p.json = null;
      this.o.logger.info(
        {
          serial: consensus.serial,
          relays: consensus.relays.length,
          votes: consensus.authorities.length,
          digest,
        },
        'consensus computed',
      );
      const listed = new Set(consensus.relays.map((r) => r.id));
      for (const a of this.others()) {
        const held = p.votes.get(a.id);
        const d = held ? voteDifference(held.vote, listed) : null;
        const said = this.saidDifference.get(a.id);
        // Said when it changes, not every period: a standing disagreement is one line in the log.
        if (d && (d.leftOut !== said?.leftOut || d.lacking !== said?.lacking)) {
          this.saidDifference.set(a.id, d);
          if (d.leftOut > 0 || d.lacking > 0) {
            this.o.logger.warn(
              { authority: authorityLabel(a), notListed: d.leftOut, lacking: d.lacking },
              'an authority votes for relays no majority lists, or lacks listed ones: they are left out of (or kept in) the consensus by the majority rule',
            );
          }
        }
        const why = p.voteProblems.get(a.id);
        if (!consensus.authorities.includes(a.id)) {
          this.o.logger.warn(
            { authority: authorityLabel(a), reason: why ?? 'no vote' },
            "computed the consensus without this authority's vote",
          );
        }
      }
    } catch (err) {
      p.computeProblem = (err as Error).message;
      this.o.logger.error(
        { validAfter: p.validAfter, missing: this.describeMissingVotes(p) },
        `no consensus for this period: ${p.computeProblem}`,
      );
    }
  }

  private describeMissingVotes(p: Period): string[] {
    return this.others()
      .filter((a) => !p.votes.has(a.id) || p.voteProblems.has(a.id))
      .map((a) => `${authorityLabel(a)}: ${p.voteProblems.get(a.id) ?? 'no vote'}`);
  }

  private async gatherSignatures(p: Period): Promise<void> {
    const computed = p.computed as ComputedConsensus;
    await Promise.all(
      this.others()
        .filter((peer) => !p.signatures.has(peer.id))
        .map(async (peer) => {
          let answer: { digest: string; signature: unknown } | null;
          try {
            answer = await this.o.peers.signature(peer, p.validAfter);
          } catch (err) {
            p.signatureProblems.set(peer.id, `unreachable: ${(err as Error).message}`);
            return;
          }
          if (answer === null) {
            // An authority whose clock is off votes for another period, so signs none of ours.
            const clock = p.voteProblems.get(peer.id);
            p.signatureProblems.set(
              peer.id,
              clock?.includes('check its clock')
                ? `has computed no consensus for this period: ${clock}`
                : 'has computed no consensus for this period (yet)',
            );
            return;
          }
          if (answer.digest !== computed.digest) {
            const why = `signed a different consensus (SHA-256 ${answer.digest.slice(0, 16)}..., ours ${computed.digest.slice(0, 16)}...): it computed it from other votes, or signs what the votes do not say`;
            if (p.signatureProblems.get(peer.id) !== why) {
              this.o.logger.warn(
                {
                  authority: authorityLabel(peer),
                  serial: p.validAfter,
                  theirs: answer.digest,
                  ours: computed.digest,
                },
                'an authority signed a different consensus for this period: its signature does not count for ours',
              );
            }
            p.signatureProblems.set(peer.id, why);
            return;
          }
          let sig: ConsensusSignature;
          try {
            sig = parseConsensusSignature(answer.signature);
          } catch (err) {
            p.signatureProblems.set(peer.id, `sent a malformed signature: ${(err as Error).message}`);
            return;
          }
          const why = consensusSignatureProblem(sig, computed.body, peer, { now: this.clock() });
          if (why !== null) {
            p.signatureProblems.set(peer.id, why);
            return;
          }
          p.signatures.set(peer.id, sig);
          p.signatureProblems.delete(peer.id);
          p.json = null;
        }),
    );
  }

  /** Once a majority signed the period's consensus, says so once (its ring values are kept). */
  private noteSigned(p: Period): void {
    if (p.signedNoted || !p.computed || p.signatures.size < this.needed) return;
    p.signedNoted = true;
    this.o.onSigned?.(p.computed.consensus);
  }

  /** Logs, once per period when it is over, the signatures that never came and why. */
  private report(p: Period): void {
    if (p.reported || !p.computed) return;
    p.reported = true;
    const missing = this.others()
      .filter((a) => !p.signatures.has(a.id))
      .map((a) => `${authorityLabel(a)}: ${p.signatureProblems.get(a.id) ?? 'no signature'}`);
    if (missing.length === 0) return;
    const n = this.o.set.authorities.length;
    const line = `${p.signatures.size} of ${n} signatures; need ${this.needed}`;
    if (p.signatures.size >= this.needed)
      this.o.logger.warn({ serial: p.validAfter, missing }, `consensus signed: ${line}`);
    else
      this.o.logger.error(
        { serial: p.validAfter, missing },
        `the consensus of this period never got a majority (${line}): clients keep the previous one`,
      );
  }

  /** The votes held for a period (GET /v1/authority/votes/:validAfter), and the current period. */
  votesFor(validAfter: number): { votes: VoteDocument[]; current: number } {
    const p = this.periods.get(validAfter);
    return {
      votes: p ? [...p.votes.values()].map((v) => v.doc) : [],
      current: this.periodStart(this.clock()),
    };
  }

  /** This authority's signature of its consensus for a period, or null. */
  signatureFor(validAfter: number): { digest: string; signature: ConsensusSignature } | null {
    const p = this.periods.get(validAfter);
    const sig = p?.signatures.get(this.o.self);
    if (!p?.computed || !sig) return null;
    return { digest: p.computed.digest, signature: sig };
  }

  /**
   * The consensus to serve: the newest one a majority signed, with every signature held; null before
   * the first (one with fewer signatures is not served: no client would accept it, and a client
   * starting up would take the refusal for a forgery).
   */
  served(): { json: string; consensus: AuthorityConsensus } | null {
    const now = this.clock();
    // An expired consensus is not served either: no client takes it, and the 503 instead says why
    // no newer one formed.
    const p = [...this.periods.values()]
      .filter((q) => q.computed && q.signatures.size >= this.needed && q.computed.consensus.validUntil >= now)
      .sort((a, b) => b.validAfter - a.validAfter)[0];
    if (!p?.computed) return null;
    if (p.json === null) {
      const signatures = this.o.set.authorities
        .map((a) => p.signatures.get(a.id))
        .filter((s): s is ConsensusSignature => s !== undefined);
      p.json = JSON.stringify({ body: p.computed.body, signatures });
    }
    return { json: p.json, consensus: p.computed.consensus };
  }

  /** Why nothing is served: the newest period says (too few votes, or too few signatures yet). */
  unavailableReason(): string {
    const newest = [...this.periods.values()]
      .filter((p) => p.computeProblem || p.computed)
      .sort((a, b) => b.validAfter - a.validAfter)[0];
    if (!newest) return 'the authorities are still voting';
    const expired = this.expiredNote();
    if (newest.computeProblem) {
      return `${expired}${newest.computeProblem} (${this.describeMissingVotes(newest).join('; ')})`;
    }
    const n = this.o.set.authorities.length;
    const missing = this.others()
      .filter((a) => !newest.signatures.has(a.id))
      .map((a) => `${authorityLabel(a)}: ${newest.signatureProblems.get(a.id) ?? 'not fetched yet'}`);
    return `${expired}the consensus of the period from ${new Date(newest.validAfter).toISOString()} has ${newest.signatures.size} of ${n} signatures; need ${this.needed} (${missing.join('; ')})`;
  }

  private newestSigned(): Period | undefined {
    return [...this.periods.values()]
      .filter((q) => q.computed && q.signatures.size >= this.needed)
      .sort((a, b) => b.validAfter - a.validAfter)[0];
  }

  /** "the last consensus expired at ...; " when one a majority signed is held but expired, else "". */
  private expiredNote(): string {
    const last = this.newestSigned();
    if (!last?.computed || last.computed.consensus.validUntil >= this.clock()) return '';
    return `the last consensus a majority signed expired at ${new Date(last.computed.consensus.validUntil).toISOString()}; `;
  }

  status(): VotingStatus {
    const now = this.clock();
    const p = this.periods.get(this.periodStart(now)) ?? [...this.periods.values()].at(-1);
    return votingStatus(p, {
      set: this.o.set,
      self: this.o.self,
      majority: this.needed,
      validAfter: p?.validAfter ?? this.periodStart(now),
      servedValidAfter: this.served()?.consensus.validAfter ?? null,
    });
  }
}
