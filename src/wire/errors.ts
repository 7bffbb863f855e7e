// Implements docs/protocol.md §1.3, §2, §4 (the one error type every wire decoder may throw).
import { AlliumError } from '../errors.js';

export type WireErrorCode = 'ALLIUM_WIRE_MALFORMED' | 'ALLIUM_WIRE_TOO_LARGE';

/**
 * Bytes that do not parse (MALFORMED) or a value that does not fit its field (TOO_LARGE). Decoders
 * throw nothing else, so a caller can turn any WireError into DESTROY(PROTOCOL) or a closed link.
 */
export class WireError extends AlliumError {
  declare readonly code: WireErrorCode;
  constructor(code: WireErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export function malformed(message: string): WireError {
  return new WireError('ALLIUM_WIRE_MALFORMED', message);
}

export function tooLarge(message: string): WireError {
  return new WireError('ALLIUM_WIRE_TOO_LARGE', message);
}
