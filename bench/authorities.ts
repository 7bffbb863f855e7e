// The authorities benchmark line (docs/protocol.md §6.7-§6.10 at scale): with 5,000 relays and n
// authorities (3 and 9), each authority's vote (bytes, time to sign, time to check), the consensus
// computed from the n votes by the rule of §6.8 (time, bytes), one signature of it, and a client
// checking the served document with its n signatures (§6.10).
// `node dist/bench/authorities.js [relays]` prints the lines; bench/run.ts calls runAuthoritiesBench().
import { pathToFileURL } from 'node:url';
import {
  type AuthoritySigner,
  certifySigningKey,
  consensusBodyText,
  openSignedConsensus,
  openVote,
  signConsensusBody,
  signVote,
} from '../src/core/authority-documents.js';
import { computeConsensus } from '../src/core/consensus-rule.js';
import { IdentityKey } from '../src/crypto/keys.js';
import { consensusEntry } from '../src/directory/consensus.js';
import type { AuthoritySet, Vote, VoteDocument } from '../src/wire/authority-docs.js';
import { makeRelays } from './consensus.js';

const ROUNDS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timed<T>(f: () => T): [T, number] {
  const t = performance.now();
  const r = f();
  return [r, performance.now() - t];
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export interface AuthoritiesBench {
  authorities: number;
  relays: number;
  voteBytes: number;
  voteSignMs: number;
  voteCheckMs: number;
  computeMs: number;
  consensusBytes: number;
  consensusSignMs: number;
  /** The served document, with every authority's signature and certificate. */
  servedBytes: number;
  clientVerifyMs: number;
}

export function runAuthoritiesBench(relays = 5000, n = 3): AuthoritiesBench {
  const now = Date.now();
  const validAfter = Math.floor(now / 60_000) * 60_000;
  const signers: AuthoritySigner[] = [];
  const set: AuthoritySet = { authorities: [] };
  for (let i = 0; i < n; i++) {
    const identity = IdentityKey.generate();
    const signingKey = IdentityKey.generate();
    const certificate = certifySigningKey(identity, signingKey.publicKey, {
      published: now - 60_000,
      expires: now + 86_400_000,
    });
    const id = identity.id.toString('hex');
    signers.push({ authority: id, signingKey, certificate });
    set.authorities.push({
      nickname: `auth${i + 1}`,
      id,
      identityKey: identity.publicKey.toString('base64'),
      url: `http://198.18.255.${i + 1}:7000`,
    });
  }
  // Every authority checked the same relays: the common case, and the largest consensus.
  const entries = makeRelays(relays, now)
    .map((r) => consensusEntry(r.descriptor))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const votes: Vote[] = signers.map((s) => ({
    network: 'allium',
    authority: s.authority,
    validAfter,
    freshUntil: validAfter + 120_000,
    validUntil: validAfter + 3 * 3600_000,
    relays: entries,
  }));

  const signTimes: number[] = [];
  let docs: VoteDocument[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    docs = votes.map((v, i) => {
      const [doc, ms] = timed(() => signVote(signers[i], v));
      signTimes.push(ms);
      return doc;
    });
  }
  const checkTimes: number[] = [];
  let opened: Vote[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    opened = docs.map((d) => {
      // As it arrives: JSON text, parsed, then checked.
      const text = JSON.stringify(d);
      const [v, ms] = timed(() => openVote(JSON.parse(text), set, { now }));
      checkTimes.push(ms);
      return v;
    });
  }

  const computeTimes: number[] = [];
  let body = '';
  for (let r = 0; r < ROUNDS; r++) {
    const [text, ms] = timed(() =>
      consensusBodyText(
        computeConsensus({ authorities: set.authorities.map((a) => a.id), votes: opened, validAfter })
          .consensus,
      ),
    );
    computeTimes.push(ms);
    body = text;
  }
  const sigTimes: number[] = [];
  const signatures = signers.map((s) => {
    const [sig, ms] = timed(() => signConsensusBody(s, body));
    sigTimes.push(ms);
    return sig;
  });
  const served = JSON.stringify({ body, signatures });
  const verifyTimes: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const [c, ms] = timed(() => openSignedConsensus(JSON.parse(served), set, { now }));
    if (c.consensus.relays.length !== relays || c.signers.length !== n) {
      throw new Error(`the consensus lists ${c.consensus.relays.length} relays, ${c.signers.length} signers`);
    }
    verifyTimes.push(ms);
  }
  return {
    authorities: n,
    relays,
    voteBytes: Buffer.byteLength(JSON.stringify(docs[0])),
    voteSignMs: round(median(signTimes)),
    voteCheckMs: round(median(checkTimes)),
    computeMs: round(median(computeTimes)),
    consensusBytes: Buffer.byteLength(body),
    consensusSignMs: round(median(sigTimes)),
    servedBytes: Buffer.byteLength(served),
    clientVerifyMs: round(median(verifyTimes)),
  };
}

export function formatAuthoritiesBench(r: AuthoritiesBench): string {
  return (
    `${r.authorities} authorities, ${r.relays} relays: vote ${(r.voteBytes / 1e6).toFixed(2)} MB, sign ${r.voteSignMs} ms, ` +
    `check ${r.voteCheckMs} ms (each of ${r.authorities}); consensus from ${r.authorities} votes ${r.computeMs} ms, ` +
    `${(r.consensusBytes / 1e6).toFixed(2)} MB, sign ${r.consensusSignMs} ms; client verifies ${r.authorities} signatures ` +
    `(${(r.servedBytes / 1e6).toFixed(2)} MB served) in ${r.clientVerifyMs} ms`
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const relays = process.argv[2] ? Number(process.argv[2]) : 5000;
  if (!Number.isInteger(relays) || relays < 1) {
    process.stderr.write('usage: node dist/bench/authorities.js [relays]\n');
    process.exit(2);
  }
  for (const n of [3, 9]) process.stdout.write(`${formatAuthoritiesBench(runAuthoritiesBench(relays, n))}\n`);
}
