// The node flags Allium's processes are meant to run with, and a check that they do.
import { spawn } from 'node:child_process';
/**
 * Node flags every Allium process runs with (the `allium` bin's shebang carries the same). A relay
 * keeps little on V8's heap but moves a great deal through short-lived Buffers. With V8's defaults
 * that made it start a full collection every few MB relayed: the old-generation limit sits a few MB
 * above the small live heap, V8 counts Buffer memory allocated since the last full collection
 * against it, and it starts marking early when the free room is smaller than the 16 MiB young
 * generation. A 1 MiB young generation and a floor under the old-generation limit stop that. The
 * floor is the lowest that costs no CPU: what sits under it at the peak is garbage
 * (docs/performance.md, "Runtime settings").
 */
export const RUNTIME_NODE_FLAGS = ['--max-semi-space-size=1', '--initial-old-space-size=24'];

/**
 * Environment for the same processes: two glibc malloc arenas instead of one per thread. Buffers
 * are allocated on the main thread and freed by V8's helper threads; with many arenas the freed
 * memory stays spread over them and the busiest relay's peak RSS grows (docs/performance.md).
 */
export const RUNTIME_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The runtime flags this process was started without (empty when node got them all). */
export function missingRuntimeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return RUNTIME_NODE_FLAGS.filter((f) => !execArgv.includes(f));
}

/** One line for the log of a relay or client started as `node main.js ...` without the flags. */
export function runtimeFlagsAdvice(
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  const missing = [
    ...Object.entries(RUNTIME_ENV)
      .filter(([k, v]) => env[k] !== v)
      .map(([k, v]) => `${k}=${v}`),
    ...missingRuntimeFlags(execArgv),
  ];
  if (missing.length === 0) return null;
  return `node was started without ${missing.join(' ')}: expect ~20-25% more CPU per byte relayed (run the allium bin, or give node these settings; see docs/performance.md)`;
}

/** Set in a relaunched process, so it never relaunches again (and a user can opt out with it). */
export const RELAUNCHED_ENV = 'ALLIUM_RUNTIME_FLAGS';

/**
 * Runs this same command again under node with the runtime flags and environment, when this process
 * lacks them (`node dist/src/cli/main.js relay ...`, a service file that names node): the flags belong
 * to the command, not to the user's shell. The child shares the terminal; this process forwards
 * SIGTERM/SIGHUP, ignores the terminal's SIGINT (the child gets its own), and exits as the child did.
 * Returns false when nothing needs doing (the caller then runs the command itself).
 */
export function relaunchWithRuntimeFlags(): boolean {
  if (process.env[RELAUNCHED_ENV] !== undefined) return false;
  if (runtimeFlagsAdvice() === null) return false;
  const args = [...RUNTIME_NODE_FLAGS, ...process.execArgv.filter((a) => !RUNTIME_NODE_FLAGS.includes(a))];
  const child = spawn(process.execPath, [...args, ...process.argv.slice(1)], {
    // The IPC channel closes when this process dies, even by SIGKILL: the child then stops too.
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...RUNTIME_ENV, [RELAUNCHED_ENV]: '1' },
  });
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  process.on('SIGTERM', forward('SIGTERM'));
  process.on('SIGHUP', forward('SIGHUP'));
  process.on('SIGINT', () => {});
  child.on('error', (err) => {
    console.error(`allium: cannot start node again with its runtime flags: ${err.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
  return true;
}

/** In a relaunched process: stop when the process that started it has gone (its IPC channel closed). */
export function followLauncher(): void {
  if (!process.channel || process.env[RELAUNCHED_ENV] === undefined) return;
  process.channel.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
