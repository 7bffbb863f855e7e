// The flags that say what a relay or client trusts: one directory (--directory, --directory-key) or
// an authority set (--authorities FILE), and the caches a client asks besides those listed.
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from 'commander';
import { openAuthoritySet } from '../core/authority-set.js';
import { AlliumError } from '../errors.js';
import type { AuthoritySet } from '../wire/authority-docs.js';
import { parseDirectoryUrl } from './options.js';

/** Reads and checks an authority set file (protocol.md §6.5). */
export async function readAuthoritySet(path: string): Promise<AuthoritySet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AlliumError(
      'ALLIUM_AUTHORITY_SET_INVALID',
      `cannot read the authority set ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return openAuthoritySet(text);
}

/** `--cache URL,URL`: the consensus caches to ask first. */
export function parseCacheUrls(value: string): string[] {
  const urls = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new InvalidArgumentError('expected one or more cache URLs, comma-separated');
  return urls.map((u) => parseDirectoryUrl(u));
}

export interface TrustFlags {
  directory?: string;
  directoryKey?: Buffer;
  authorities?: string;
}

export interface ResolvedTrust {
  directoryUrl?: string;
  directoryKey?: Buffer;
  authorities?: AuthoritySet;
}

/**
 * The directory or the authority set, whichever was given (not both). `keyRequired`: a client must
 * be able to check the consensus; a relay may run without a key (its clients check it).
 */
export async function resolveTrust(o: TrustFlags, keyRequired: boolean): Promise<ResolvedTrust> {
  if (o.authorities !== undefined) {
    if (o.directory !== undefined || o.directoryKey !== undefined) {
      throw new AlliumError(
        'ALLIUM_AUTHORITY_SET_INVALID',
        'give either --authorities FILE or --directory (with --directory-key), not both: the set names every authority and its key',
      );
    }
    return { authorities: await readAuthoritySet(o.authorities) };
  }
  if (o.directory === undefined) {
    throw new AlliumError(
      'ALLIUM_DIRECTORY_NO_KEY',
      'say where the consensus comes from: --authorities FILE (a set of directory authorities), or --directory URL --directory-key KEY (a single directory)',
    );
  }
  if (keyRequired && o.directoryKey === undefined) {
    throw new AlliumError(
      'ALLIUM_DIRECTORY_NO_KEY',
      "--directory needs --directory-key: the directory's public key, from its `ready ... key=` line",
    );
  }
  return { directoryUrl: o.directory, directoryKey: o.directoryKey };
}
