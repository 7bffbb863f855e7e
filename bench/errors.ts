// Errors of the benchmark harness. They are not Allium's: the harness is not shipped, so its codes
// (ALLIUM_BENCH_*) stay out of the catalogue in src/error-codes.ts and out of docs/errors.md.
export class BenchError extends Error {
  readonly code: `ALLIUM_BENCH_${string}`;
  constructor(code: `ALLIUM_BENCH_${string}`, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BenchError';
    this.code = code;
  }
}
