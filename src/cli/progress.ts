// The progress bar of `allium fetch` (cli-progress): bytes, rate and time left on a terminal, nothing
// when stderr is piped (unless --progress forces it).
import { writeSync } from 'node:fs';
import { Transform } from 'node:stream';
import cliProgress from 'cli-progress';

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** Shows the cursor and turns line wrapping back on (what the bar turned off), if `out` is a terminal. */
export function restoreTerminal(out: NodeJS.WritableStream & { isTTY?: boolean; fd?: number }): void {
  if (!out.isTTY) return;
  const seq = '\x1b[?25h\x1b[?7h';
  // Synchronously where possible: this also runs from the 'exit' event, after which nothing is flushed.
  if (typeof out.fd === 'number') writeSync(out.fd, seq);
  else out.write(seq);
}

/** A pass-through stream that drives a progress bar; `total` is the Content-Length if known. */
export function progressStream(opts: {
  total: number | null;
  label: string;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** true: always; false: never; undefined: when the stream is a terminal. */
  force?: boolean;
}): Transform {
  const out = opts.stream ?? process.stderr;
  const show = opts.force ?? Boolean(out.isTTY);
  let done = 0;
  if (!show) return new Transform({ transform: (chunk, _e, cb) => cb(null, chunk) });
  const started = performance.now();
  const bar = new cliProgress.SingleBar(
    {
      stream: out,
      noTTYOutput: !out.isTTY,
      notTTYSchedule: 1000,
      fps: 8,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      format: (options, params) => {
        const rate = done / Math.max((performance.now() - started) / 1000, 0.001);
        const size = opts.total ? `${humanBytes(done)} / ${humanBytes(opts.total)}` : humanBytes(done);
        const left = !opts.total
          ? 'size unknown'
          : done > 0
            ? `${Math.max(0, Math.ceil((opts.total - done) / rate))} s left`
            : '';
        const barText = opts.total
          ? `${(options.barCompleteString ?? '').slice(0, Math.round(params.progress * (options.barsize ?? 30)))}${(options.barIncompleteString ?? '').slice(0, (options.barsize ?? 30) - Math.round(params.progress * (options.barsize ?? 30)))} ${Math.floor(params.progress * 100)}%`
          : '';
        return `${opts.label} ${barText} ${size}  ${humanBytes(rate)}/s  ${left}`.replace(/\s+/g, ' ').trim();
      },
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(opts.total ?? 0, 0);
  // The bar hides the cursor and turns line wrapping off: whatever ends the process (an error, a
  // signal handler's exit), the terminal gets both back.
  const restore = () => restoreTerminal(out);
  if (out.isTTY) process.once('exit', restore);
  const stop = () => {
    bar.stop();
    process.removeListener('exit', restore);
  };
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      done += chunk.length;
      bar.update(opts.total ? Math.min(done, opts.total) : 0);
      cb(null, chunk);
    },
    flush(cb) {
      bar.update(opts.total ?? 0);
      stop();
      cb();
    },
    destroy(err, cb) {
      stop();
      cb(err);
    },
  });
}
