// The client's own errors and its circuits' (the streams' are StreamError, core/stream-mux.ts).
import { type AlliumCode, AlliumError } from '../errors.js';
import { DestroyReason } from '../wire/constants.js';

export class ClientError extends AlliumError {}

/** A circuit failed or was destroyed; `destroyReason` is what the network or this end said. */
export class CircuitError extends AlliumError {
  constructor(
    code: AlliumCode,
    message: string,
    readonly destroyReason: number = DestroyReason.NONE,
  ) {
    super(code, message);
  }
}
