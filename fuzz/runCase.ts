// Running one built case in this process: the worker's job, and --reproduce's in the foreground.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { verdictOnThrown, type CaseVerdict } from "./outcome.js";
import { TARGETS } from "./targets/registry.js";
import type { BuiltCase } from "./targets/target.js";

/** Run a built case in this process; its file (if any) is written to `filePath` first. */
export async function runCase(c: BuiltCase, scratch: string, filePath = join(scratch, "case.gguf")): Promise<CaseVerdict> {
  if (c.file) writeFileSync(filePath, c.file);
  try {
    return await TARGETS[c.target].run(c, c.file ? filePath : undefined, scratch);
  } catch (e) {
    return verdictOnThrown(e);
  }
}

