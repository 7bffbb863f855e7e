// Implements docs/protocol.md §6.4 and docs/directory-api.md (client side): talks to the directory over HTTP.
// Every response is size-capped and validated; a consensus is only returned once openConsensus accepts it.
import * as v from 'valibot';
import { type ConsensusTrust, openTrustedConsensus, type TrustedConsensus } from '../core/consensus-trust.js';
import { DocumentError, type OpenConsensusOptions } from '../core/documents.js';
import { relayIdOf } from '../crypto/keys.js';
import { type AlliumCode, AlliumError, ErrorCode } from '../errors.js';
import {
  type ConsensusView,
  isBase64OfLength,
  isIPAddress,
  MAX_CONSENSUS_BYTES,
  type SignedEnvelope,
} from '../wire/directory-docs.js';
import { type HttpAnswer, type HttpRequestError, httpRequest } from './http-request.js';

/**
 * The directory could not be asked, or answered badly. Codes: ALLIUM_DIRECTORY_UNREACHABLE,
 * ALLIUM_DIRECTORY_TIMEOUT, ALLIUM_DIRECTORY_REJECTED (a 4xx: `remoteCode` holds the directory's code),
 * ALLIUM_DIRECTORY_NOT_FOUND (404), ALLIUM_DIRECTORY_SERVER_ERROR (5xx), ALLIUM_DIRECTORY_BAD_RESPONSE,
 * ALLIUM_DIRECTORY_NO_KEY (consensus asked for without a configured directory key).
 */
export class DirectoryClientError extends AlliumError {
  readonly status: number | undefined;
  readonly remoteCode: string | undefined;
  /** The directory's own explanation (its error body's message), for operators' logs. */
  readonly remoteMessage: string | undefined;
  constructor(
    code: AlliumCode,
    message: string,
    opts: { status?: number; remoteCode?: string; remoteMessage?: string; cause?: unknown } = {},
  ) {
    super(code, message, { cause: opts.cause });
    this.status = opts.status;
    this.remoteCode = opts.remoteCode;
    this.remoteMessage = opts.remoteMessage;
  }
}

export interface RelayLookup {
  id: string;
  nickname: string;
  address: string;
  port: number;
  identityKey: string;
  onionKey: string;
}

export const DEFAULT_DIRECTORY_TIMEOUT_MS = 10_000;
/** Small answers (whoami, key, one relay, errors) never need more than this. */
const MAX_SMALL_RESPONSE = 64 * 1024;
/** The envelope JSON-escapes the consensus body, which grows its quotes; this bounds it generously. */
const MAX_CONSENSUS_RESPONSE = 2 * MAX_CONSENSUS_BYTES + 4096;

const hex64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const key32 = v.pipe(
  v.string(),
  v.check((s) => isBase64OfLength(s, 32)),
);
const errorSchema = v.object({
  error: v.object({
    code: v.pipe(v.string(), v.maxLength(100)),
    message: v.pipe(v.string(), v.maxLength(2000)),
  }),
});
const whoamiSchema = v.object({ address: v.pipe(v.string(), v.check(isIPAddress)) });
const keySchema = v.object({ publicKey: key32, id: hex64 });
const relaySchema = v.object({
  id: hex64,
  nickname: v.pipe(v.string(), v.maxLength(32)),
  address: v.pipe(v.string(), v.check(isIPAddress)),
  port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)),
  identityKey: key32,
  onionKey: key32,
});

const votesSchema = v.object({
  votes: v.pipe(v.array(v.unknown()), v.maxLength(64)),
  current: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
});
const signatureAnswerSchema = v.object({ digest: hex64, signature: v.unknown() });

export class DirectoryClient {
  readonly url: string;
  private readonly trust: ConsensusTrust | undefined;
  private readonly timeoutMs: number;

  /**
   * `trust` checks the consensus fetched from `url` (an authority, the directory or a cache);
   * `directoryKey` alone means the directory at `url` signs it.
   */
  constructor(opts: { url: string; directoryKey?: Buffer; trust?: ConsensusTrust; timeoutMs?: number }) {
    this.url = opts.url.replace(/\/+$/, '');
    this.trust =
      opts.trust ??
      (opts.directoryKey ? { kind: 'directory', url: this.url, key: opts.directoryKey } : undefined);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_DIRECTORY_TIMEOUT_MS;
  }

