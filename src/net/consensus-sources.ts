// Implements docs/directory-api.md "Caches" (protocol.md §6.11) on the fetching side: ask a few
// caches first, then the authorities (or the directory), each in random order, until one serves a
// consensus that passes the checks. A cache cannot alter what it serves (the signatures would fail),
// only refuse or lag, and then the next source is asked.
import type { ConsensusTrust, TrustedConsensus } from '../core/consensus-trust.js';
import { describeTrust, trustUrls } from '../core/consensus-trust.js';
import type { OpenConsensusOptions } from '../core/documents.js';
import { randomFraction } from '../crypto/random.js';
import { type AlliumCode, AlliumError, ErrorCode } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { DirectoryClient } from './directory-client.js';

/** Caches asked per fetch before the authorities: enough to ride out a bad one, few enough to stay quick. */
export const DEFAULT_CACHES_PER_FETCH = 3;

/** Every source failed; the code is that of the most telling failure (a refusal before an outage). */
export class ConsensusSourcesError extends AlliumError {}

const REFUSALS: ReadonlySet<string> = new Set([
  ErrorCode.CONSENSUS_SIGNATURE,
  ErrorCode.CONSENSUS_EXPIRED,
  ErrorCode.CONSENSUS_ROLLBACK,
  ErrorCode.CONSENSUS_INVALID,
]);

const OUTAGES: ReadonlySet<string> = new Set([ErrorCode.DIRECTORY_UNREACHABLE, ErrorCode.DIRECTORY_TIMEOUT]);

export interface ConsensusSourcesOptions {
  trust: ConsensusTrust;
  /** Cache URLs known now (from the consensus held, and any configured); asked first. */
  caches?: () => string[];
  cachesPerFetch?: number;
  timeoutMs?: number;
  logger?: Logger;
  random?: () => number;
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export class ConsensusSources {
  /** The URLs of the directory or the authorities. */
  readonly url: string;
  /** Names them in messages: "the directory at URL", or the authorities. */
  readonly description: string;
  private readonly o: ConsensusSourcesOptions;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly clients = new Map<string, DirectoryClient>();
  /** Where the last consensus came from (status, tests). */
  lastSource: string | null = null;

  constructor(opts: ConsensusSourcesOptions) {
    this.o = opts;
    this.random = opts.random ?? randomFraction;
    this.log = opts.logger ?? silentLogger;
    this.url = trustUrls(opts.trust).join(', ');
    this.description = describeTrust(opts.trust);
  }

  /** The order of one fetch: a few caches, then every authority (or the directory). */
  order(): { url: string; cache: boolean }[] {
    const authorities = trustUrls(this.o.trust).map((u) => u.replace(/\/+$/, ''));
    const caches = [...new Set((this.o.caches?.() ?? []).map((u) => u.replace(/\/+$/, '')))].filter(
      (u) => !authorities.includes(u),
    );
    return [
      ...shuffled(caches, this.random)
        .slice(0, this.o.cachesPerFetch ?? DEFAULT_CACHES_PER_FETCH)
        .map((url) => ({ url, cache: true })),
      ...shuffled(authorities, this.random).map((url) => ({ url, cache: false })),
    ];
  }

  async fetchConsensus(opts: OpenConsensusOptions): Promise<TrustedConsensus> {
    const failures: { url: string; cache: boolean; err: AlliumError | Error }[] = [];
    const order = this.order();
    for (const [i, source] of order.entries()) {
      try {
        const got = await this.client(source.url).fetchConsensus(opts);
        this.lastSource = source.url;
        if (failures.length > 0) {
          this.log.debug({ from: source.url, failed: failures.length }, 'consensus fetched after failures');
        }
        return got;
      } catch (err) {
        failures.push({ ...source, err: err as Error });
        const code = (err as AlliumError).code;
        // Said here only when another source follows; the caller reports the last failure. A source
        // behind the consensus held is refused as a rollback but is no fault worth a warning: a
        // cache fetches every few seconds, and an authority still serves the last period's consensus
        // until a majority signed the next one.
        if (code === ErrorCode.CONSENSUS_ROLLBACK && i < order.length - 1) {
          this.log.debug(
            { from: source.url, err: (err as Error).message },
            source.cache
              ? 'a cache lags: asking the next source'
              : 'an authority lags: asking the next source',
          );
        } else if (REFUSALS.has(code) && i < order.length - 1) {
          this.log.warn(
            { from: source.url, code, err: (err as Error).message },
            source.cache
              ? 'refused the consensus a cache served: asking the next source'
              : "refused an authority's consensus: asking the next source",
          );
        }
      }
    }
    // One source (a directory, no caches yet): its own error, as a single directory always gave.
    if (failures.length === 1) throw failures[0].err;
    // A refusal first; then a source that answered and said why it has none (an authority's 503
    // names the missing votes or signatures), before one that could not be reached.
    const telling =
      failures.find((f) => REFUSALS.has((f.err as AlliumError).code)) ??
      failures.find((f) => !OUTAGES.has((f.err as AlliumError).code)) ??
      failures[0];
    const code = ((telling?.err as AlliumError | undefined)?.code ??
      ErrorCode.DIRECTORY_UNREACHABLE) as AlliumCode;
    const others = failures
      .filter((f) => f !== telling)
      .map((f) => `${f.url}: ${f.err.message}`)
      .join('; ');
    const message = telling
      ? `${telling.err.message} [from ${telling.url}; also tried ${others}]`
      : `no source to fetch the consensus from (${this.description})`;
    throw new ConsensusSourcesError(code, message, { cause: telling?.err });
  }

  private client(url: string): DirectoryClient {
    let c = this.clients.get(url);
    if (!c) {
      c = new DirectoryClient({ url, trust: this.o.trust, timeoutMs: this.o.timeoutMs });
      this.clients.set(url, c);
      // Bounded: the sources of one set and the caches of a few consensuses.
      if (this.clients.size > 256) this.clients.delete(this.clients.keys().next().value as string);
    }
    return c;
  }
}
