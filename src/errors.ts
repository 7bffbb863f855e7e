/**
 * The base of every error Allium raises on purpose. `code` is stable (tests and callers match on
 * it); `message` says what happened and, where it can, what to do about it.
 */
export class AlliumError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
