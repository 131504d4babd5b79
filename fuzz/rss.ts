// Resident memory of a process, from /proc (Linux). 0 where it cannot be read (the process is
// gone, or another OS): then only V8's own heap limit guards the worker.

import { readFileSync } from "node:fs";

export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}
