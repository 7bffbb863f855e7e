// Human-readable log lines for a terminal: pino writes JSON lines, this turns each into
// "12:34:56.789 INFO  relay: message key=value". Structured JSON stays the format for files and pipes.
import { writeSync } from 'node:fs';
import { isatty } from 'node:tty';

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s="]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One JSON log line as text; lines that are not pino JSON pass through unchanged. */
export function formatLine(line: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof o !== 'object' || o === null || typeof o.level !== 'number') return line;
  const [name, c] = LEVELS[o.level] ?? [String(o.level).padEnd(5), ''];
  const t = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const fields = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
  const level = color ? `${c}${name}\x1b[0m` : name;
  const who = o.name ? `${o.name}: ` : '';
  return `${t} ${level} ${who}${o.msg ?? ''}${fields ? `  ${color ? `\x1b[90m${fields}\x1b[0m` : fields}` : ''}`;
}

/**
 * A pino destination that pretty-prints when `fd` is a terminal (and ALLIUM_LOG_FORMAT is not
 * "json"), or null: then the caller keeps plain JSON lines.
 */
export function prettyDestination(fd: number): { write(s: string): void } | null {
  const format = process.env.ALLIUM_LOG_FORMAT;
  if (format === 'json' || (format !== 'pretty' && !isatty(fd))) return null;
  const color = isatty(fd) && !process.env.NO_COLOR;
  return {
    write(s: string) {
      const out = s
        .split('\n')
        .filter(Boolean)
        .map((l) => formatLine(l, color))
        .join('\n');
      writeSync(fd, `${out}\n`);
    },
  };
}
