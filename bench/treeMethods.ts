// npm run bench:trees [-- --model FILE --prompts N --max-tokens N --repeats N]
// Chain and tree methods on the built-in engine (batch-invariant, tree attention), against
// plain decoding on the same engine in the same process: tau, acceptance by depth, tokens/s.
// Medusa runs with oracle heads fitted to the benchmark's own greedy outputs (what the method
// does when its heads are right; heads trained on a corpus are separate work).

import { Command } from "commander";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { measureMethod } from "../src/compare.js";
import { generate, type GenerateOptions } from "../src/decode/speculativeDecode.js";
import { chainChoices } from "../src/drafters/draftTree.js";
import { fitMedusaHeads } from "../test/support/fitHeads.js";
import { saveMedusaHeads } from "../src/drafters/medusaHeads.js";
import type { MethodOptionValues } from "../src/drafters/method.js";
import { drafterFor } from "../test/support/methods.js";
import { sharedFile } from "../test/support/sharedData.js";
import type { Token } from "../src/types.js";
import { benchPrompts, type BenchPrompt } from "./prompts.js";

const opts = new Command("bench-trees")
  .option("--model <file>", "target GGUF", sharedFile("models", "stories260K.gguf"))
  .option("--prompts <n>", "prompts per group", (v) => parseInt(v, 10), 4)
  .option("--max-tokens <n>", "tokens per generation", (v) => parseInt(v, 10), 128)
  .option("--repeats <n>", "timed repeats (median kept)", (v) => parseInt(v, 10), 3)
  .parse()
  .opts<{ model: string; prompts: number; maxTokens: number; repeats: number }>();

const target = await BuiltinTarget.load(opts.model);
const prompts = benchPrompts(opts.prompts);

// Plain greedy outputs: the reference every method must reproduce, and the heads' training set.
const reference = new Map<string, Token[]>();
const none = await drafterFor(target, "none");
for (const p of prompts) reference.set(p.name, (await generate(target, none, { prompt: p.text, maxTokens: opts.maxTokens })).tokens);
const K = 4;
const fit = fitMedusaHeads(target, prompts.map((p) => {
  const prompt = target.tokenize(p.text);
  return { seq: [...prompt, ...reference.get(p.name)!], from: prompt.length - 1 };
}), K);
const headsPath = join(mkdtempSync(join(tmpdir(), "specdec-bench-")), "heads.gguf");
saveMedusaHeads(headsPath, fit.heads, { hiddenSize: target.hiddenSize, vocabSize: target.vocabSize, vocabFingerprint: target.vocab.fingerprint });

interface Config { label: string; method: string; options: MethodOptionValues; run: Partial<GenerateOptions> }
const configs: Config[] = [
  { label: "none", method: "none", options: {}, run: {} },
  { label: "prompt-lookup chain k=2", method: "prompt-lookup", options: {}, run: { draftMax: 2 } },
  { label: "prompt-lookup chain k=6", method: "prompt-lookup", options: {}, run: { draftMax: 6 } },
  { label: "prompt-lookup tree c=4 k=6", method: "prompt-lookup", options: { candidates: 4 }, run: { draftMax: 6 } },
  { label: "lookahead W,N,G=3,2,3", method: "lookahead", options: { lookahead: { window: 3, ngram: 2, verify: 3 } }, run: {} },
  { label: "lookahead W,N,G=5,3,5", method: "lookahead", options: { lookahead: { window: 5, ngram: 3, verify: 5 } }, run: {} },
  { label: "lookahead W,N,G=7,4,5 (40 nodes)", method: "lookahead", options: { lookahead: { window: 7, ngram: 4, verify: 5 } }, run: { treeNodes: 40 } },
  { label: `medusa (oracle heads) chain K=${K}`, method: "medusa", options: { medusa: headsPath, tree: chainChoices(K) }, run: { draftMax: K } },
  { label: "medusa (oracle heads) 10-node tree", method: "medusa", options: { medusa: headsPath, tree: [[0], [1], [2], [0, 0], [0, 1], [1, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0, 0]] }, run: { draftMax: K } },
];

console.log(`built-in engine, ${opts.model}; ${opts.prompts} prompts per group, ${opts.maxTokens} tokens each, median of ${opts.repeats}; greedy; node ${process.version}`);
console.log(`Medusa oracle heads: K = ${K}, training accuracy per head ${fit.accuracy.map((a) => a.toFixed(3)).join(" ")}`);
for (const group of ["repeat", "free"] as const) {
  const ps = prompts.filter((p) => p.group === group);
  console.log(`\n### ${group} prompts\n| method | tau | accept by depth (1..6) | nodes / pass | tok/s | speedup vs none | same tokens as none |\n|---|---|---|---|---|---|---|`);
  let baseline = 0;
  for (const c of configs) {
    const row = await measure(c, ps);
    if (c.method === "none") baseline = row.tps;
    console.log(`| ${c.label} | ${row.tau.toFixed(2)} | ${row.byDepth.slice(0, 6).map((x) => x.toFixed(2)).join(" ") || "-"} | ${row.nodes.toFixed(1)} | ${row.tps.toFixed(0)} | ${(row.tps / baseline).toFixed(2)}x | ${row.equal ? "yes" : "NO"} |`);
  }
}
process.exit(0);

async function measure(c: Config, ps: BenchPrompt[]) {
  const drafter = await drafterFor(target, c.method, c.options);
  const m = await measureMethod(target, drafter, ps.map((p) => p.text), { maxTokens: opts.maxTokens, repeats: opts.repeats, run: c.run, reference: ps.map((p) => reference.get(p.name)!) });
  return { tau: m.tau, nodes: m.nodesPerPass, tps: m.tokensPerSecond, equal: m.sameAsReference === true, byDepth: m.acceptanceByPosition };
}
