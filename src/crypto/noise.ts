// Implements docs/protocol.md §1.2 (Noise_XX_25519_AESGCM_SHA256 link handshake, Noise revision 34)
// and §1.3 (transport cipher states).
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { MAX_FRAME_LEN } from '../wire/constants.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import { X25519Key } from './keys.js';

export const NOISE_PROTOCOL_NAME = 'Noise_XX_25519_AESGCM_SHA256';
const DHLEN = 32;
const HASHLEN = 32;
const TAGLEN = 16;
const EMPTY = Buffer.alloc(0);
// Noise reserves 2^64-1; we stop at 2^53 so the counter stays an exact JS number. Unreachable in practice.
const MAX_NONCE = Number.MAX_SAFE_INTEGER;

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Noise HKDF (§4.3 of the Noise spec): two outputs, or three (Split()'s third is the link secret). */
function hkdf(ck: Buffer, ikm: Buffer, outputs: 2 | 3): Buffer[] {
  const temp = hmac(ck, ikm);
  const out = [hmac(temp, Buffer.from([1]))];
  for (let i = 2; i <= outputs; i++) out.push(hmac(temp, out[i - 2], Buffer.from([i])));
  return out;
}

function nonceBytes(n: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(Math.floor(n / 2 ** 32), 4);
  iv.writeUInt32BE(n % 2 ** 32, 8);
  return iv;
}

/**
 * A Noise CipherState with a key: AES-256-GCM, nonce = 4 zero bytes | u64 BE counter. After the
 * handshake each side has one to send and one to receive link frames (ad = "").
 */
export class NoiseCipher {
  private readonly k: Buffer;
  private n = 0;

  constructor(key: Buffer) {
    expectLength(key, 32, 'a Noise cipher key');
    this.k = Buffer.from(key);
  }

  /** The nonce the next encrypt or decrypt will use. */
  get nonce(): number {
    return this.n;
  }

  /** Returns ciphertext | 16-byte tag and advances the nonce. */
  encrypt(plaintext: Buffer, ad: Buffer = EMPTY): Buffer {
    return Buffer.concat(this.encryptParts(plaintext, ad));
  }

  /** Like encrypt(), as [ciphertext, tag] without joining them: a writer can send both in one writev. */
  encryptParts(plaintext: Buffer, ad: Buffer = EMPTY): [Buffer, Buffer] {
    this.checkNonce();
    const c = createCipheriv('aes-256-gcm', this.k, nonceBytes(this.n));
    if (ad.length > 0) c.setAAD(ad);
    const body = c.update(plaintext);
    const rest = c.final(); // empty for GCM; kept for correctness
    this.n++;
    return [rest.length === 0 ? body : Buffer.concat([body, rest]), c.getAuthTag()];
  }

  /** Returns the plaintext and advances the nonce; NOISE_DECRYPT (nonce unchanged) on a bad tag. */
  decrypt(ciphertext: Buffer, ad: Buffer = EMPTY): Buffer {
    this.checkNonce();
    if (ciphertext.length < TAGLEN) {
      throw new CryptoError(
        CryptoErrorCode.NOISE_DECRYPT,
        `a Noise ciphertext is at least ${TAGLEN} bytes (the tag), got ${ciphertext.length}`,
      );
    }
    const split = ciphertext.length - TAGLEN;
    let out: Buffer;
    try {
      const d = createDecipheriv('aes-256-gcm', this.k, nonceBytes(this.n));
      if (ad.length > 0) d.setAAD(ad);
      d.setAuthTag(ciphertext.subarray(split));
      const body = d.update(ciphertext.subarray(0, split));
      const rest = d.final(); // empty for GCM: no need to copy the body again
      out = rest.length === 0 ? body : Buffer.concat([body, rest]);
    } catch (err) {
      throw new CryptoError(
        CryptoErrorCode.NOISE_DECRYPT,
        'a Noise message failed authentication (corrupted, forged or out of order): close the link',
        { cause: err },
      );
    }
    this.n++;
    return out;
  }

  private checkNonce(): void {
    if (this.n >= MAX_NONCE) {
      throw new CryptoError(CryptoErrorCode.NOISE_STATE, 'Noise nonce exhausted: open a new link');
    }
  }
}

/** Noise SymmetricState (§5.2 of the Noise spec). */
class SymmetricState {
  ck: Buffer;
  h: Buffer;
  cipher: NoiseCipher | null = null;

  constructor(protocolName: string) {
    const name = Buffer.from(protocolName, 'ascii');
    this.h =
      name.length <= HASHLEN ? Buffer.concat([name, Buffer.alloc(HASHLEN - name.length)]) : sha256(name);
    this.ck = Buffer.from(this.h);
  }
  mixKey(ikm: Buffer): void {
    const [ck, tempK] = hkdf(this.ck, ikm, 2);
    this.ck = ck;
    this.cipher = new NoiseCipher(tempK);
  }
  mixHash(data: Buffer): void {
    this.h = sha256(this.h, data);
  }
  encryptAndHash(plaintext: Buffer): Buffer {
    const out = this.cipher ? this.cipher.encrypt(plaintext, this.h) : Buffer.from(plaintext);
    this.mixHash(out);
    return out;
  }
  decryptAndHash(ciphertext: Buffer): Buffer {
    const out = this.cipher ? this.cipher.decrypt(ciphertext, this.h) : Buffer.from(ciphertext);
    this.mixHash(ciphertext);
    return out;
  }
  /** Split(), with the third HKDF output as the link secret (§1.2): k1 and k2 are Noise's own. */
  split(): [NoiseCipher, NoiseCipher, Buffer] {
    const [k1, k2, k3] = hkdf(this.ck, EMPTY, 3);
    return [new NoiseCipher(k1), new NoiseCipher(k2), k3];
  }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se';
// XX:  -> e   <- e, ee, s, es   -> s, se
const XX: readonly (readonly Token[])[] = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']];

export interface NoiseHandshakeOptions {
  initiator: boolean;
  staticKey: X25519Key;
  prologue: Buffer;
  /** A fixed ephemeral key, for test vectors only: a real handshake must make a fresh one. */
  ephemeral?: X25519Key;
}

/**
 * The XX handshake of one link. Call writeMessage/readMessage in turn (the initiator writes
 * first), then split(). Any failure poisons the object: later calls throw NOISE_STATE.
 */
export class NoiseHandshake {
  private readonly initiator: boolean;
  private readonly s: X25519Key;
  private e: X25519Key | null;
  private rs: Buffer | null = null;
  private re: Buffer | null = null;
  private readonly ss: SymmetricState;
  private step = 0;
  private failed = false;
  private splitDone = false;

  constructor(opts: NoiseHandshakeOptions) {
    this.initiator = opts.initiator;
    this.s = opts.staticKey;
    this.e = opts.ephemeral ?? null;
    this.ss = new SymmetricState(NOISE_PROTOCOL_NAME);
    this.ss.mixHash(opts.prologue);
  }

  get complete(): boolean {
    return this.step === XX.length;
  }

  /** The peer's static public key once its `s` token has been read, else null. */
  get remoteStatic(): Buffer | null {
    return this.rs ? Buffer.from(this.rs) : null;
  }

  /** The transcript hash h: the same on both sides once complete (channel binding). */
  get handshakeHash(): Buffer {
    return Buffer.from(this.ss.h);
  }

  /** The next handshake message carrying `payload` (no length prefix). */
  writeMessage(payload: Buffer): Buffer {
    this.checkTurn(true);
    try {
      const parts: Buffer[] = [];
      for (const token of XX[this.step]) {
        switch (token) {
          case 'e': {
            this.e ??= X25519Key.generate();
            parts.push(Buffer.from(this.e.publicKey));
            this.ss.mixHash(this.e.publicKey);
            break;
          }
          case 's':
            parts.push(this.ss.encryptAndHash(this.s.publicKey));
            break;
          default:
            this.mixDh(token);
        }
      }
      parts.push(this.ss.encryptAndHash(payload));
      const message = Buffer.concat(parts);
      if (message.length > MAX_FRAME_LEN) {
        throw new CryptoError(
          CryptoErrorCode.NOISE_STATE,
          `a Noise handshake message is at most ${MAX_FRAME_LEN} bytes; this payload makes ${message.length}`,
        );
      }
      this.step++;
      return message;
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  /** Processes the peer's next handshake message and returns its decrypted payload. */
  readMessage(message: Buffer): Buffer {
    this.checkTurn(false);
    try {
      if (message.length > MAX_FRAME_LEN) {
        throw new CryptoError(
          CryptoErrorCode.HANDSHAKE_MALFORMED,
          `a Noise message over ${MAX_FRAME_LEN} bytes`,
        );
      }
      let off = 0;
      const take = (n: number, what: string): Buffer => {
        if (message.length - off < n) {
          throw new CryptoError(
            CryptoErrorCode.HANDSHAKE_MALFORMED,
            `Noise handshake message ${this.step + 1} is too short for ${what} (${message.length} bytes)`,
          );
        }
        const b = Buffer.from(message.subarray(off, off + n));
        off += n;
        return b;
      };
      for (const token of XX[this.step]) {
        switch (token) {
          case 'e':
            this.re = take(DHLEN, "the peer's ephemeral key");
            this.ss.mixHash(this.re);
            break;
          case 's':
            this.rs = this.ss.decryptAndHash(
              take(this.ss.cipher ? DHLEN + TAGLEN : DHLEN, "the peer's static key"),
            );
            break;
          default:
            this.mixDh(token);
        }
      }
      if (this.ss.cipher && message.length - off < TAGLEN) {
        throw new CryptoError(
          CryptoErrorCode.HANDSHAKE_MALFORMED,
          `Noise handshake message ${this.step + 1} is too short for its payload tag (${message.length} bytes)`,
        );
      }
      const payload = this.ss.decryptAndHash(Buffer.from(message.subarray(off)));
      this.step++;
      return payload;
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  /**
   * The transport ciphers (Noise Split()) and the link secret both sides share (§1.2: what a
   * link-bound first hop derives its keys from); once, after the last handshake message.
   */
  split(): { send: NoiseCipher; recv: NoiseCipher; linkSecret: Buffer } {
    if (this.failed || !this.complete || this.splitDone) {
      throw new CryptoError(
        CryptoErrorCode.NOISE_STATE,
        this.splitDone ? 'split() was already called' : 'split() before the Noise handshake completed',
      );
    }
    this.splitDone = true;
    const [c1, c2, linkSecret] = this.ss.split();
    // The ephemeral secret is no longer needed: dropping it is what gives forward secrecy.
    this.e = null;
    return this.initiator ? { send: c1, recv: c2, linkSecret } : { send: c2, recv: c1, linkSecret };
  }

  private checkTurn(writing: boolean): void {
    if (this.failed)
      throw new CryptoError(CryptoErrorCode.NOISE_STATE, 'this Noise handshake already failed');
    if (this.complete)
      throw new CryptoError(CryptoErrorCode.NOISE_STATE, 'the Noise handshake is already complete');
    const initiatorWrites = this.step % 2 === 0;
    if (writing !== (initiatorWrites === this.initiator)) {
      throw new CryptoError(
        CryptoErrorCode.NOISE_STATE,
        `Noise handshake message ${this.step + 1} is for the ${writing ? 'peer' : 'local side'} to write`,
      );
    }
  }

  private mixDh(token: 'ee' | 'es' | 'se'): void {
    // es: initiator's e with responder's s; se: initiator's s with responder's e.
    let mine: X25519Key | null;
    let theirs: Buffer | null;
    if (token === 'ee') {
      mine = this.e;
      theirs = this.re;
    } else if ((token === 'es') === this.initiator) {
      mine = this.e;
      theirs = this.rs;
    } else {
      mine = this.s;
      theirs = this.re;
    }
    if (!mine || !theirs)
      throw new CryptoError(CryptoErrorCode.NOISE_STATE, `Noise token ${token} out of order`);
    let shared: Buffer;
    try {
      shared = mine.dh(theirs);
    } catch (err) {
      throw new CryptoError(
        CryptoErrorCode.HANDSHAKE_MALFORMED,
        "the peer's Noise key is not a usable X25519 point",
        { cause: err },
      );
    }
    this.ss.mixKey(shared);
    shared.fill(0);
  }
}
