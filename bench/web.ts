// Starts the bench's web server (web-server.ts) as a process of its own and waits for its port.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BenchError } from './errors.js';

/** Serves every file of `dir` on `host`; `onStop` receives the function that stops it. */
export function startWebServer(
  dir: string,
  host: string,
  onStop: (stop: () => Promise<void>) => void,
): Promise<{ url: string; pid: number }> {
  const script = fileURLToPath(new URL('./web-server.js', import.meta.url));
  const proc = spawn(process.execPath, [script, dir, host], { stdio: ['ignore', 'pipe', 'inherit'] });
  onStop(
    () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new BenchError('ALLIUM_BENCH_WEB', 'web server did not start')),
      10_000,
    );
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      out += d;
      const m = /ready port=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: `http://${host}:${m[1]}`, pid: proc.pid! });
      }
    });
    proc.once('exit', (c) => reject(new BenchError('ALLIUM_BENCH_WEB', `web server exited (${c})`)));
  });
}
