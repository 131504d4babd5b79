// npx tsc -p tsconfig.json && node dist/bench/trainDraft.js --out /tmp/draft.gguf [--steps N --dim N
//   --layers N --alpha X --data greedy|corpus ...] [--measure-only]
// Distills a small llama draft from the target (stories260K by default) with trainDraft, writes
// it (never over an existing file unless --overwrite), then measures method `draft` with it on
// held-out prompts — the first sentences of paragraphs of the TinyStories validation head —
// at temperature 0: tau, acceptance per draft position and tokens/s against plain decoding on
// the built-in engine in this process, with the draft on both backends; and whether every run
// reproduces plain greedy decoding.

import { Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { loadTarget, type Backend } from "../src/targets/loadTarget.js";
import { generate, type GenerationResult } from "../src/decode/speculativeDecode.js";
import { createDrafter } from "../src/methods.js";
import { sharedFile } from "../test/support/sharedData.js";
import { saveDraftGguf, trainDraft, type DraftData, type DraftTrainConfig } from "../src/train/draftTrainer.js";

const int = (v: string) => parseInt(v, 10);
const opts = new Command("trainDraft")
  .requiredOption("--out <file>", "where to write the draft GGUF (keep it outside the repository)")
  .option("--overwrite", "replace --out if it exists")
  .option("--measure-only", "skip training: measure the existing --out")
  .option("--model <file>", "target GGUF", sharedFile("models", "stories260K.gguf"))
  .option("--steps <n>", "optimizer updates", int, 600)
  .option("--dim <n>", "draft width", int, 48)
  .option("--layers <n>", "draft blocks", int, 2)
  .option("--heads <n>", "attention heads", int, 4)
  .option("--kv-heads <n>", "KV heads", int, 2)
  .option("--hidden <n>", "feed-forward width", int, 128)
  .option("--context <n>", "training window (tokens): cover prompt + generation, RoPE positions beyond it are unseen", int, 144)
  .option("--batch <n>", "windows per update", int, 4)
  .option("--lr <x>", "peak learning rate", parseFloat, 3e-3)
  .option("--seed <n>", "seed", int, 1)
  .option("--alpha <x>", "weight of KL to the target (1 − alpha: CE on the window's tokens)", parseFloat, 1)
  .option("--data <kind>", "greedy (target continuations of corpus prompts) or corpus", "greedy")
  .option("--max-windows <n>", "training windows prepared", int, 512)
  .option("--prompts <n>", "held-out prompts", int, 8)
  .option("--max-tokens <n>", "tokens per generation", int, 128)
  .option("--draft-max <list>", "draft lengths k to measure, comma-separated", "4")
  .option("--repeats <n>", "timed repeats per prompt (median kept)", int, 3)
  .parse()
  .opts<{ out: string; overwrite?: boolean; measureOnly?: boolean; model: string; steps: number; dim: number; layers: number; heads: number; kvHeads: number; hidden: number; context: number; batch: number; lr: number; seed: number; alpha: number; data: string; maxWindows: number; prompts: number; maxTokens: number; draftMax: string; repeats: number }>();

const fmt = (x: number, d = 2) => x.toFixed(d);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const valText = readFileSync(sharedFile("corpora", "tinystories", "tinystories_val_head.txt"), "utf8");
const target = await BuiltinTarget.load(opts.model);
const config: DraftTrainConfig = {
  dim: opts.dim, layers: opts.layers, heads: opts.heads, kvHeads: opts.kvHeads, hidden: opts.hidden, context: opts.context,
  steps: opts.steps, batch: opts.batch, lr: opts.lr, seed: opts.seed, alpha: opts.alpha, data: opts.data as DraftData, maxWindows: opts.maxWindows, valWindows: 32, evalEvery: Math.max(1, Math.floor(opts.steps / 4)),
};
console.log(`target ${opts.model}; node ${process.version}`);

if (!opts.measureOnly) {
  if (existsSync(opts.out) && !opts.overwrite) throw new Error(`${opts.out} exists: pass --overwrite to replace it, or --measure-only to measure it`);
  const trainText = readFileSync(sharedFile("corpora", "tinystories", "tinystories_train_head_smallGPT.txt"), "utf8");
  // Held-out loss on the second half of the validation file; the prompts come from its first half.
  const lines = valText.split("\n");
  const heldOut = lines.slice(Math.floor(lines.length / 2)).join("\n");
  console.log(`training: ${JSON.stringify(config)}`);
  const t0 = performance.now();
  let tokens = 0, lossSum = 0, lossN = 0;
  const res = trainDraft(target, trainText, heldOut, config, {
    onData: (m) => console.log(`data: ${m}`),
    onStep: (s) => {
      tokens += s.parts.rows;
      lossSum += s.loss;
      lossN++;
      if (s.step % 50 === 0 || s.step === 1 || s.step === s.steps) {
        console.log(`step ${s.step}/${s.steps} loss ${fmt(lossSum / lossN, 3)} (kl ${fmt(s.parts.kl, 3)} ce ${fmt(s.parts.ce, 3)} top-1 agree ${fmt(s.parts.agree, 3)}) lr ${s.lr.toExponential(2)} |g| ${fmt(s.gradNorm)} ${fmt(s.ms, 0)} ms/step, ${fmt((tokens * 1000) / (performance.now() - t0), 0)} positions/s`);
        lossSum = lossN = 0;
      }
    },
    onEval: (e) => console.log(`held-out @${e.step}: kl ${fmt(e.kl, 3)} ce ${fmt(e.ce, 3)} top-1 agreement with the target ${fmt(e.agree, 3)} (${e.rows} positions)`),
  });
  saveDraftGguf(opts.out, res.params, config, target, { overwrite: opts.overwrite });
  console.log(`trained in ${fmt((performance.now() - t0) / 1000, 1)} s; wrote ${opts.out}`);
}

// Held-out prompts: first sentences of the first paragraphs of the validation file.
const prompts: string[] = [];
for (const line of valText.split("\n")) {
  const s = line.trim().match(/^.*?[.!?](\s|$)/)?.[0]?.trim();
  if (s && s.length >= 20 && !prompts.includes(s)) prompts.push(s);
  if (prompts.length >= opts.prompts) break;
}

interface Row { label: string; tau: number; tps: number; byPos: number[]; equal: boolean; draftShare: number }
const reference = new Map<number, number[]>();
async function run(label: string, method: "none" | "draft", backend: Backend, k: number): Promise<Row> {
  const drafter = await createDrafter(method, { target, loadModel: (path) => loadTarget(backend, path) }, method === "draft" ? { draftModel: opts.out } : {});
  let gen = 0, decided = 0, calls = 0, ms = 0, draftMs = 0, equal = true;
  const pos: { d: number; a: number }[] = [];
  for (let i = 0; i < prompts.length; i++) {
    const times: number[] = [];
    let last!: GenerationResult;
    for (let r = 0; r < opts.repeats; r++) {
      last = await generate(target, drafter, { prompt: prompts[i], maxTokens: opts.maxTokens, draftMax: k });
      times.push(last.stats.decodeMs);
    }
    const s = last.stats;
    gen += s.generatedTokens;
    decided += s.decidedTokens;
    calls += s.targetCalls;
    ms += median(times);
    draftMs += s.draftMs * (median(times) / s.decodeMs);
    s.acceptanceByPosition.forEach((x, j) => ((pos[j] ??= { d: 0, a: 0 }), (pos[j].d += x.drafted), (pos[j].a += x.accepted)));
    if (method === "none") reference.set(i, last.tokens);
    else equal &&= reference.get(i)!.join() === last.tokens.join();
  }
  await drafter.dispose?.();
  return { label, tau: decided / calls, tps: (gen * 1000) / ms, byPos: pos.map((x) => x.a / x.d), equal, draftShare: draftMs / ms };
}

console.log(`\nmeasuring ${opts.out} on ${prompts.length} held-out prompts, ${opts.maxTokens} tokens each, greedy, median of ${opts.repeats}; target on the built-in engine`);
await run("warm-up", "none", "builtin", 0); // JIT and caches: the first timed baseline would be slow
const rows: Row[] = [await run("none (plain greedy)", "none", "builtin", 0)];
for (const k of opts.draftMax.split(",").map(int)) {
  rows.push(await run(`draft k=${k}, draft on builtin`, "draft", "builtin", k));
  rows.push(await run(`draft k=${k}, draft on llama.cpp`, "draft", "llama.cpp", k));
}
// A second baseline run at the end: the spread between the two shows the timing noise.
const again = await run("none (again)", "none", "builtin", 0);
rows.push(again);
console.log(`| method | tau | accept by position | tok/s | speedup vs none | draft share | same tokens as plain greedy |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.label} | ${fmt(r.tau)} | ${r.byPos.map((x) => fmt(x)).join(" ") || "-"} | ${fmt(r.tps, 0)} | ${fmt(r.tps / rows[0].tps)}x | ${fmt(100 * r.draftShare, 1)}% | ${r.equal ? "yes" : "NO"} |`);
await target.dispose();
