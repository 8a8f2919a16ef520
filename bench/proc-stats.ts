import fs from 'node:fs';

/** CPU seconds (user+system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** Resident memory of a process, MB. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** CPU use (share of one core) of each pid over `ms`. */
export async function cpuShare(pids: number[], ms: number): Promise<number[]> {
  const before = pids.map(cpuSeconds);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, ms));
  const dt = (Date.now() - t0) / 1000;
  return pids.map((p, i) => (cpuSeconds(p) - before[i]!) / dt);
}
