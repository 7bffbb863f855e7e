// Implements docs/protocol.md §8 (the service role's own errors: its key, its target, getting ready).
import { AlliumError } from '../errors.js';

export class ServiceError extends AlliumError {}
