// Implements docs/protocol.md §6.11 at a relay: fetch the consensus from the authorities (or the
// directory), keep the newest one that passes the clients' own checks, and serve it unchanged at
// GET /v1/consensus, so clients need not all ask the authorities.
import { ConsensusKeeper } from '../client/consensus-keeper.js';
import type { ConsensusTrust } from '../core/consensus-trust.js';
import type { Logger } from '../log.js';
import { ConsensusSources } from '../net/consensus-sources.js';
import { type LocalHttpServer, type LocalResponse, serveLocalHttp } from '../net/local-http-server.js';

export interface ConsensusCacheOptions {
  trust: ConsensusTrust;
  host: string;
  /** 0: any free port. */
  port: number;
  /** The relay's data directory: the last consensus is kept there across restarts. */
  dataDir?: string;
  logger: Logger;
  /** Fetch at least this often (default DEFAULT_CACHE_REFRESH_MS). */
  refreshMs?: number;
}

/** A cache trails the authorities by at most this: a few fetches a minute per cache. */
export const DEFAULT_CACHE_REFRESH_MS = 15_000;

function errorBody(status: number, code: string, message: string): LocalResponse {
  return {
    status,
    type: 'application/json; charset=utf-8',
    body: JSON.stringify({ error: { code, message } }),
  };
}

export class ConsensusCache {
  private constructor(
    private readonly keeper: ConsensusKeeper,
    private readonly http: LocalHttpServer,
  ) {}

  get port(): number {
    return this.http.port;
  }

  static async start(opts: ConsensusCacheOptions): Promise<ConsensusCache> {
    // A cache asks the authorities only: caches asking caches would pass staleness along.
    const sources = new ConsensusSources({ trust: opts.trust, logger: opts.logger });
    const keeper = new ConsensusKeeper({
      source: sources,
      trust: opts.trust,
      dataDir: opts.dataDir,
      logger: opts.logger,
      maxRefreshMs: opts.refreshMs ?? DEFAULT_CACHE_REFRESH_MS,
    });
    await keeper.load();
    let served: { json: string; serial: number } | null = null;
    const http = await serveLocalHttp({
      host: opts.host,
      port: opts.port,
      what: 'the consensus cache (--cache-port)',
      handle: (req) => {
        if (req.path !== '/v1/consensus' || (req.method !== 'GET' && req.method !== 'HEAD')) {
          return errorBody(404, 'ALLIUM_HTTP_NOT_FOUND', 'a cache serves GET /v1/consensus only');
        }
        const current = keeper.current;
        const doc = keeper.document;
        if (!current || !doc) {
          return errorBody(503, 'ALLIUM_CONSENSUS_UNAVAILABLE', 'this cache holds no valid consensus yet');
        }
        if (served?.serial !== current.serial) served = { json: JSON.stringify(doc), serial: current.serial };
        return {
          status: 200,
          type: 'application/json; charset=utf-8',
          body: served.json,
          headers: { 'cache-control': 'no-cache' },
        };
      },
    });
    keeper.start();
    return new ConsensusCache(keeper, http);
  }

  async stop(): Promise<void> {
    this.keeper.stop();
    await this.http.close();
  }
}
