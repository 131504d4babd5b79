// npm run bench:eagle [-- --models DIR --eagle HEAD.gguf --prompts N --max-tokens N --repeats N --budgets LIST]
// The EAGLE head of the default family against its Medusa heads and its distilled draft, on the
// family's held-out "continue" prompts (a held-out paragraph's first sentence: bench/prompts.ts),
// built-in engine, greedy, every method in one process against plain decoding. Medusa runs with
// the 2-node tree `0;0,0` and with its default candidate space at 24 nodes; EAGLE at several node
// budgets (tree nodes × depth) — the budget the cost model will choose per step.
// Drafting time per step: the head's own time (drafting and following the committed tokens)
// for EAGLE, the loop's drafting time for the others.

import { Command } from "commander";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { markdownTable, measureMethod } from "../src/compare.js";
import { DEFAULT_MODEL_FILES, defaultModels } from "../src/defaultModels.js";
import { EagleDrafter } from "../src/drafters/eagle.js";
import type { MethodOptionValues } from "../src/drafters/method.js";
import type { GenerateOptions } from "../src/decode/speculativeDecode.js";
import type { Token } from "../src/types.js";
import { drafterFor } from "../test/support/methods.js";
import { firstSentence, heldOutParagraphs } from "./prompts.js";

const opts = new Command("bench-eagle")
  .option("--models <dir>", "folder holding the family's files (default: models/)")
  .option("--eagle <file>", "EAGLE head to measure (default: the family's)")
  .option("--prompts <n>", "held-out prompts", (v) => parseInt(v, 10), 8)
  .option("--offset <n>", "skip the last n held-out paragraphs (other prompts, e.g. to tune settings on)", (v) => parseInt(v, 10), 0)
  .option("--max-tokens <n>", "tokens per generation", (v) => parseInt(v, 10), 128)
  .option("--repeats <n>", "timed repeats (median kept)", (v) => parseInt(v, 10), 3)
  .option("--budgets <list>", "EAGLE budgets as nodes x depth, comma-separated", "2x2,4x4,8x6,16x6,24x6,24x8")
  .option("--top-k <k>", "EAGLE's top-k (nodes expanded per depth, candidates per node)", (v) => parseInt(v, 10))
  .parse()
  .opts<{ models?: string; eagle?: string; prompts: number; offset: number; maxTokens: number; repeats: number; budgets: string; topK?: number }>();

const dir = opts.models;
const family = dir ? Object.fromEntries(Object.entries(DEFAULT_MODEL_FILES).map(([role, f]) => [role, join(dir, f)])) as Record<keyof typeof DEFAULT_MODEL_FILES, string> : defaultModels();
const eaglePath = opts.eagle ?? family.eagle;
const target = await BuiltinTarget.load(family.target);
const prompts = heldOutParagraphs(opts.prompts + opts.offset).slice(0, opts.prompts).map(firstSentence);

interface Config { label: string; method: string; options: MethodOptionValues; run: Omit<GenerateOptions, "prompt" | "maxTokens"> }
const budgets = opts.budgets.split(",").map((b) => b.trim().split("x").map(Number));
const eagleOptions = { eagle: eaglePath, ...(opts.topK ? { eagleTopK: opts.topK } : {}) };
const configs: Config[] = [
  { label: "none", method: "none", options: {}, run: {} },
  { label: "draft k=4 (`stories-draft.gguf`)", method: "draft", options: { draftModel: family.draft }, run: { draftMax: 4 } },
  { label: "medusa tree `0;0,0` (`stories-medusa.gguf`)", method: "medusa", options: { medusa: family.medusa, tree: [[0], [0, 0]] }, run: {} },
  { label: "medusa default candidate space, 24 nodes, depth 8", method: "medusa", options: { medusa: family.medusa }, run: { treeNodes: 24, draftMax: 8 } },
  ...budgets.map(([nodes, depth]): Config => ({ label: `eagle ${nodes} nodes, depth ${depth}`, method: "eagle", options: eagleOptions, run: { treeNodes: nodes, draftMax: depth } })),
];

console.log(`built-in engine, ${family.target}, EAGLE head ${eaglePath}; ${prompts.length} held-out continue prompts, ${opts.maxTokens} tokens each, median of ${opts.repeats}; greedy; node ${process.version}`);
let reference: Token[][] | undefined;
let baseline = 0;
const rows: string[][] = [];
for (const c of configs) {
  const drafter = await drafterFor(target, c.method, c.options);
  const headBefore = drafter instanceof EagleDrafter ? drafter.headMs : 0;
  const m = await measureMethod(target, drafter, prompts, { maxTokens: opts.maxTokens, repeats: opts.repeats, run: c.run, reference });
  await drafter.dispose?.();
  if (!reference) {
    reference = m.results.map((r) => r.tokens);
    baseline = m.tokensPerSecond;
  }
  const steps = m.results.reduce((s, r) => s + r.stats.targetCalls, 0); // of one repeat (every repeat decodes the same)
  const perStep = drafter instanceof EagleDrafter ? (drafter.headMs - headBefore) / (steps * opts.repeats) : m.results.reduce((s, r) => s + r.stats.draftMs, 0) / steps;
  const byPos = m.acceptanceByPosition.slice(0, 8).map((x) => x.toFixed(2)).join(" ") || "-";
  rows.push([c.label, m.tau.toFixed(2), byPos, m.nodesPerPass.toFixed(1), m.tokensPerSecond.toFixed(0), `${(m.tokensPerSecond / baseline).toFixed(2)}x`, steps ? perStep.toFixed(3) : "-", m.sameAsReference === false ? "NO" : "yes"]);
}
console.log(markdownTable(["method", "tau", "acceptance by depth", "guesses / pass", "tok/s", "speedup vs none", "drafting ms / step", "same tokens as none"], rows));
process.exit(0);
