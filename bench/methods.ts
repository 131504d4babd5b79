// npm run bench [-- --model FILE --prompts N --max-tokens N --repeats N --sweep]
// Every method on the same target in one process, against plain decoding (method none) and
// against node-llama-cpp's own decoding loop with and without its token predictors.
// Reports tau, acceptance per draft position, tokens/s, the drafting/verifying split, and
// speedups as ratios to plain decoding measured in the same run.

import { Command } from "commander";
import { getLlama, InputLookupTokenPredictor, DraftSequenceTokenPredictor, LlamaLogLevel, type Token as LlamaToken, type TokenPredictor } from "node-llama-cpp";
import { NodeLlamaCppTarget } from "./nodeLlamaCppTarget.js";
import { markdownTable, measureMethod, median } from "../src/compare.js";
import { methodNamed } from "../src/methods.js";
import { drafterFor } from "../test/support/methods.js";
import { sharedFile } from "../test/support/sharedData.js";
import type { Token } from "../src/types.js";
import { benchPrompts, type BenchPrompt } from "./prompts.js";

const opts = new Command("bench")
  .option("--model <file>", "target GGUF", sharedFile("models", "stories260K.gguf"))
  .option("--prompts <n>", "prompts per group", (v) => parseInt(v, 10), 4)
  .option("--max-tokens <n>", "tokens per generation", (v) => parseInt(v, 10), 128)
  .option("--repeats <n>", "timed repeats (median kept)", (v) => parseInt(v, 10), 3)
  .option("--draft-max <n>", "draft length (default: each method's own, as in the CLI)", (v) => parseInt(v, 10))
  .option("--sweep", "sweep prompt-lookup settings instead")
  .option("--prompt <text>", "one prompt of your own instead of the TinyStories sets")
  .parse()
  .opts<{ model: string; prompts: number; maxTokens: number; repeats: number; draftMax?: number; sweep?: boolean; prompt?: string }>();

const fmt = (x: number, d = 2) => x.toFixed(d);

interface Row { label: string; group: string; tau: number; tps: number; draftShare: number; byPos: number[]; equal: boolean }

const target = await NodeLlamaCppTarget.load(opts.model);
const prompts: BenchPrompt[] = opts.prompt ? [{ name: "custom", group: "repeat", text: opts.prompt }] : benchPrompts(opts.prompts);
const groups = opts.prompt ? (["repeat"] as const) : (["repeat", "free"] as const);

/** Run one configuration over a prompt group (median of repeats); the first, plain decoding, is the reference. */
async function runConfig(label: string, method: string, group: string, ps: BenchPrompt[], checkReference: boolean, extra: { draftMax?: number; maxNgram?: number; minNgram?: number } = {}): Promise<Row> {
  const drafter = await drafterFor(target, method, method === "draft" ? { draftModel: opts.model } : method === "prompt-lookup" ? { ngramMax: extra.maxNgram, ngramMin: extra.minNgram } : {});
  const m = await measureMethod(target, drafter, ps.map((p) => p.text), {
    maxTokens: opts.maxTokens,
    repeats: opts.repeats,
    run: { draftMax: extra.draftMax ?? opts.draftMax ?? methodNamed(method).defaultDraftMax },
    reference: checkReference ? ps.map((p) => referenceTokens.get(p.name)!) : undefined,
  });
  if (!checkReference) ps.forEach((p, i) => referenceTokens.set(p.name, m.results[i].tokens));
  await drafter.dispose?.();
  return { label, group, tau: m.tau, tps: m.tokensPerSecond, draftShare: m.draftShare, byPos: m.acceptanceByPosition, equal: m.sameAsReference ?? true };
}
const referenceTokens = new Map<string, Token[]>();

