// Implements docs/protocol.md §6.1 and docs/directory-api.md at a relay: learn the public address,
// register a signed descriptor (waiting for a directory that is not up yet), refresh it, and
// withdraw it on a clean stop.
import { signDescriptor, signWithdraw } from '../core/documents.js';
import type { IdentityKey } from '../crypto/keys.js';
import { AlliumError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { DirectoryClient } from '../net/directory-client.js';
import { ALLIUM_VERSION } from '../version.js';

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
}

export class DirectoryRegistration {
  /** The advertised address, once known. */
  address = '';
  private refreshTimer: NodeJS.Timeout | null = null;
  /** Whether the directory has shown it signs with the configured key (checked once, before registering). */
  private keyChecked: boolean;

  constructor(
    private readonly directory: DirectoryClient,
    private readonly source: DescriptorSource,
    private readonly log: Logger,
    private readonly refreshMs: number,
    /** A directory key was configured: refuse a directory whose consensus it does not verify. */
    checkDirectoryKey = false,
  ) {
    this.keyChecked = !checkDirectoryKey;
  }

  /**
   * Registers, waiting for a directory that is not up yet (relays are often started before it, or
   * with it, by a service manager). A refusal by the directory is final: its reason needs the operator.
   */
  async registerFirst(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        await this.register();
        return;
      } catch (err) {
        const code = (err as AlliumError).code;
        const transient = code === ErrorCode.DIRECTORY_UNREACHABLE || code === ErrorCode.DIRECTORY_TIMEOUT;
        if (!transient || Date.now() + delay > deadline) throw err;
        this.log.warn(
          { code, retryInMs: delay },
          `the directory is not answering yet: ${(err as Error).message}`,
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async register(): Promise<void> {
    const s = this.source;
    if (!this.keyChecked) await this.checkDirectoryKey();
    if (!this.address) {
      this.address = s.address ?? (await this.directory.whoami());
      if (!s.address) this.log.info({ address: this.address }, 'learned public address from the directory');
    }
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
    });
    try {
      await this.directory.register(env);
    } catch (err) {
      // The operator reads the directory's own reason: "not reachable from the directory at A:P: <reason>".
      // Thrown, not logged: whoever catches it prints it once (the command's last line, or a warning).
      const e = err as { remoteCode?: string; remoteMessage?: string; message: string };
      if (e.remoteCode === ErrorCode.RELAY_UNREACHABLE && e.remoteMessage)
        throw new AlliumError(e.remoteCode, e.remoteMessage, { cause: err });
      throw err;
    }
    this.log.info({ address: this.address, port: s.port() }, 'registered with the directory');
    if (!this.refreshTimer) {
      this.refreshTimer = setInterval(() => {
        this.register().catch((err) =>
          this.log.warn({ err: err.message }, 'refreshing the directory record failed'),
        );
      }, this.refreshMs);
      this.refreshTimer.unref();
    }
  }

  /**
   * A relay told the wrong --directory-key would register with a directory its clients cannot trust
   * (or one that is not the operator's): as clients do, it refuses a consensus the key does not verify.
   */
  private async checkDirectoryKey(): Promise<void> {
    try {
      await this.directory.consensus();
    } catch (err) {
      const code = (err as AlliumError).code;
      if (code === ErrorCode.DIRECTORY_UNREACHABLE || code === ErrorCode.DIRECTORY_TIMEOUT) throw err;
      if (code !== ErrorCode.CONSENSUS_SIGNATURE) {
        // No consensus to check against (say, a directory that serves none yet): clients check it later.
        this.log.warn({ code }, `could not check the directory key: ${(err as Error).message}`);
        this.keyChecked = true;
        return;
      }
      throw new AlliumError(
        'ALLIUM_RELAY_DIRECTORY_KEY',
        `the directory at ${this.directory.url} does not sign with the --directory-key given: copy the key from the directory's \`ready ... key=\` line or its status page (a directory whose data directory was wiped has a new key)`,
        { cause: err },
      );
    }
    this.keyChecked = true;
  }

  /** Publishes a fresh descriptor now (a new onion key), rather than at the next refresh. */
  refreshNow(): void {
    this.register().catch((err) =>
      this.log.warn({ err: err.message }, 'publishing the new descriptor failed; the next refresh retries'),
    );
  }

  /** Stops refreshing and withdraws the descriptor (a failure is only logged: the TTL expires it). */
  async withdraw(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    const id = this.source.identity.id.toString('hex');
    try {
      await this.directory.withdraw(signWithdraw(this.source.identity, { id, published: Date.now() }));
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'withdrawing from the directory failed');
    }
  }
}
