// Implements docs/protocol.md §6.1 and docs/directory-api.md at a relay: learn the public address,
// register a signed descriptor with the directory, or with every authority of the set (waiting for
// those not up yet), refresh it, and withdraw it on a clean stop.

import { authorityLabel, majorityOf } from '../core/authority-set.js';
import { signDescriptor, signWithdraw } from '../core/documents.js';
import type { IdentityKey } from '../crypto/keys.js';
import { AlliumError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { DirectoryClient } from '../net/directory-client.js';
import { ALLIUM_VERSION } from '../version.js';
import type { AuthorityEntry } from '../wire/authority-docs.js';
import type { SignedEnvelope } from '../wire/directory-docs.js';

/** What goes into the relay's descriptor. */
export interface DescriptorSource {
  identity: IdentityKey;
  /** The current onion key (it changes when the relay rotates it). */
  onionPublicKey(): Buffer;
  nickname: string;
  /** The address to advertise; asked of the directory when absent. */
  address?: string;
  /** The port links are accepted on (known once the relay listens). */
  port(): number;
  exitPolicy: string[];
  bandwidth: number;
  family?: string[];
  /** The port of this relay's consensus cache, once it listens (§6.11). */
  cachePort?: () => number | undefined;
}

/** One directory the relay registers with; `authority` when it is one of a set. */
export interface RegistrationTarget {
  client: DirectoryClient;
  authority?: AuthorityEntry;
}

function isTransient(err: unknown): boolean {
  const code = (err as AlliumError).code;
  return code === ErrorCode.DIRECTORY_UNREACHABLE || code === ErrorCode.DIRECTORY_TIMEOUT;
}

export class DirectoryRegistration {
  /** The advertised address, once known. */
  address = '';
  private refreshTimer: NodeJS.Timeout | null = null;
  /** Whether the directory has shown it signs with the configured key (checked once, before registering). */
  private keyChecked: boolean;
  /** The targets that took the current descriptor (by URL). */
  private readonly registered = new Set<string>();
  /** Registrations still needed at start: the directory, or a strict majority of the authorities. */
  private readonly needed: number;

  constructor(
    private readonly targets: RegistrationTarget[],
    private readonly source: DescriptorSource,
    private readonly log: Logger,
    private readonly refreshMs: number,
    /** A directory key was configured: refuse a directory whose consensus it does not verify. */
    checkDirectoryKey = false,
  ) {
    this.keyChecked = !checkDirectoryKey;
    const authorities = targets.filter((t) => t.authority).length;
    this.needed = authorities > 0 ? majorityOf(authorities) : targets.length;
  }

  private get single(): boolean {
    return this.targets.length === 1 && !this.targets[0].authority;
  }

  private name(t: RegistrationTarget): string {
    return t.authority ? `authority ${authorityLabel(t.authority)}` : `the directory at ${t.client.url}`;
  }

  /**
   * Registers, waiting for directories that are not up yet (relays are often started before them, or
   * with them, by a service manager): done once the directory, or a strict majority of the
   * authorities, took the descriptor; the others are asked again at every refresh. A refusal by the
   * directory (or by so many authorities that no majority is left) is final: its reason needs the
   * operator.
   */
  async registerFirst(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      const failures = await this.registerAll();
      if (this.registered.size >= this.needed) {
        this.startRefreshing();
        return;
      }
      const refused = failures.filter((f) => !isTransient(f.err));
      const transient = failures.filter((f) => isTransient(f.err));
      const first = refused[0]?.err ?? transient[0]?.err;
      if (this.registered.size + transient.length < this.needed || Date.now() + delay > deadline) {
        throw first;
      }
      for (const f of transient) {
        this.log.warn(
          { code: (f.err as AlliumError).code, retryInMs: delay },
          `${this.single ? 'the directory' : this.name(f.target)} is not answering yet: ${(f.err as Error).message}`,
        );
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** Signs one descriptor and offers it to every target; returns the failures. */
  private async registerAll(): Promise<{ target: RegistrationTarget; err: unknown }[]> {
    const s = this.source;
    const failures: { target: RegistrationTarget; err: unknown }[] = [];
    if (!this.keyChecked) {
      try {
        await this.checkDirectoryKey(this.targets[0].client);
      } catch (err) {
        return [{ target: this.targets[0], err }];
      }
    }
    if (!this.address) {
      if (s.address) this.address = s.address;
      else {
        for (const t of this.targets) {
          try {
            this.address = await t.client.whoami();
            this.log.info({ address: this.address }, 'learned public address from the directory');
            break;
          } catch (err) {
            failures.push({ target: t, err });
          }
        }
        if (!this.address) return failures;
      }
    }
    // One descriptor for every authority: their votes then describe the same relay byte for byte.
    const cachePort = s.cachePort?.();
    const env = signDescriptor(s.identity, {
      nickname: s.nickname,
      id: s.identity.id.toString('hex'),
      identityKey: s.identity.publicKey.toString('base64'),
      onionKey: s.onionPublicKey().toString('base64'),
      address: this.address,
      port: s.port(),
      exitPolicy: s.exitPolicy,
      bandwidth: s.bandwidth,
      version: `allium/${ALLIUM_VERSION}`,
      published: Date.now(),
      ...(s.family?.length ? { family: s.family } : {}),
      ...(cachePort ? { cachePort } : {}),
    });
    failures.length = 0;
    this.registered.clear();
    await Promise.all(
      this.targets.map(async (t) => {
        try {
          await this.registerWith(t, env);
          this.registered.add(t.client.url);
        } catch (err) {
          failures.push({ target: t, err });
        }
      }),
    );
    if (this.registered.size > 0) {
      this.log.info(
        {
          address: this.address,
          port: s.port(),
          ...(this.single ? {} : { authorities: this.registered.size }),
        },
        this.single ? 'registered with the directory' : 'registered with the authorities',
      );
    }
    return failures;
  }

  private async registerWith(t: RegistrationTarget, env: SignedEnvelope): Promise<void> {
    try {
      await t.client.register(env);
    } catch (err) {
      // The operator reads the directory's own reason: "not reachable from the directory at A:P: <reason>".
      // Thrown, not logged: whoever catches it prints it once (the command's last line, or a warning).
      const e = err as { remoteCode?: string; remoteMessage?: string; message: string };
      if (e.remoteCode === ErrorCode.RELAY_UNREACHABLE && e.remoteMessage) {
        const who = this.single ? '' : ` (${this.name(t)})`;
        throw new AlliumError(e.remoteCode, `${e.remoteMessage}${who}`, { cause: err });
      }
      throw err;
    }
  }

  private startRefreshing(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setInterval(() => this.refreshNow(), this.refreshMs);
    this.refreshTimer.unref();
  }

  /**
   * A relay told the wrong --directory-key would register with a directory its clients cannot trust
   * (or one that is not the operator's): as clients do, it refuses a consensus the key does not verify.
   */
  private async checkDirectoryKey(directory: DirectoryClient): Promise<void> {
    try {
      await directory.consensus();
    } catch (err) {
      const code = (err as AlliumError).code;
      if (isTransient(err)) throw err;
      if (code !== ErrorCode.CONSENSUS_SIGNATURE) {
        // No consensus to check against (say, a directory that serves none yet): clients check it later.
        this.log.warn({ code }, `could not check the directory key: ${(err as Error).message}`);
        this.keyChecked = true;
        return;
      }
      throw new AlliumError(
        'ALLIUM_RELAY_DIRECTORY_KEY',
        `the directory at ${directory.url} does not sign with the --directory-key given: copy the key from the directory's \`ready ... key=\` line or its status page (a directory whose data directory was wiped has a new key)`,
        { cause: err },
      );
    }
    this.keyChecked = true;
  }

  /** Publishes a fresh descriptor now (a new onion key), rather than at the next refresh. */
  refreshNow(): void {
    this.registerAll()
      .then((failures) => {
        for (const f of failures) {
          this.log.warn(
            { err: (f.err as Error).message },
            this.single
              ? 'refreshing the directory record failed'
              : `refreshing the record at ${this.name(f.target)} failed`,
          );
        }
      })
      .catch((err) =>
        this.log.warn({ err: (err as Error).message }, 'refreshing the directory record failed'),
      );
  }

  /** Stops refreshing and withdraws the descriptor (a failure is only logged: the TTL expires it). */
  async withdraw(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    const id = this.source.identity.id.toString('hex');
    const env = signWithdraw(this.source.identity, { id, published: Date.now() });
    await Promise.all(
      this.targets.map(async (t) => {
        try {
          await t.client.withdraw(env);
        } catch (err) {
          this.log.debug({ err: (err as Error).message }, `withdrawing from ${this.name(t)} failed`);
        }
      }),
    );
  }
}