  /** The address the directory sees this host at. */
  async whoami(): Promise<string> {
    const json = await this.getJson('/v1/whoami', 'GET', undefined, MAX_SMALL_RESPONSE);
    return this.validate(whoamiSchema, json, '/v1/whoami').address;
  }

  /** Registers (or refreshes) a signed descriptor. A refusal is DirectoryClientError with the directory's reason. */
  async register(env: SignedEnvelope): Promise<void> {
    await this.getJson('/v1/relays', 'POST', env, MAX_SMALL_RESPONSE);
  }

  /** Withdraws this relay (a withdraw envelope signed by its identity key). */
  async withdraw(env: SignedEnvelope): Promise<void> {
    const id = withdrawIdOf(env);
    await this.getJson(`/v1/relays/${id}`, 'DELETE', env, MAX_SMALL_RESPONSE);
  }

  /** One relay's address and keys; ALLIUM_DIRECTORY_NOT_FOUND if it is not listed. */
  async relay(id: string): Promise<RelayLookup> {
    if (!/^[0-9a-f]{64}$/.test(id)) {
      throw new DirectoryClientError(
        'ALLIUM_DIRECTORY_REJECTED',
        `"${id.slice(0, 80)}" is not a relay id (64 hex digits)`,
      );
    }
    const json = await this.getJson(`/v1/relays/${id}`, 'GET', undefined, MAX_SMALL_RESPONSE);
    const r = this.validate(relaySchema, json, `/v1/relays/${id}`);
    if (r.id !== id || relayIdOf(Buffer.from(r.identityKey, 'base64')).toString('hex') !== id) {
      throw new DirectoryClientError(
        'ALLIUM_DIRECTORY_BAD_RESPONSE',
        `the directory answered for ${id} with another relay's keys`,
      );
    }
    return r;
  }

  /** Fetches and verifies the consensus (signatures, validity, rollback against opts.minSerial). */
  async consensus(opts: OpenConsensusOptions = {}): Promise<ConsensusView> {
    return (await this.fetchConsensus(opts)).consensus;
  }

