// Implements docs/protocol.md §6.6 at an authority: its signing key and the certificate its identity
// key gave it, kept in the data directory and renewed before the certificate runs out.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type AuthoritySigner, certifySigningKey } from '../core/authority-documents.js';
import { IdentityKey } from '../crypto/keys.js';
import { writeFileAtomic } from '../storage/atomic-file.js';
import { parseCertificateBody, parseCertificateEnvelope } from '../wire/authority-docs.js';
import type { SignedEnvelope } from '../wire/directory-docs.js';
import { DirectoryError } from './errors.js';

export const SIGNING_KEY_FILE = 'signing-key';
export const CERTIFICATE_FILE = 'signing-key-certificate.json';
/** How long a certificate made here is valid. */
export const CERTIFICATE_LIFETIME_MS = 30 * 86_400_000;
/** A certificate with less than this left is replaced by a new key and certificate at start. */
export const CERTIFICATE_RENEW_MS = 7 * 86_400_000;

async function readIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DirectoryError(
      'ALLIUM_DIRECTORY_KEY_UNREADABLE',
      0,
      `cannot read ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

function certificateOf(text: string | null): SignedEnvelope | null {
  if (text === null) return null;
  try {
    return parseCertificateEnvelope(JSON.parse(text));
  } catch {
    return null;
  }
}

/**
 * The authority's signer: the signing key in `dataDir`, with a certificate by `identity` that names
 * it and runs for at least CERTIFICATE_RENEW_MS more. A missing key, a certificate for another key,
 * or one near its end gets a new key and certificate (the identity key is at hand here).
 */
export async function loadOrCertifySigner(
  dataDir: string,
  identity: IdentityKey,
  now: number,
): Promise<{ signer: AuthoritySigner; renewed: boolean }> {
  const keyPath = join(dataDir, SIGNING_KEY_FILE);
  const certPath = join(dataDir, CERTIFICATE_FILE);
  const keyText = await readIfPresent(keyPath);
  const cert = certificateOf(await readIfPresent(certPath));
  if (keyText !== null && /^[0-9a-f]{64}$/i.test(keyText.trim()) && cert) {
    if (((await stat(keyPath)).mode & 0o077) !== 0) {
      throw new DirectoryError(
        'ALLIUM_KEY_PERMISSIONS',
        0,
        `key file ${keyPath} is readable by others; run: chmod 600 ${keyPath}`,
      );
    }
    const signingKey = IdentityKey.fromSeed(Buffer.from(keyText.trim(), 'hex'));
    try {
      const body = parseCertificateBody(cert.body);
      if (
        body.signingKey === signingKey.publicKey.toString('base64') &&
        body.identityKey === identity.publicKey.toString('base64') &&
        body.expires - now > CERTIFICATE_RENEW_MS &&
        body.published <= now
      ) {
        return {
          signer: { authority: identity.id.toString('hex'), signingKey, certificate: cert },
          renewed: false,
        };
      }
    } catch {
      // A certificate that does not parse is replaced below, like a missing one.
    }
  }
  const signingKey = IdentityKey.generate();
  const certificate = certifySigningKey(identity, signingKey.publicKey, {
    published: now,
    expires: now + CERTIFICATE_LIFETIME_MS,
  });
  await writeFileAtomic(keyPath, `${signingKey.seed().toString('hex')}\n`, 0o600);
  await writeFileAtomic(certPath, `${JSON.stringify(certificate)}\n`, 0o600);
  return { signer: { authority: identity.id.toString('hex'), signingKey, certificate }, renewed: true };
}
