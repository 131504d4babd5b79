// The default model family: a small story model, its distilled draft, its Medusa heads and its EAGLE head,
// committed under models/ so that `specdec generate` and `specdec demo` work without arguments.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { OptionError } from "./errors.js";

/** The environment variable naming a folder that replaces models/ (same file names). */
export const MODELS_ENV = "SPECDEC_MODELS";

/** File names of the family inside the models folder. */
export const DEFAULT_MODEL_FILES = {
  /** The target: a small llama with a byte-level BPE tokenizer. */
  target: "stories-target.gguf",
  /** Its distilled draft model (same tokenizer), for --method draft. */
  draft: "stories-draft.gguf",
  /** Its Medusa heads, for --method medusa. */
  medusa: "stories-medusa.gguf",
  /** Its EAGLE head, for --method eagle. */
  eagle: "stories-eagle.gguf",
} as const;

export type DefaultModelRole = keyof typeof DEFAULT_MODEL_FILES;

export interface DefaultModels {
  /** The folder the paths are in: $SPECDEC_MODELS, else models/ at the package root. */
  dir: string;
  /** True when the folder came from $SPECDEC_MODELS. */
  fromEnv: boolean;
  target: string;
  draft: string;
  medusa: string;
  eagle: string;
}

/**
 * The package root: the nearest folder above this file whose package.json names "specdec".
 * Searching (rather than assuming dist/src/ → two levels up) keeps this right when the file
 * runs from another layout, e.g. straight from src/ under a TypeScript loader.
 */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; ) {
    if (isSpecdecPackage(join(dir, "package.json"))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return resolve(here, "..", ".."); // the compiled layout: dist/src/defaultModels.js
}

function isSpecdecPackage(file: string): boolean {
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name === "specdec";
  } catch {
    return false;
  }
}

/** Paths of the default family (they may not exist: see requireDefaultModel). */
export function defaultModels(): DefaultModels {
  const override = process.env[MODELS_ENV];
  const fromEnv = override !== undefined && override !== "";
  const dir = fromEnv ? resolve(override) : join(packageRoot(), "models");
  const file = (role: DefaultModelRole) => join(dir, DEFAULT_MODEL_FILES[role]);
  return { dir, fromEnv, target: file("target"), draft: file("draft"), medusa: file("medusa"), eagle: file("eagle") };
}

/**
 * Return `path` if the file exists, else throw a one-line error saying where the default was
 * looked for and what to do instead (`hint`, naming options as {name}: see OptionError).
 */
export function requireDefaultModel(path: string, hint = "pass {model} FILE"): string {
  if (existsSync(path)) return path;
  // Name the override when it is set: a forgotten SPECDEC_MODELS is the likeliest cause.
  const env = process.env[MODELS_ENV] ? ` (${MODELS_ENV}=${process.env[MODELS_ENV]})` : "";
  throw new OptionError(`default model not found at ${path}${env}: the models/ folder ships with the repository; ${hint}`);
}
