// Errors of the benchmark harness (issue 5).
import { AlliumError } from '../src/errors.js';

export class BenchError extends AlliumError {}
