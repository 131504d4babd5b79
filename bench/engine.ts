// Speed of the built-in engine against node-llama-cpp on the same GGUF files, in one process:
// greedy decoding (tokens/s) and the cost of one k-token pass (k = 1, 2, 4, 8, 16) relative to
// k one-token passes, at 1 and 2 threads (node-llama-cpp given the same thread count); then the
// cost of a one-token pass as the cache grows (16 to 4096 positions), and the thread pool's
// round trip. Models: stories260K (F32), the default target (models/stories-target.gguf, F32),
// and a ~100M-parameter random-weight llama written here with our GGUF writer (F32 and Q8_0,
// with the stories260K tokenizer); on Q8_0 also with 8-bit activations (activations "q8").
//
//   npm run bench:engine [-- --small-only | --big-only] [--threads 1,2] [--js] [--no-context]
//   --js also measures the JS kernels (no WASM) on stories260K.

import { readFileSync } from "node:fs";
import { getLlama, LlamaLogLevel, type Token as LlamaToken } from "node-llama-cpp";
import { nodeLlamaCppGreedyRuns } from "./nodeLlamaCppTarget.js";
import { BuiltinTarget, type BuiltinOptions } from "../src/targets/builtin.js";
import { defaultModels } from "../src/defaultModels.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { bigModel } from "./bigModel.js";
import { ThreadPool } from "../src/engine/wasm/threadPool.js";
import { kernelModule, useWasmKernels, WasmMatrix } from "../src/engine/wasm/wasmMatrix.js";
import { sharedFile } from "../test/support/sharedData.js";

const argv = process.argv.slice(2);
const args = new Set(argv);
const threadsArg = argv[argv.indexOf("--threads") + 1];
const THREADS = args.has("--threads") ? threadsArg.split(",").map(Number) : [1, 2];
const STORIES = sharedFile("models", "stories260K.gguf");
const KS = [1, 2, 4, 8, 16];
const CONTEXT = 512;
const CACHE_LENGTHS = [16, 256, 1024, 4096];

interface Result {
  tps: number; // greedy tokens/s
  pass: Map<number, number>; // k -> ms per k-token pass (wall clock)
  cpu: Map<number, number>; // k -> ms of the process's CPU time per k-token pass
  tokens: number[]; // the greedy tokens (to check both engines agree)
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const load = (): string => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

function argmax(v: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[off + i] > v[off + best]) best = i;
  return best;
}

// ---- our engine ----

// The k tokens of a k-token pass after the 16-token prefix: the run's tokens from position 16 on,
// repeated when the run is shorter than 16 + k (the 100M models generate only 16), so that a
// k-token pass always holds k tokens.
function passTokens(all: number[], k: number): number[] {
  const rest = all.slice(16);
  if (rest.length === 0) throw new Error("bench:engine: the prompt and its greedy tokens are shorter than the 16-token prefix");
  return Array.from({ length: k }, (_, i) => rest[i % rest.length]);
}

async function runOurs(path: string, options: BuiltinOptions, js: boolean, prompt: number[], nGen: number, reps: number, passReps: number): Promise<Result> {
  useWasmKernels(!js);
  const target = await BuiltinTarget.load(path, { contextSize: CONTEXT, ...options });
  useWasmKernels(true);
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
    const pass = new Map<number, number>(), cpu = new Map<number, number>();
    const all = [...prompt, ...tokens];
    const prefix = all.slice(0, 16);
    for (const k of KS) {
      const batch = passTokens(all, k);
      e.truncate(0);
      e.forward(prefix, { logits: "none" });
      const ms: number[] = [], cpuMs: number[] = [];
      for (let r = -1; r < passReps; r++) { // r = -1: warm-up, not timed
        const c0 = process.cpuUsage().user, t0 = performance.now();
        const { logits } = e.forward(batch); // logits of every position, as verification needs
        for (let t = 0; t < k; t++) argmax(logits, t * V, V);
        if (r >= 0) ms.push(performance.now() - t0), cpuMs.push((process.cpuUsage().user - c0) / 1000);
        e.truncate(16);
      }
      pass.set(k, median(ms));
      cpu.set(k, median(cpuMs));
    }
    return { tps: (nGen * 1000) / median(times), pass, cpu, tokens };
  } finally {
    await target.dispose();
  }
}

// ---- node-llama-cpp ----

