// Implements docs/protocol.md §1.1-§1.2 (link handshake): Noise XX with the link protocol version in
// message 1 and link certificates in messages 2 and 3, as a no-I/O step machine. The socket code
// that drives it (net/link.ts) only moves bytes and runs the timer.
import { type IdentityKey, X25519Key } from '../crypto/keys.js';
import { linkCertExpiry, makeLinkCert, verifyLinkCert } from '../crypto/link-cert.js';
import { type NoiseCipher, NoiseHandshake } from '../crypto/noise.js';
import { AlliumError } from '../errors.js';
import { encodeFrameLength, FrameDecoder } from '../wire/frame-decoder.js';

export class LinkError extends AlliumError {}

const PROLOGUE = Buffer.from('allium-link-v2');
/**
 * The link protocol this release speaks (§1.2), sent as message 1's payload: 2 since release 0.5.0,
 * whose cells older releases cannot read. Releases before it sent an empty payload (protocol 1).
 */
export const LINK_PROTOCOL_VERSION = 2;
const LINK_VERSION_PAYLOAD = Buffer.from([0, LINK_PROTOCOL_VERSION]);
/** Message 1 of a release before 0.5.0: the bare 32-byte key. */
const OLD_FIRST_MESSAGE_LEN = 32;
/** Noise XX message 1 is `e`, a 32-byte X25519 public key, and the 2-byte link protocol version. */
const FIRST_MESSAGE_LEN = 32 + LINK_VERSION_PAYLOAD.length;
export const LINK_HANDSHAKE_TIMEOUT_MS = 10_000;

const versionRefusal = (theirs: string) =>
  `the peer speaks link protocol ${theirs} and this node ${LINK_PROTOCOL_VERSION} (release 0.5.0 and later): ` +
  'the older side must upgrade';

/** What a link needs to know about its own side. */
export interface LinkIdentity {
  /** The relay's identity, or null for an anonymous client (a fresh link key per link). */
  identity: IdentityKey | null;
  /** The relay's link key (ignored for clients, who use a fresh one each time). */
  linkKey?: X25519Key;
  /** Cached link certificate for linkKey. */
  linkCert?: Buffer;
}

/** What a finished handshake hands the link. */
export interface LinkHandshakeResult {
  send: NoiseCipher;
  recv: NoiseCipher;
  /** The secret both ends share and nobody else knows (§1.2): a link-bound first hop's keys (§3.6). */
  linkSecret: Buffer;
  /** The relay id the peer proved, or null: a client. */
  peerRelayId: Buffer | null;
  /** The Noise static key the peer proved. */
  peerStaticKey: Buffer;
  /** When the first of the two certificates expires (ms since the epoch; never for two clients). */
  expiresAt: number;
  /** Holds the partial frame that followed the handshake, if any: the link reads on with it. */
  decoder: FrameDecoder;
  /** Whole frames that arrived right behind the handshake's last message, in order. */
  rest: Buffer[];
}

export type LinkHandshakeStep =
  /** Wait for more bytes. */
  | { kind: 'need-more' }
  /** Send `bytes` (one framed handshake message), then wait for more. */
  | { kind: 'send'; bytes: Buffer }
  /** The handshake is over: send `bytes` if not null, then run the link with `result`. */
  | { kind: 'done'; bytes: Buffer | null; result: LinkHandshakeResult }
  /** Close the connection: the handshake failed. */
  | { kind: 'fail'; error: AlliumError };

export interface LinkHandshakeOptions {
  initiator: boolean;
  me: LinkIdentity;
  /** The relay id the responder must prove (initiator only; null takes any relay). */
  expectedRelayId: Buffer | null;
  /** When the handshake began (ms), and how long it may take. */
  now: number;
  timeoutMs?: number;
}

const NEED_MORE: LinkHandshakeStep = { kind: 'need-more' };

/**
 * One side of one link handshake. The initiator calls start() and sends what it returns; both sides
 * feed every received chunk to receive(), and tick() when the deadline passes. After 'done' or
 * 'fail' the machine takes no more input.
 */
export class LinkHandshake {
  readonly initiator: boolean;
  /** When the handshake must be over (ms, the clock of `now`). */
  readonly deadline: number;
  private readonly hs: NoiseHandshake;
  private readonly cert: Buffer;
  private readonly decoder = new FrameDecoder();
  private readonly expectedRelayId: Buffer | null;
  private readonly timeoutMs: number;
  /** Handshake messages read so far. */
  private read = 0;
  private started = false;
  private over = false;
  private expiresAt: number;

  constructor(opts: LinkHandshakeOptions) {
    this.initiator = opts.initiator;
    this.expectedRelayId = opts.expectedRelayId;
    this.timeoutMs = opts.timeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS;
    this.deadline = opts.now + this.timeoutMs;
    const me = opts.me;
    const key = me.identity && me.linkKey ? me.linkKey : X25519Key.generate();
    this.cert = me.identity ? (me.linkCert ?? makeLinkCert(me.identity, key.publicKey)) : Buffer.alloc(0);
    // A relay's link lives no longer than its own certificate; the peer's may end it sooner.
    this.expiresAt = me.identity ? linkCertExpiry(this.cert) : Number.POSITIVE_INFINITY;
    this.hs = new NoiseHandshake({ initiator: opts.initiator, staticKey: key, prologue: PROLOGUE });
  }

