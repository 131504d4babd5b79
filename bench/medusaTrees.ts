// npm run bench:medusa -- --medusa HEADS.gguf [--model FILE --prompts N --max-tokens N --repeats N]
// Medusa tree shapes with trained heads, on held-out prompts (first sentences of the TinyStories
// validation head), against plain decoding on the built-in engine in the same process.

import { Command } from "commander";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { measureMethod } from "../src/compare.js";
import { chainChoices, type TreeChoices } from "../src/drafters/draftTree.js";
import { formatTreeChoices } from "../src/cli/treeChoices.js";
import { methodNamed } from "../src/methods.js";
import { drafterFor } from "../test/support/methods.js";
import { sharedFile } from "../test/support/sharedData.js";
import { benchPrompts } from "./prompts.js";

const opts = new Command("bench-medusa")
  .requiredOption("--medusa <file>", "trained Medusa heads for the model")
  .option("--model <file>", "target GGUF", sharedFile("models", "stories260K.gguf"))
  .option("--prompts <n>", "held-out prompts", (v) => parseInt(v, 10), 8)
  .option("--max-tokens <n>", "tokens per generation", (v) => parseInt(v, 10), 128)
  .option("--repeats <n>", "timed repeats (median kept)", (v) => parseInt(v, 10), 3)
  .parse()
  .opts<{ medusa: string; model: string; prompts: number; maxTokens: number; repeats: number }>();

const SHAPES: [string, TreeChoices][] = [
  ["chain 1", chainChoices(1)],
  ["chain 2", chainChoices(2)],
  ["chain 3", chainChoices(3)],
  ["chain 4", chainChoices(4)],
  ["top-2, then chain (5)", [[0], [1], [0, 0], [0, 0, 0], [0, 0, 0, 0]]],
  ["top-3 / top-2 (8)", [[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0], [0, 0, 1]]],
  ["Medusa-like (10)", [[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0, 0]]],
  ["wide (16)", [[0], [1], [2], [3], [0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]],
];

const target = await BuiltinTarget.load(opts.model);
const prompts = benchPrompts(opts.prompts).filter((p) => p.group === "free");

async function measure(method: "none" | "medusa" | "prompt-lookup", choices?: TreeChoices) {
  const drafter = await drafterFor(target, method, method === "medusa" ? { medusa: opts.medusa, tree: choices } : {});
  const draftMax = method === "prompt-lookup" ? methodNamed("prompt-lookup").defaultDraftMax : 4;
  const m = await measureMethod(target, drafter, prompts.map((p) => p.text), { maxTokens: opts.maxTokens, repeats: opts.repeats, run: { draftMax } });
  return { tau: m.tau, nodes: m.nodesPerPass, tps: m.tokensPerSecond, outputs: m.results.map((r) => r.tokens.join()) };
}

console.log(`${opts.model} with heads ${opts.medusa}; ${prompts.length} held-out prompts × ${opts.maxTokens} tokens, median of ${opts.repeats}; greedy`);
const none = await measure("none");
console.log(`| tree | nodes | tau | guesses / pass | tok/s | speedup vs none | same tokens |\n|---|---|---|---|---|---|---|`);
console.log(`| none | 0 | 1.00 | 0 | ${none.tps.toFixed(0)} | 1.00x | yes |`);
const lookup = await measure("prompt-lookup");
console.log(`| prompt-lookup (for comparison) | - | ${lookup.tau.toFixed(2)} | ${lookup.nodes.toFixed(1)} | ${lookup.tps.toFixed(0)} | ${(lookup.tps / none.tps).toFixed(2)}x | ${lookup.outputs.every((o, i) => o === none.outputs[i]) ? "yes" : "NO"} |`);
for (const [name, shape] of SHAPES) {
  const r = await measure("medusa", shape);
  const same = r.outputs.every((o, i) => o === none.outputs[i]);
  console.log(`| ${name} \`${formatTreeChoices(shape)}\` | ${shape.length} | ${r.tau.toFixed(2)} | ${r.nodes.toFixed(1)} | ${r.tps.toFixed(0)} | ${(r.tps / none.tps).toFixed(2)}x | ${same ? "yes" : "NO"} |`);
}
process.exit(0);