  /** Like consensus(), and also returns the verified document so a caller can cache or serve it. */
  async fetchConsensus(opts: OpenConsensusOptions = {}): Promise<TrustedConsensus> {
    const trust = this.trust;
    if (!trust) {
      throw new DirectoryClientError(
        'ALLIUM_DIRECTORY_NO_KEY',
        'no directory public key is configured: a consensus cannot be verified without one',
      );
    }
    const text = await this.request('/v1/consensus', 'GET', undefined, MAX_CONSENSUS_RESPONSE);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new DocumentError('ALLIUM_CONSENSUS_INVALID', 'the directory sent a consensus that is not JSON', {
        cause: err,
      });
    }
    return openTrustedConsensus(json, trust, opts);
  }

  /** The consensus document as served, unverified (for `allium directory verify`, which checks it). */
  async consensusDocument(): Promise<unknown> {
    const text = await this.request('/v1/consensus', 'GET', undefined, MAX_CONSENSUS_RESPONSE);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new DocumentError('ALLIUM_CONSENSUS_INVALID', 'the directory sent a consensus that is not JSON', {
        cause: err,
      });
    }
  }

  /**
   * The votes an authority holds for the period starting at `validAfter` (its own and those it
   * fetched from others), unverified: the caller opens each with the authority set (§6.7).
   */
  async authorityVotes(
    validAfter: number,
    maxBytes: number,
  ): Promise<{ votes: unknown[]; current?: number }> {
    const path = `/v1/authority/votes/${validAfter}`;
    const json = await this.getJson(path, 'GET', undefined, maxBytes);
    return this.validate(votesSchema, json, path);
  }

  /** The authority's signature of the consensus it computed for `validAfter`, and that body's SHA-256. */
  async authoritySignature(validAfter: number): Promise<{ digest: string; signature: unknown }> {
    const path = `/v1/authority/signature/${validAfter}`;
    const json = await this.getJson(path, 'GET', undefined, MAX_SMALL_RESPONSE);
    return this.validate(signatureAnswerSchema, json, path);
  }

  /** The directory's public key (GET /v1/key). For operators: clients should be configured with it instead. */
  async publicKey(): Promise<Buffer> {
    const r = this.validate(
      keySchema,
      await this.getJson('/v1/key', 'GET', undefined, MAX_SMALL_RESPONSE),
      '/v1/key',
    );
    const pub = Buffer.from(r.publicKey, 'base64');
    if (relayIdOf(pub).toString('hex') !== r.id) {
      throw new DirectoryClientError(
        'ALLIUM_DIRECTORY_BAD_RESPONSE',
        '/v1/key: id is not SHA-256 of publicKey',
      );
    }
    return pub;
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private validate<const S extends v.GenericSchema>(
    schema: S,
    json: unknown,
    path: string,
  ): v.InferOutput<S> {
    const r = v.safeParse(schema, json);
    if (!r.success) {
      const field = r.issues[0]?.path?.map((p) => String(p.key)).join('.') || '(response)';
      throw new DirectoryClientError(
        'ALLIUM_DIRECTORY_BAD_RESPONSE',
        `${path}: malformed answer (field "${field}")`,
      );
    }
    return r.output;
  }

  private async getJson(path: string, method: string, body: unknown, maxBytes: number): Promise<unknown> {
    const text = await this.request(path, method, body, maxBytes);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new DirectoryClientError('ALLIUM_DIRECTORY_BAD_RESPONSE', `${path}: the answer is not JSON`, {
        cause: err,
      });
    }
  }

  /** One request; resolves to the body of a 2xx answer, throws a DirectoryClientError otherwise. */
  private async request(path: string, method: string, body: unknown, maxBytes: number): Promise<string> {
    const target = `${this.url}${path}`;
    let res: HttpAnswer;
    try {
      res = await httpRequest(target, {
        method,
        headers:
          body === undefined
            ? { accept: 'application/json' }
            : { 'content-type': 'application/json', accept: 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs: this.timeoutMs,
        maxBytes,
      });
    } catch (err) {
      throw this.transportError(err, method, target);
    }
    const text = res.body;
    const ok = res.status >= 200 && res.status < 300;
    if (ok) return text;
    let remoteCode: string | undefined;
    let remoteMessage = text.slice(0, 200);
    try {
      const e = v.parse(errorSchema, JSON.parse(text));
      remoteCode = e.error.code;
      remoteMessage = e.error.message;
    } catch {
      // not our error format: keep the raw start of the body
    }
    const what = `${method} ${target} -> ${res.status}${remoteCode ? ` ${remoteCode}` : ''}: ${remoteMessage}`;
    if (res.status === 404) {
      throw new DirectoryClientError(
        'ALLIUM_DIRECTORY_NOT_FOUND',
        `the directory has no such thing: ${what}`,
        { status: res.status, remoteCode, remoteMessage },
      );
    }
    if (res.status >= 400 && res.status < 500) {
      throw new DirectoryClientError(
        'ALLIUM_DIRECTORY_REJECTED',
        `the directory refused the request: ${what}`,
        { status: res.status, remoteCode, remoteMessage },
      );
    }
    throw new DirectoryClientError('ALLIUM_DIRECTORY_SERVER_ERROR', `the directory failed: ${what}`, {
      status: res.status,
      remoteCode,
    });
  }

  private transportError(err: unknown, method: string, target: string): DirectoryClientError {
    const e = err as HttpRequestError;
    if (e?.code === ErrorCode.HTTP_TIMEOUT) {
      return new DirectoryClientError(
        'ALLIUM_DIRECTORY_TIMEOUT',
        `${method} ${target}: no answer within ${this.timeoutMs} ms`,
        { cause: err },
      );
    }
    if (e?.code === ErrorCode.HTTP_TOO_LARGE) {
      return new DirectoryClientError('ALLIUM_DIRECTORY_BAD_RESPONSE', `the directory's ${e.message}`, {
        status: e.status,
        cause: err,
      });
    }
    const detail = e?.detail ?? (err as Error)?.message ?? String(err);
    return new DirectoryClientError(
      'ALLIUM_DIRECTORY_UNREACHABLE',
      `cannot reach the directory at ${this.url} (${method} ${target}: ${detail}): is it running, and is the URL right?`,
      { cause: err },
    );
  }
}

/** The relay id named inside a withdraw envelope, for the URL; the directory checks the signature. */
function withdrawIdOf(env: SignedEnvelope): string {
  let id: unknown;
  try {
    id = (JSON.parse(env.body) as { id?: unknown }).id;
  } catch {
    id = undefined;
  }
  if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) {
    throw new DirectoryClientError(
      'ALLIUM_DIRECTORY_REJECTED',
      'the withdraw envelope does not name a relay id',
    );
  }
  return id;
}
