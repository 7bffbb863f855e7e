// Runs the fuzz targets of test/fuzz/targets.ts, each in a worker thread watched for hangs: a decoder
// stuck in a loop cannot be interrupted from its own thread, so the parent ends the worker instead.
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { type FuzzTarget, TARGETS, targetByName } from './targets.js';

export interface FuzzResult {
  name: string;
  /** Inputs the property ran on (shrinking included). */
  cases: number;
  ms: number;
  ok: boolean;
  /** Why it failed: the property's report (with counterexample and seed), or a hang. */
  failure?: string;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message.slice(0, 4000);
  return String(err);
}

/** Runs one target here, calling onProgress(cases) now and then. */
export function runTargetHere(
  target: FuzzTarget,
  numRuns: number,
  opts: { seed?: number; onProgress?: (cases: number) => void } = {},
): FuzzResult {
  const started = Date.now();
  let cases = 0;
  const property = fc.property(target.arbitrary(), (input) => {
    cases++;
    if (cases % 500 === 0) opts.onProgress?.(cases);
    target.check(input);
  });
  const details = fc.check(property, { numRuns, seed: opts.seed });
  const ms = Date.now() - started;
  if (!details.failed) return { name: target.name, cases, ms, ok: true };
  return {
    name: target.name,
    cases,
    ms,
    ok: false,
    failure: `${fc.defaultReportMessage(details) ?? `failed (seed ${details.seed})`}\n${errorText(details.errorInstance)}`,
  };
}

export interface RunOptions {
  numRuns: number;
  /** Workers at once (default 2). */
  concurrency?: number;
  /** A worker that reports no progress for this long is ended and its target reported as hung. */
  stallMs?: number;
  seed?: number;
  names?: string[];
  /** Module (URL) whose TARGETS the workers run: default ./targets.js. */
  targetsModule?: string;
  onResult?: (r: FuzzResult) => void;
}

function runInWorker(name: string, opts: RunOptions): Promise<FuzzResult> {
  const stallMs = opts.stallMs ?? 60_000;
  const started = Date.now();
  return new Promise((resolve) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: {
        name,
        numRuns: opts.numRuns,
        seed: opts.seed,
        module: opts.targetsModule ?? new URL('./targets.js', import.meta.url).href,
      },
    });
    let cases = 0;
    let done = false;
    const finish = (r: FuzzResult) => {
      if (done) return;
      done = true;
      clearInterval(watchdog);
      void worker.terminate();
      resolve(r);
    };
    let lastProgress = Date.now();
    const watchdog = setInterval(
      () => {
        if (Date.now() - lastProgress > stallMs) {
          finish({
            name,
            cases,
            ms: Date.now() - started,
            ok: false,
            failure: `hang: no progress for ${stallMs} ms after ${cases} cases (one input ran that long)`,
          });
        }
      },
      Math.min(1000, stallMs / 4),
    );
    worker.on(
      'message',
      (m: { type: 'progress'; cases: number } | { type: 'result'; result: FuzzResult }) => {
        lastProgress = Date.now();
        if (m.type === 'progress') cases = m.cases;
        else finish(m.result);
      },
    );
    worker.on('error', (err) =>
      finish({
        name,
        cases,
        ms: Date.now() - started,
        ok: false,
        failure: `worker crashed: ${err.stack ?? err}`,
      }),
    );
    worker.on('exit', (code) =>
      finish({
        name,
        cases,
        ms: Date.now() - started,
        ok: false,
        failure: `worker exited (${code}) without a result`,
      }),
    );
  });
}

/** Runs every target (or `names`) in workers, `concurrency` at a time. */
export async function runTargets(opts: RunOptions): Promise<FuzzResult[]> {
  const names = opts.names ?? TARGETS.map((t) => t.name);
  if (opts.names && !opts.targetsModule) for (const n of opts.names) targetByName(n);
  const results: FuzzResult[] = new Array(names.length);
  let next = 0;
  const lane = async () => {
    while (next < names.length) {
      const i = next++;
      results[i] = await runInWorker(names[i], opts);
      opts.onResult?.(results[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, lane));
  return results;
}

export { TARGETS };
