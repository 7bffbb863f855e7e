// Worker side of test/fuzz/run.ts: runs one named target and posts progress and the result.
import { parentPort, workerData } from 'node:worker_threads';
import { runTargetHere } from './run.js';
import type { FuzzTarget } from './targets.js';

const { name, numRuns, seed, module } = workerData as {
  name: string;
  numRuns: number;
  seed?: number;
  module: string;
};
const port = parentPort;
if (!port) throw new Error('test/fuzz/worker.js runs only as a worker thread');
const { TARGETS } = (await import(module)) as { TARGETS: FuzzTarget[] };
const target = TARGETS.find((t) => t.name === name);
if (!target) throw new Error(`no fuzz target named ${JSON.stringify(name)} in ${module}`);
const result = runTargetHere(target, numRuns, {
  seed,
  onProgress: (cases) => port.postMessage({ type: 'progress', cases }),
});
port.postMessage({ type: 'result', result });
