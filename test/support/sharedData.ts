// Where the third-party test data lives: $SPECDEC_SHARED, else ../shared beside the project.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { packageRoot } from "../../src/defaultModels.js";

/** The project root (the folder of specdec's package.json). */
export const PROJECT_ROOT = packageRoot();

/** The shared data folder. Throws when it is missing: tests that need it must fail loudly. */
export function sharedDir(): string {
  const dir = process.env.SPECDEC_SHARED ? resolve(process.env.SPECDEC_SHARED) : resolve(PROJECT_ROOT, "..", "shared");
  if (!existsSync(dir)) throw new Error(`shared data folder not found at ${dir}: set SPECDEC_SHARED or put shared/ beside the project`);
  return dir;
}

/** A file inside the shared folder; throws when it is missing. */
export function sharedFile(...parts: string[]): string {
  const p = join(sharedDir(), ...parts);
  if (!existsSync(p)) throw new Error(`shared data file missing: ${p}`);
  return p;
}
