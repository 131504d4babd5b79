// Benchmark prompts from a JSON Lines file: one object per line, `{"prompt": "..."}` or
// Spec-Bench's / MT-Bench's `{"turns": ["...", ...]}` (the first turn is used), with an optional
// `"category"`. Blank lines are skipped; anything else is a one-line error naming the line.
import { readFileSync } from "node:fs";
import { SpecdecError } from "../errors.js";

export interface BenchPrompt {
  readonly text: string;
  /** The file's category, or "all" when it has none. */
  readonly category: string;
}

export function readPromptsFile(path: string): BenchPrompt[] {
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (e) {
    throw new SpecdecError(`cannot read prompts file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parsePrompts(raw, path);
}

export function parsePrompts(raw: string, name = "prompts"): BenchPrompt[] {
  const out: BenchPrompt[] = [];
  raw.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${name}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new SpecdecError(`${where}: not a JSON object (each line must be {"prompt": "..."} or {"turns": ["..."]})`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new SpecdecError(`${where}: not a JSON object`);
    const o = v as { prompt?: unknown; turns?: unknown; category?: unknown };
    const text = o.prompt !== undefined ? o.prompt : Array.isArray(o.turns) ? o.turns[0] : undefined;
    if (typeof text !== "string" || text === "") throw new SpecdecError(`${where}: needs a non-empty "prompt" string or a "turns" list whose first item is one`);
    if (o.category !== undefined && (typeof o.category !== "string" || o.category === "")) throw new SpecdecError(`${where}: "category" must be a non-empty string`);
    out.push({ text, category: (o.category as string | undefined) ?? "all" });
  });
  if (out.length === 0) throw new SpecdecError(`${name}: no prompts`);
  return out;
}
