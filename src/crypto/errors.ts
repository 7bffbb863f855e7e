// Implements docs/protocol.md §1.2 and §3.1 (failure codes of the link and circuit handshakes).
import { AlliumError } from '../errors.js';

/** Stable codes of crypto failures; callers map them to DESTROY reasons or closed links. */
export const CryptoErrorCode = {
  /** ntor AUTH did not verify, or a shared secret was all zeros (§3.1). */
  HANDSHAKE_AUTH: 'ALLIUM_HANDSHAKE_AUTH',
  /** A handshake message had the wrong length, named another relay or key, or held a bad point. */
  HANDSHAKE_MALFORMED: 'ALLIUM_HANDSHAKE_MALFORMED',
  /** A Noise message or transport frame failed AES-GCM authentication (§1.2, §1.3). */
  NOISE_DECRYPT: 'ALLIUM_NOISE_DECRYPT',
  /** A Noise object was used out of turn (wrong step, not complete, already failed, nonce spent). */
  NOISE_STATE: 'ALLIUM_NOISE_STATE',
  /** A link certificate is malformed, badly signed, or names another relay (§1.1, §1.2). */
  LINK_IDENTITY: 'ALLIUM_LINK_IDENTITY',
  /** A link certificate's expiry has passed (§1.1): the relay did not rotate its link key in time. */
  LINK_CERT_EXPIRED: 'ALLIUM_LINK_CERT_EXPIRED',
  /** A caller passed bytes of the wrong size (a programming error, not a peer's). */
  ARGUMENT: 'ALLIUM_CRYPTO_ARGUMENT',
} as const;
export type CryptoErrorCode = (typeof CryptoErrorCode)[keyof typeof CryptoErrorCode];

export class CryptoError extends AlliumError {
  declare readonly code: CryptoErrorCode;
  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Throws ARGUMENT unless `bytes` is exactly `len` long: for sizes our own code must get right. */
export function expectLength(bytes: Uint8Array, len: number, what: string): void {
  if (bytes.length !== len) {
    throw new CryptoError(CryptoErrorCode.ARGUMENT, `${what} must be ${len} bytes, got ${bytes.length}`);
  }
}