/** node-llama-cpp's own greedy loop on the same file, optionally with one of its token predictors. */
async function runNodeLlamaCpp(label: string, group: string, ps: BenchPrompt[], makePredictor?: () => Promise<TokenPredictor>) {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: opts.model });
  const ctx = await model.createContext({ contextSize: target.contextSize, sequences: 1, threads: 1 });
  const predictor = makePredictor ? await makePredictor() : undefined;
  const seq = ctx.getSequence({ tokenPredictor: predictor });
  let tokens = 0, ms = 0, equal = true, validated = 0, refuted = 0;
  for (const p of ps) {
    const times: number[] = [];
    let out: number[] = [];
    for (let r = 0; r < opts.repeats; r++) {
      await seq.clearHistory();
      const promptTokens = target.tokenize(p.text) as unknown as LlamaToken[];
      // What LlamaCompletion does: the predictor looks up n-grams of the input it is given.
      predictor?.updateInputTokens?.(promptTokens.slice());
      await seq.evaluateWithoutGeneratingNewTokens(promptTokens.slice(0, -1));
      out = [];
      const t0 = performance.now();
      for await (const t of seq.evaluate(promptTokens.slice(-1), { temperature: 0 })) {
        out.push(t);
        if (out.length >= opts.maxTokens || target.eogTokens.has(t as never)) break;
      }
      times.push(performance.now() - t0);
      // Counters restart with the sequence's history: read them per run (last repeat kept).
      if (r === opts.repeats - 1) {
        validated += seq.tokenPredictions.validated;
        refuted += seq.tokenPredictions.refuted;
      }
    }
    if (target.eogTokens.has(out[out.length - 1] as never)) out.pop();
    equal &&= referenceTokens.get(p.name)!.join() === out.join();
    tokens += out.length; ms += median(times);
  }
  await ctx.dispose(); await model.dispose();
  return { label, group, tps: (tokens * 1000) / ms, equal, predictions: { validated, refuted } };
}

function printRows(rows: Row[], baseline: number) {
  const header = ["method", "tau", "accept by draft position (1..8)", "tok/s", "speedup vs none", "draft share", "same tokens as none"];
  console.log(markdownTable(header, rows.map((r) => [r.label, fmt(r.tau), r.byPos.slice(0, 8).map((x) => fmt(x)).join(" ") || "-", fmt(r.tps, 0), `${fmt(r.tps / baseline)}x`, `${fmt(100 * r.draftShare, 1)}%`, r.equal ? "yes" : "NO"])));
}

console.log(`model ${opts.model}; ${opts.prompt ? "one prompt" : `${opts.prompts} prompts per group`}, ${opts.maxTokens} tokens each, median of ${opts.repeats} repeats; greedy; node ${process.version}`);
for (const group of groups) {
  const ps = prompts.filter((p) => p.group === group);
  const none = await runConfig("none", "none", group, ps, false);
  console.log(`\n### ${opts.prompt ? "your prompt" : `${group} prompts`}`);
  if (opts.sweep) {
    const rows: Row[] = [none];
    for (const draftMax of [2, 4, 8]) for (const maxNgram of [2, 3, 4]) for (const minNgram of [1, 2]) {
      if (minNgram > maxNgram) continue;
      rows.push(await runConfig(`prompt-lookup k=${draftMax} n=${minNgram}..${maxNgram}`, "prompt-lookup", group, ps, true, { draftMax, maxNgram, minNgram }));
    }
    printRows(rows, none.tps);
    continue;
  }
  const rows = [none];
  for (const m of ["blind", "prompt-lookup", "draft"] as const) rows.push(await runConfig(m === "draft" ? "draft (helper = target itself)" : m, m, group, ps, true));
  printRows(rows, none.tps);
  console.log(`\nnode-llama-cpp 3.21.1 on the same file (its own evaluate loop, threads 1, greedy):`);
  const nl = [
    await runNodeLlamaCpp("plain", group, ps),
    await runNodeLlamaCpp("InputLookupTokenPredictor", group, ps, async () => new InputLookupTokenPredictor()),
    await runNodeLlamaCpp("DraftSequenceTokenPredictor (helper = target itself)", group, ps, async () => {
      const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
      const draft = await llama.loadModel({ modelPath: opts.model });
      const draftCtx = await draft.createContext({ contextSize: target.contextSize, sequences: 1, threads: 1 });
      return new DraftSequenceTokenPredictor(draftCtx.getSequence(), { maxTokens: methodNamed("draft").defaultDraftMax });
    }),
  ];
  const header = ["node-llama-cpp", "tok/s", "ratio to our none", "same tokens", "predictions validated / refuted"];
  console.log(markdownTable(header, nl.map((r) => [r.label, fmt(r.tps, 0), `${fmt(r.tps / none.tps)}x`, r.equal ? "yes" : "NO", `${r.predictions.validated} / ${r.predictions.refuted}`])));
}
await target.dispose();
process.exit(0);
