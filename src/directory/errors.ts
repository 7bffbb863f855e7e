// Implements docs/directory-api.md (error bodies) for docs/protocol.md §6.4: errors the directory reports.
import { type AlliumCode, AlliumError } from '../errors.js';

/**
 * A request the directory refuses, or a state it cannot start from. `status` is the HTTP status a
 * request error is answered with; startup errors (store, key) carry 0 and stop the process instead.
 */
export class DirectoryError extends AlliumError {
  readonly status: number;
  constructor(code: AlliumCode, status: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: AlliumCode; message: string };
}

export function errorBody(code: AlliumCode, message: string): ErrorBody {
  return { error: { code, message } };
}
