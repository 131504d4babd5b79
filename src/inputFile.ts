// Reading a file the user names (a prompt, a corpus) with a bound on its size, so /dev/zero or
// an endless pipe gives a clear error instead of filling the memory. Pipes and FIFOs are read
// as they come (`--prompt-file <(...)` is one); directories are refused.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { SpecdecError } from "./errors.js";

const CHUNK = 1 << 20;

/** The bytes of `path`, at most `maxBytes` of them; `what` names the file in messages ("prompt file"). */
export function readBoundedFile(path: string, maxBytes: number, what: string): Buffer {
  const fail = (e: unknown): never => {
    throw new SpecdecError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  };
  let fd = -1;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    fail(e);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new SpecdecError(`${what} ${path} is a directory`);
    const tooBig = () => new SpecdecError(`${what} ${path} is larger than ${maxBytes / 2 ** 20} MiB`);
    if (st.isFile() && st.size > maxBytes) throw tooBig();
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const b = Buffer.allocUnsafe(CHUNK);
      let n: number;
      try {
        n = readSync(fd, b, 0, CHUNK, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue; // a non-blocking pipe with nothing yet
        return fail(e);
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw tooBig();
      chunks.push(b.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}
