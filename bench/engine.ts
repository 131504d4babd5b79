// Speed of the built-in engine against node-llama-cpp on the same GGUF files, in one process:
// greedy decoding (tokens/s) and the cost of one k-token pass (k = 1, 4, 8, 16) relative to
// k one-token passes. Models: stories260K (F32) and a ~100M-parameter random-weight llama
// written here with our GGUF writer (F32 and Q8_0), with the stories260K tokenizer.
//
//   npm run bench:engine [-- --big-only | --small-only | --js]
//   --js also measures the JS kernels (no WASM) on stories260K.

import { getLlama, LlamaLogLevel, type Token as LlamaToken } from "node-llama-cpp";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { bigModel } from "./bigModel.js";
import { useWasmKernels } from "../src/engine/wasm/wasmMatrix.js";
import { sharedFile } from "../test/support/sharedData.js";

const args = new Set(process.argv.slice(2));
const STORIES = sharedFile("models", "stories260K.gguf");
const KS = [1, 4, 8, 16];
const CONTEXT = 512;

interface Result {
  tps: number; // greedy tokens/s
  pass: Map<number, number>; // k -> ms per k-token pass
  tokens: number[]; // the greedy tokens (to check both engines agree)
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function argmax(v: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[off + i] > v[off + best]) best = i;
  return best;
}

// ---- our engine ----

async function runOurs(path: string, prompt: number[], nGen: number, reps: number, passReps: number): Promise<Result> {
  const target = await BuiltinTarget.load(path, { contextSize: CONTEXT });
  const e = target.engine, V = target.vocabSize;
  try {
    const times: number[] = [];
    let tokens: number[] = [];
    for (let r = 0; r < reps; r++) {
      e.truncate(0);
      e.forward(prompt.slice(0, -1), { logits: "none" });
      let tok = prompt[prompt.length - 1];
      tokens = [];
      const t0 = performance.now();
      for (let i = 0; i < nGen; i++) {
        tok = argmax(e.forward([tok], { logits: "last" }).logits, 0, V);
        tokens.push(tok);
      }
      times.push(performance.now() - t0);
    }
    const pass = new Map<number, number>();
    const prefix = [...prompt, ...tokens].slice(0, 16);
    for (const k of KS) {
      const batch = [...prompt, ...tokens].slice(16, 16 + k);
      e.truncate(0);
      e.forward(prefix, { logits: "none" });
      const ms: number[] = [];
      for (let r = -1; r < passReps; r++) { // r = -1: warm-up, not timed
        const t0 = performance.now();
        const { logits } = e.forward(batch); // logits of every position, as verification needs
        for (let t = 0; t < k; t++) argmax(logits, t * V, V);
        if (r >= 0) ms.push(performance.now() - t0);
        e.truncate(16);
      }
      pass.set(k, median(ms));
    }
    return { tps: (nGen * 1000) / median(times), pass, tokens };
  } finally {
    await target.dispose();
  }
}

// ---- node-llama-cpp ----

async function runLlamaCpp(path: string, prompt: number[], nGen: number, reps: number, passReps: number, ourTokens: number[]): Promise<Result> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: CONTEXT, sequences: 1, threads: 1 });
  const seq = ctx.getSequence();
  try {
    const times: number[] = [];
    let tokens: number[] = [];
    for (let r = 0; r < reps; r++) {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1) as LlamaToken[]);
      tokens = [];
      const t0 = performance.now();
      for await (const t of seq.evaluate(prompt.slice(-1) as LlamaToken[], { temperature: 0 })) {
        tokens.push(t);
        if (tokens.length >= nGen) break;
      }
      times.push(performance.now() - t0);
    }
    const pass = new Map<number, number>();
    const all = [...prompt, ...ourTokens];
    for (const k of KS) {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(all.slice(0, 16) as LlamaToken[]);
      const batch = all.slice(16, 16 + k).map((t) => [t, { generateNext: { token: true, options: { temperature: 0 } } }]);
      const ms: number[] = [];
      for (let r = -1; r < passReps; r++) { // r = -1: warm-up, not timed
        const t0 = performance.now();
        await seq.controlledEvaluate(batch as never);
        if (r >= 0) ms.push(performance.now() - t0);
        await seq.eraseContextTokenRanges([{ start: 16, end: 16 + k }]);
      }
      pass.set(k, median(ms));
    }
    return { tps: (nGen * 1000) / median(times), pass, tokens };
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

// ---- table ----

const rows: string[] = [];
function row(model: string, engine: string, r: Result, same: string): void {
  const one = r.pass.get(1)!;
  const cells = KS.map((k) => (k === 1 ? `${r.pass.get(1)!.toFixed(2)}` : `${r.pass.get(k)!.toFixed(2)} (${(r.pass.get(k)! / (k * one)).toFixed(2)})`));
  rows.push(`| ${model} | ${engine} | ${r.tps.toFixed(0)} | ${cells.join(" | ")} | ${same} |`);
}

async function bench(label: string, path: string, nGen: number, reps: number, passReps: number, withJs: boolean): Promise<void> {
  const probe = await BuiltinTarget.load(path, { contextSize: CONTEXT });
  const prompt = probe.tokenize("Once upon a time", true);
  await probe.dispose();
  const ours = await runOurs(path, prompt, nGen, reps, passReps);
  row(label, "specdec builtin (WASM SIMD)", ours, "-");
  if (withJs) {
    useWasmKernels(false);
    const js = await runOurs(path, prompt, nGen, reps, passReps);
    useWasmKernels(true);
    row(label, "specdec builtin (JS kernels)", js, js.tokens.join() === ours.tokens.join() ? "yes" : "NO");
  }
  const lc = await runLlamaCpp(path, prompt, nGen, reps, passReps, ours.tokens);
  const agree = lc.tokens.filter((t, i) => t === ours.tokens[i]).length;
  row(label, "node-llama-cpp (threads 1)", lc, `${agree}/${nGen}`);
  console.error(`done: ${label}`);
}

console.log(`node ${process.version}; greedy from "Once upon a time"; k-token pass after a 16-token prefix, logits (argmax) at all k positions; median of repeats (k-token passes: ${'40'} on stories260K, 4 on the 100M models)`);
if (!args.has("--big-only")) await bench("stories260K F32", STORIES, 256, 5, 40, args.has("--js"));
if (!args.has("--small-only")) {
  await bench("llama ~99M F32 (random)", bigModel(GgmlType.F32, "F32"), 16, 2, 4, false);
  await bench("llama ~99M Q8_0 (random)", bigModel(GgmlType.Q8_0, "Q8_0"), 16, 2, 4, false);
}
console.log("\n| model | engine | greedy tok/s | 1-token pass ms | 4-token pass ms (ratio to 4 x 1) | 8-token | 16-token | greedy tokens equal to ours |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) console.log(r);