async function runLlamaCpp(path: string, threads: number, prompt: number[], nGen: number, reps: number, passReps: number, ourTokens: number[]): Promise<Result> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: CONTEXT, sequences: 1, threads });
  const seq = ctx.getSequence();
  try {
    const { ms: times, tokens } = await nodeLlamaCppGreedyRuns(seq, prompt, nGen, reps);
    const pass = new Map<number, number>(), cpu = new Map<number, number>();
    const all = [...prompt, ...ourTokens];
    for (const k of KS) {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(all.slice(0, 16) as LlamaToken[]);
      const batch = passTokens(all, k).map((t) => [t, { generateNext: { token: true, options: { temperature: 0 } } }]);
      const ms: number[] = [], cpuMs: number[] = [];
      for (let r = -1; r < passReps; r++) { // r = -1: warm-up, not timed
        const c0 = process.cpuUsage().user, t0 = performance.now();
        await seq.controlledEvaluate(batch as never);
        if (r >= 0) ms.push(performance.now() - t0), cpuMs.push((process.cpuUsage().user - c0) / 1000);
        await seq.eraseContextTokenRanges([{ start: 16, end: 16 + k }]);
      }
      pass.set(k, median(ms));
      cpu.set(k, median(cpuMs));
    }
    return { tps: (nGen * 1000) / median(times), pass, cpu, tokens };
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

// ---- pass table ----

const rows: string[] = [];
const cpuRows: string[] = [];
function row(model: string, engine: string, r: Result, same: string): void {
  const cells = (m: Map<number, number>) => KS.map((k) => (k === 1 ? `${m.get(1)!.toFixed(2)}` : `${m.get(k)!.toFixed(2)} (${(m.get(k)! / (k * m.get(1)!)).toFixed(2)})`));
  rows.push(`| ${model} | ${engine} | ${r.tps.toFixed(0)} | ${cells(r.pass).join(" | ")} | ${same} |`);
  if (/threads 1$/.test(engine)) cpuRows.push(`| ${model} | ${engine} | ${cells(r.cpu).join(" | ")} |`);
}

interface Variant {
  name: string;
  options: BuiltinOptions;
  js?: boolean; // the JS kernels instead of WASM
}

async function bench(label: string, path: string, nGen: number, reps: number, passReps: number, variants: Variant[]): Promise<void> {
  const probe = await BuiltinTarget.load(path, { contextSize: CONTEXT });
  const prompt = probe.tokenize("Once upon a time", true);
  await probe.dispose();
  let reference: number[] | undefined;
  for (const threads of THREADS) {
    for (const v of variants) {
      if (v.js && threads > 1) continue; // the JS kernels run on the main thread only
      const ours = await runOurs(path, { ...v.options, threads }, v.js ?? false, prompt, nGen, reps, passReps);
      row(label, `specdec builtin, ${v.name}, threads ${threads}`, ours, reference ? (ours.tokens.join() === reference.join() ? "yes" : "NO") : "-");
      reference ??= ours.tokens;
      console.error(`done: ${label}, ${v.name}, threads ${threads} (load ${load()})`);
    }
    const lc = await runLlamaCpp(path, threads, prompt, nGen, reps, passReps, reference!);
    const agree = lc.tokens.filter((t, i) => t === reference![i]).length;
    row(label, `node-llama-cpp, threads ${threads}`, lc, `${agree}/${nGen}`);
    console.error(`done: ${label}, node-llama-cpp threads ${threads} (load ${load()})`);
  }
}

// ---- one-token passes over a long cache ----

const contextRows: string[] = [];
async function benchContext(label: string, path: string, reps: number, options: BuiltinOptions = {}): Promise<void> {
  const maxLen = CACHE_LENGTHS[CACHE_LENGTHS.length - 1];
  const target = await BuiltinTarget.load(path, { contextSize: maxLen + 64, ...options });
  const e = target.engine, V = target.vocabSize;
  try {
    const filler = Array.from({ length: maxLen }, (_, i) => 3 + ((i * 37) % (V - 3)));
    const ms: number[] = [], cpu: number[] = [];
    e.truncate(0);
    for (const len of CACHE_LENGTHS) {
      while (e.length < len) e.forward(filler.slice(e.length, Math.min(len, e.length + e.maxBatch)), { logits: "none" });
      const times: number[] = [], cpuTimes: number[] = [];
      for (let r = -1; r < reps; r++) {
        const c0 = process.cpuUsage().user, t0 = performance.now();
        argmax(e.forward([filler[len % filler.length]], { logits: "last" }).logits, 0, V);
        if (r >= 0) times.push(performance.now() - t0), cpuTimes.push((process.cpuUsage().user - c0) / 1000);
        e.truncate(len);
      }
      ms.push(median(times));
      cpu.push(median(cpuTimes));
    }
    const share = (cpu[cpu.length - 1] - cpu[0]) / cpu[cpu.length - 1];
    contextRows.push(`| ${label} | ${options.threads ?? 1} | ${ms.map((m, i) => `${m.toFixed(2)} (${cpu[i].toFixed(2)})`).join(" | ")} | ${(share * 100).toFixed(0)}% |`);
    console.error(`done: long cache, ${label} (load ${load()})`);
  } finally {
    await target.dispose();
  }
}

// ---- the thread pool's round trip ----

function poolRoundTrip(): string {
  const module = kernelModule();
  if (!module) return "no WebAssembly";
  const m = WasmMatrix.from(GgmlType.F32, new Uint8Array(8 * 32 * 4), 8, 32, 128)!; // two 4-row panels of one chunk
  const x = new Float32Array(32), out = new Float32Array(8);
  const pool = ThreadPool.acquire(module, 2);
  const time = (threads: number): number => {
    const ms: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 2000; i++) pool.run({ memory: m.arena.memory, exports: m.arena.exports, fn: "mm_f32", args: [m.at, 1, 0, 2, 0, 128, 1, 1024, 32, 0], range: 2, work: 2 }, threads);
      ms.push(((performance.now() - t0) / 2000) * 1000);
    }
    return median(ms);
  };
  m.matMul(x, 1, out);
  const one = time(1), two = time(2);
  pool.release();
  return `a two-panel product: ${one.toFixed(2)} µs on 1 thread, ${two.toFixed(2)} µs on 2 (the round trip: ${(two - one).toFixed(2)} µs)`;
}

