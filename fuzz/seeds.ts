// The seed files mutations start from: the shared models and vocabulary files and the
// committed default family. Each seed's bytes and layout are read once per process.

import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ggufLayout, type GgufLayout } from "./ggufLayout.js";
import { defaultModels, sharedDir } from "./specdec.js";

export interface Seed {
  readonly path: string;
  readonly name: string;
  readonly bytes: Buffer;
  readonly layout: GgufLayout;
}

export type SeedSet = "models" | "tokenizers" | "all";

/** Seed paths, in a fixed order (a case picks its seed by index, so the order is part of its id). */
export function seedPaths(set: SeedSet): string[] {
  const shared = sharedDir();
  const d = defaultModels();
  // Models the engines run (llama architecture, with tensors).
  const models = [join(shared, "models", "stories260K.gguf"), join(shared, "models", "llama-2-tiny-random.gguf"), d.target, d.draft];
  if (set === "models") return models;
  const vocabDir = join(shared, "tokenizers", "gguf-vocab");
  const vocabs = readdirSync(vocabDir).filter((f) => f.endsWith(".gguf")).sort().map((f) => join(vocabDir, f));
  if (vocabs.length === 0) throw new Error(`no vocabulary files in ${vocabDir}`);
  if (set === "tokenizers") return [...models, ...vocabs];
  return [...models, d.medusa, ...vocabs];
}

const cache = new Map<string, Seed>();

export function loadSeed(path: string): Seed {
  let s = cache.get(path);
  if (!s) {
    const bytes = readFileSync(path);
    s = { path, name: basename(path), bytes, layout: ggufLayout(path, bytes) };
    cache.set(path, s);
  }
  return s;
}
