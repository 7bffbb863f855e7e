// `allium directory verify` (docs/directory.md "Checking a consensus"): the consensus an authority
// serves, and the votes it published for that period (or both from files), recomputed by the rule of
// protocol.md §6.8 and compared byte for byte.
import { readFile } from 'node:fs/promises';
import { checkConsensusAgainstVotes } from '../core/consensus-verify.js';
import { MAX_VOTES_ANSWER } from '../directory/peer-api.js';
import { AlliumError } from '../errors.js';
import { DirectoryClient } from '../net/directory-client.js';
import { parseAuthorityConsensusBody } from '../wire/authority-docs.js';
import { readAuthoritySet } from './trust-flags.js';

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AlliumError('ALLIUM_VERIFY_INPUT', `cannot read ${what} ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new AlliumError('ALLIUM_VERIFY_INPUT', `${what} ${path} is not JSON`);
  }
}

function votesOf(json: unknown, path: string): unknown[] {
  if (Array.isArray(json)) return json;
  const votes = (json as { votes?: unknown } | null)?.votes;
  if (Array.isArray(votes)) return votes;
  throw new AlliumError(
    'ALLIUM_VERIFY_INPUT',
    `${path}: expected a JSON array of votes, or { "votes": [...] }`,
  );
}

export async function runDirectoryVerify(o: {
  authorities: string;
  from?: string;
  consensus?: string;
  votes?: string;
}): Promise<void> {
  const set = await readAuthoritySet(o.authorities);
  const from = o.from ?? set.authorities[0].url;
  const client = new DirectoryClient({ url: from, timeoutMs: 30_000 });
  const consensus =
    o.consensus !== undefined
      ? await readJson(o.consensus, 'the consensus')
      : await client.consensusDocument();
  let votes: unknown[];
  if (o.votes !== undefined) {
    votes = votesOf(await readJson(o.votes, 'the votes'), o.votes);
  } else {
    let validAfter: number;
    try {
      validAfter = parseAuthorityConsensusBody((consensus as { body: string }).body).validAfter;
    } catch (err) {
      throw new AlliumError(
        'ALLIUM_CONSENSUS_INVALID',
        `not a consensus of an authority set: ${(err as Error).message}`,
      );
    }
    votes = (await client.authorityVotes(validAfter, MAX_VOTES_ANSWER)).votes;
  }
  const check = checkConsensusAgainstVotes(set, consensus, votes);
  process.stdout.write(`${check.lines.join('\n')}\n`);
  if (!check.match) process.exitCode = 1;
}