// ---- run ----

console.log(`node ${process.version}; greedy from "Once upon a time"; k-token pass after a 16-token prefix, logits (argmax) at all k positions; median of repeats (k-token passes: 40 on the small models, 5 on the 100M ones); load average at start ${load()}`);
const F32_ONLY: Variant[] = [{ name: "f32", options: {} }];
const target = defaultModels().target;
if (!args.has("--big-only")) {
  await bench("stories260K F32", STORIES, 256, 5, 40, args.has("--js") ? [...F32_ONLY, { name: "JS kernels", options: {}, js: true }] : F32_ONLY);
  await bench("default target F32", target, 128, 5, 40, F32_ONLY);
}
if (!args.has("--small-only")) {
  await bench("llama ~99M F32 (random)", bigModel(GgmlType.F32, "F32"), 16, 2, 5, F32_ONLY);
  await bench("llama ~99M Q8_0 (random)", bigModel(GgmlType.Q8_0, "Q8_0"), 16, 2, 5, [...F32_ONLY, { name: "activations q8", options: { activations: "q8" } }]);
}
if (!args.has("--no-context")) {
  await benchContext("default target F32", target, 15);
  if (!args.has("--small-only")) {
    await benchContext("llama ~99M Q8_0 (random)", bigModel(GgmlType.Q8_0, "Q8_0"), 5);
    await benchContext("llama ~99M Q8_0 (random), activations q8", bigModel(GgmlType.Q8_0, "Q8_0"), 5, { activations: "q8" });
  }
}
console.log("\n| model | engine | greedy tok/s | 1-token pass ms | 2-token ms (ratio to 2 x 1) | 4-token | 8-token | 16-token | greedy tokens equal to the first row's |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) console.log(r);
console.log("\nThe same passes in CPU time of the process (ms, median; one compute thread, so time lost to other processes on a loaded machine is left out):\n");
console.log("| model | engine | 1-token pass | 2-token (ratio to 2 x 1) | 4-token | 8-token | 16-token |");
console.log("|---|---|---|---|---|---|---|");
for (const r of cpuRows) console.log(r);
if (contextRows.length) {
  console.log(`\nOne-token pass after a cache of L positions, ms wall clock (CPU), median:\n\n| model | threads | ${CACHE_LENGTHS.map((l) => `L = ${l}`).join(" | ")} | growth from 16 to ${CACHE_LENGTHS[CACHE_LENGTHS.length - 1]} (CPU), share of the pass |`);
  console.log(`|---|---|${CACHE_LENGTHS.map(() => "---|").join("")}---|`);
  for (const r of contextRows) console.log(r);
}
console.log(`\nThread pool: ${poolRoundTrip()}`);
console.log(`load average at the end ${load()}`);
