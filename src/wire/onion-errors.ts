// Implements docs/protocol.md §8 (the one error type of onion service addresses, descriptors and
// introductions, shared by wire, crypto and core so a caller matches one class).
import { AlliumError } from '../errors.js';

export type OnionErrorCode =
  | 'ALLIUM_ONION_ADDRESS'
  | 'ALLIUM_ONION_ADDRESS_CHECKSUM'
  | 'ALLIUM_ONION_ADDRESS_VERSION'
  | 'ALLIUM_ONION_ADDRESS_KEY'
  | 'ALLIUM_ONION_DESCRIPTOR_SIGNATURE'
  | 'ALLIUM_ONION_DESCRIPTOR_KEY'
  | 'ALLIUM_ONION_DESCRIPTOR_EXPIRED'
  | 'ALLIUM_ONION_DESCRIPTOR_DECRYPT'
  | 'ALLIUM_ONION_ESTABLISH_INTRO_AUTH'
  | 'ALLIUM_ONION_INTRODUCE_AUTH'
  | 'ALLIUM_ONION_INTRODUCE_REPLAY'
  | 'ALLIUM_ONION_INTRO_EXHAUSTED'
  | 'ALLIUM_ONION_RENDEZVOUS_AUTH';

/**
 * A refused onion address, descriptor or introduction. Bytes that do not parse at all are a
 * WireError instead (as for every other message); this says what was wrong with bytes that did.
 */
export class OnionError extends AlliumError {
  declare readonly code: OnionErrorCode;
  constructor(code: OnionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