  /** The initiator's message 1 (the responder has nothing to say first). */
  start(): LinkHandshakeStep {
    if (this.started || this.over) {
      return this.fail(new LinkError('ALLIUM_LINK_HANDSHAKE', 'start() called twice'));
    }
    this.started = true;
    return this.initiator ? { kind: 'send', bytes: this.message(LINK_VERSION_PAYLOAD) } : NEED_MORE;
  }

  /** Bytes from the peer, however the stream was cut. */
  receive(chunk: Buffer, now: number): LinkHandshakeStep {
    if (this.over) {
      return this.fail(new LinkError('ALLIUM_LINK_HANDSHAKE', 'bytes fed to a finished link handshake'));
    }
    // The first message of XX is one public key and the version: anything else is not an Allium
    // peer of this link protocol, so stop now rather than wait for a 64 KiB "frame" that will never come.
    if (
      !this.initiator &&
      this.read === 0 &&
      this.decoder.buffered === 0 &&
      chunk.length >= 2 &&
      chunk.readUInt16BE(0) !== FIRST_MESSAGE_LEN
    ) {
      return this.fail(
        chunk.readUInt16BE(0) === OLD_FIRST_MESSAGE_LEN
          ? new LinkError('ALLIUM_LINK_VERSION', versionRefusal('1 (a release before 0.5.0)'))
          : new LinkError('ALLIUM_LINK_HANDSHAKE', 'the peer does not speak the Allium link protocol'),
      );
    }
    try {
      const frames = this.decoder.push(chunk);
      let reply: Buffer | null = null;
      for (let i = 0; i < frames.length; i++) {
        const payload = this.hs.readMessage(frames[i]);
        this.read++;
        if (this.initiator) {
          // Message 2: the responder's certificate, which must prove the relay we meant.
          const peer = this.checkResponderCert(payload, now);
          return this.done(this.message(this.cert), peer, frames.slice(i + 1));
        }
        if (this.read === 1) {
          // The first message's payload is the link protocol version (authenticated by the
          // transcript hash once the handshake completes).
          if (!payload.equals(LINK_VERSION_PAYLOAD)) {
            const theirs = payload.length === 2 ? String(payload.readUInt16BE(0)) : 'unknown';
            throw new LinkError('ALLIUM_LINK_VERSION', versionRefusal(theirs));
          }
          reply = this.message(this.cert);
        } else {
          // Message 3: a relay's certificate, or nothing from an anonymous client.
          const peer = payload.length === 0 ? null : verifyLinkCert(payload, this.hs.remoteStatic!, now);
          if (peer) this.expiresAt = Math.min(this.expiresAt, linkCertExpiry(payload));
          return this.done(reply, peer, frames.slice(i + 1));
        }
      }
      return reply ? { kind: 'send', bytes: reply } : NEED_MORE;
    } catch (err) {
      return this.fail(
        err instanceof AlliumError ? err : new LinkError('ALLIUM_LINK_HANDSHAKE', String(err)),
      );
    }
  }

  /** The clock: past the deadline the handshake fails. */
  tick(now: number): LinkHandshakeStep {
    if (this.over || now < this.deadline) return NEED_MORE;
    return this.fail(
      new LinkError('ALLIUM_LINK_TIMEOUT', `link handshake not finished within ${this.timeoutMs} ms`),
    );
  }

  /** The peer closed the connection before the handshake was over: why, in words. */
  peerClosed(): LinkError {
    this.over = true;
    return new LinkError(
      'ALLIUM_LINK_CLOSED',
      this.initiator && this.read === 0
        ? 'peer closed the link at our first handshake message: it may run a release before 0.5.0, ' +
            `whose link protocol (1) this node does not speak (${LINK_PROTOCOL_VERSION})`
        : 'peer closed the link during the handshake',
    );
  }

  private checkResponderCert(payload: Buffer, now: number): Buffer {
    const id = verifyLinkCert(payload, this.hs.remoteStatic!, now);
    this.expiresAt = Math.min(this.expiresAt, linkCertExpiry(payload));
    if (this.expectedRelayId && !id.equals(this.expectedRelayId)) {
      throw new LinkError(
        'ALLIUM_LINK_IDENTITY',
        `reached a relay with id ${id.toString('hex')} instead of ${this.expectedRelayId.toString('hex')}`,
      );
    }
    return id;
  }

  /** One handshake message with its frame length. */
  private message(payload: Buffer): Buffer {
    const m = this.hs.writeMessage(payload);
    return Buffer.concat([encodeFrameLength(m.length), m]);
  }

  private done(bytes: Buffer | null, peerRelayId: Buffer | null, rest: Buffer[]): LinkHandshakeStep {
    this.over = true;
    const { send, recv, linkSecret } = this.hs.split();
    return {
      kind: 'done',
      bytes,
      result: {
        send,
        recv,
        linkSecret,
        peerRelayId,
        peerStaticKey: Buffer.from(this.hs.remoteStatic!),
        expiresAt: this.expiresAt,
        decoder: this.decoder,
        rest,
      },
    };
  }

  private fail(error: AlliumError): LinkHandshakeStep {
    this.over = true;
    return { kind: 'fail', error };
  }
}
