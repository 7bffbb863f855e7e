import type { AlliumCode } from './error-codes.js';

export { type AlliumCode, ErrorCode, isAlliumCode } from './error-codes.js';

/**
 * The base of every error Allium raises on purpose. `code` is stable (tests and callers match on
 * it) and one of the catalogue in error-codes.ts; `message` says what happened and, where it can,
 * what to do about it.
 */
export class AlliumError extends Error {
  readonly code: AlliumCode;
  constructor(code: AlliumCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
