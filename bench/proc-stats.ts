// Per-process CPU time and memory from /proc (Linux), for the benchmark's RSS and CPU-per-GiB lines.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ): 100 on every Linux we run on. */
const TICKS_PER_SECOND = 100;

/** CPU-seconds (user + system, all threads) a process has used, or null once it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** CPU-seconds of this process's reaped children (curl runs), from cutime + cstime. */
export function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

export interface Memory {
  /** Resident set size now, MiB. */
  rssMiB: number;
  /** Peak resident set size so far (VmHWM), MiB. */
  peakMiB: number;
  /**
   * Anonymous resident memory now (RssAnon), MiB: the process's own, without the pages of its
   * executable and libraries that every process running them shares (Node's are ~42 MiB).
   */
  privateMiB: number;
}

export function memory(pid: number): Memory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024, privateMiB: kib('RssAnon') / 1024 };
  } catch {
    return null;
  }
}

/** Samples every process's private memory until stopped; the kernel keeps no peak of it. */
export function watchPrivateMemory(procs: { name: string; pid: number }[], everyMs = 50) {
  const peak: Record<string, number> = {};
  const sample = () => {
    for (const p of procs) {
      const m = memory(p.pid);
      if (m && Number.isFinite(m.privateMiB) && m.privateMiB > (peak[p.name] ?? -1))
        peak[p.name] = m.privateMiB;
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop(): Record<string, number> {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

export function totalCpuSeconds(pids: number[]): number {
  let sum = 0;
  for (const p of pids) sum += cpuSeconds(p) ?? 0;
  return sum;
}
