// The client's own errors (the circuits' are CircuitError, the streams' StreamError).
import { AlliumError } from '../errors.js';

export class ClientError extends AlliumError {}
