// Implements docs/protocol.md §6.5 (the authority set): reading one, the checks the wire layer cannot
// make (id = SHA-256(identityKey)), the majority a consensus needs, and a single directory as a set of one.
import { relayIdOf } from '../crypto/keys.js';
import {
  type AuthorityEntry,
  type AuthoritySet,
  normalizeUrl,
  parseAuthoritySetText,
} from '../wire/authority-docs.js';
import { DirectoryDocError } from '../wire/directory-docs.js';
import { DocumentError } from './documents.js';

/** Signatures (and votes) a consensus needs: a strict majority of every configured authority. */
export function majorityOf(configured: number): number {
  return Math.floor(configured / 2) + 1;
}

/** The authority set in a file's text, every id checked against its key. */
export function openAuthoritySet(text: string): AuthoritySet {
  let set: AuthoritySet;
  try {
    set = parseAuthoritySetText(text);
  } catch (err) {
    if (err instanceof DirectoryDocError) throw new DocumentError(err.code, err.message, { cause: err });
    throw err;
  }
  for (const [i, a] of set.authorities.entries()) checkAuthorityId(a, `authorities.${i}`);
  return set;
}

function checkAuthorityId(a: AuthorityEntry, where: string): void {
  const expected = relayIdOf(Buffer.from(a.identityKey, 'base64')).toString('hex');
  if (a.id !== expected) {
    throw new DocumentError(
      'ALLIUM_AUTHORITY_SET_INVALID',
      `authority set: field "${where}.id" is ${a.id} but SHA-256(identityKey) is ${expected}`,
    );
  }
}

/** One directory, as `--directory URL --directory-key KEY` names it: a set of one. */
export function singleAuthoritySet(url: string, identityKey: Buffer, nickname = 'directory'): AuthoritySet {
  return {
    authorities: [
      {
        nickname,
        id: relayIdOf(identityKey).toString('hex'),
        identityKey: identityKey.toString('base64'),
        url: normalizeUrl(url),
      },
    ],
  };
}

/** The entry of the authority with this id, if the set has it. */
export function authorityById(set: AuthoritySet, id: string): AuthorityEntry | undefined {
  return set.authorities.find((a) => a.id === id);
}

/** How an authority is named in messages: its nickname and the start of its id. */
export function authorityLabel(a: AuthorityEntry): string {
  return `${a.nickname} (${a.id.slice(0, 8)})`;
}
