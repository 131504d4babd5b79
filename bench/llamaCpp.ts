// The libllama binding against libllama itself and its peers, in one process per model:
//   - per-call time of a 1-, 8- and 16-token pass (argmax at every position, as greedy
//     verification reads it) through LlamaCppTarget.evaluate against the llama_decode call alone
//     on the same context and batch (interleaved, medians): what the binding adds;
//   - plain greedy tokens/s: the binding's loop, node-llama-cpp's own loop, and llama.cpp's
//     `llama-bench` tg built from the bundled source (`npm run bench:anchors`), same file.
// At 1 and 2 threads. Models: stories260K, the default target, a ~100M Q8_0 random llama.
//
//   npm run bench:llamacpp [-- --quick] [--one-thread] [--small-only]

import { spawnSync } from "node:child_process";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { nodeLlamaCppGreedyRuns } from "./nodeLlamaCppTarget.js";
import { defaultModels } from "../src/defaultModels.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import type { Token } from "../src/types.js";
import { sharedFile } from "../test/support/sharedData.js";
import { anchorBinary } from "./anchors.js";
import { bigModel } from "./bigModel.js";

const quick = process.argv.includes("--quick");
const threadCounts = process.argv.includes("--one-thread") ? [1] : [1, 2];
const smallOnly = process.argv.includes("--small-only");
const PASS_SIZES = [1, 8, 16];
const GEN = 128;
const CONTEXT = 512;
const PREFIX = 16;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

interface Row {
  model: string;
  threads: number;
  /** Wall ms, and process CPU ms (with one thread all the work is on this thread: robust on a busy machine). */
  pass: Map<number, { binding: number; decode: number; bindingCpu: number; decodeCpu: number }>;
  tps: { binding: number; bindingF16: number; nodeLlamaCpp: number; llamaBench?: number };
}

/** Per-call pass times through the binding and through llama_decode alone, interleaved. */
async function passTimes(target: LlamaCppTarget, seq: Token[], reps: number): Promise<Row["pass"]> {
  const out: Row["pass"] = new Map();
  const { llama_decode, llama_memory_seq_rm } = target.library.llama;
  const { ctx, mem, batch } = target.native;
  for (const k of PASS_SIZES) {
    await target.reset();
    await target.evaluate(seq.slice(0, PREFIX), { outputs: "none" });
    const tokens = seq.slice(PREFIX, PREFIX + k);
    const binding: number[] = [], decode: number[] = [], bindingCpu: number[] = [], decodeCpu: number[] = [];
    const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
    for (let r = -2; r < reps; r++) { // r < 0: warm-up, not timed
      for (let i = 0; i < k; i++) batch.setChain(i, tokens[i], PREFIX + i, true);
      batch.struct.n_tokens = k;
      let t0 = performance.now(), c0 = cpu();
      if (llama_decode(ctx, batch.struct) !== 0) throw new Error("llama_decode failed");
      const tDecode = performance.now() - t0, cDecode = cpu() - c0;
      llama_memory_seq_rm(mem, 0, PREFIX, -1);
      t0 = performance.now();
      c0 = cpu();
      await target.evaluate(tokens, { read: "argmax" });
      const tBinding = performance.now() - t0, cBinding = cpu() - c0;
      await target.truncate(PREFIX);
      if (r >= 0) {
        decode.push(tDecode);
        binding.push(tBinding);
        decodeCpu.push(cDecode);
        bindingCpu.push(cBinding);
      }
    }
    out.set(k, { binding: median(binding), decode: median(decode), bindingCpu: median(bindingCpu), decodeCpu: median(decodeCpu) });
  }
  return out;
}

/** Plain greedy tokens/s through the binding: one-token passes, argmax only. */
async function bindingGreedy(target: LlamaCppTarget, prompt: Token[], reps: number): Promise<{ tps: number; tokens: number[] }> {
  const times: number[] = [];
  let tokens: number[] = [];
  for (let r = 0; r < reps; r++) {
    await target.reset();
    await target.evaluate(prompt.slice(0, -1), { outputs: "none" });
    let tok = prompt[prompt.length - 1];
    tokens = [];
    const t0 = performance.now();
    for (let i = 0; i < GEN; i++) {
      tok = (await target.evaluate([tok], { read: "argmax" })).argmax[0] as Token;
      tokens.push(tok);
    }
    times.push(performance.now() - t0);
  }
  return { tps: (GEN * 1000) / median(times), tokens };
}

/** Plain greedy tokens/s through node-llama-cpp's own evaluation loop. */
async function nodeLlamaCppGreedy(path: string, prompt: number[], threads: number, reps: number): Promise<{ tps: number; tokens: number[] }> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, logger: () => {} });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: CONTEXT, sequences: 1, threads });
  const seq = ctx.getSequence();
  try {
    const { ms, tokens } = await nodeLlamaCppGreedyRuns(seq, prompt, GEN, reps);
    return { tps: (1000 * tokens.length) / median(ms), tokens }; // it may stop early at an end-of-generation token
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

/** llama-bench's tg (tokens/s generating GEN tokens; its KV cache is F16, it has no F32), or undefined when it is not built. */
function llamaBench(path: string, threads: number): number | undefined {
  const bin = anchorBinary("llama-bench");
  if (!bin) return undefined;
  const r = spawnSync(bin, ["-m", path, "-p", "0", "-n", String(GEN), "-t", String(threads), "-r", quick ? "2" : "5", "-fa", "off", "-o", "json"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`llama-bench failed: ${r.stderr.split("\n").slice(-3).join(" ")}`);
  return (JSON.parse(r.stdout) as { avg_ts: number }[])[0].avg_ts;
}

const rows: Row[] = [];
async function bench(label: string, path: string, passReps: number, genReps: number): Promise<void> {
  for (const threads of threadCounts) {
    const target = await LlamaCppTarget.load(path, { contextSize: CONTEXT, threads, batchThreads: threads });
    const f16 = await LlamaCppTarget.load(path, { contextSize: CONTEXT, threads, batchThreads: threads, kvCacheType: "f16" });
    try {
      const prompt = target.tokenize("Once upon a time");
      const step = (what: string) => console.error(`${label}, ${threads} thread(s): ${what}`);
      const greedy = await bindingGreedy(target, prompt, genReps);
      step("greedy");
      const greedyF16 = await bindingGreedy(f16, prompt, genReps);
      const pass = await passTimes(target, [...prompt, ...greedy.tokens] as Token[], passReps);
      step("passes");
      const peer = await nodeLlamaCppGreedy(path, prompt, threads, genReps);
      step("node-llama-cpp");
      for (const [who, tokens] of [["node-llama-cpp", peer.tokens], ["the binding with an F16 cache", greedyF16.tokens]] as const) {
        const same = tokens.filter((t, i) => t === greedy.tokens[i]).length;
        if (same !== GEN) console.error(`${label}: ${who}'s greedy tokens agree with ours on ${same} of ${GEN}`);
      }
      rows.push({ model: label, threads, pass, tps: { binding: greedy.tps, bindingF16: greedyF16.tps, nodeLlamaCpp: peer.tps, llamaBench: llamaBench(path, threads) } });
    } finally {
      await target.dispose();
      await f16.dispose();
    }
    console.error(`done: ${label}, ${threads} thread(s)`);
  }
}

await bench("stories260K (F32)", sharedFile("models", "stories260K.gguf"), quick ? 50 : 200, quick ? 3 : 7);
await bench("default target (stories-target.gguf)", defaultModels().target, quick ? 30 : 100, quick ? 3 : 5);
if (!smallOnly) await bench("llama ~100M Q8_0 (random)", bigModel(GgmlType.Q8_0, "Q8_0"), quick ? 5 : 15, 3);

const f = (x: number | undefined, d = 0) => (x === undefined ? "-" : x.toFixed(d));
console.log(`node ${process.version}; context ${CONTEXT}, flash attention off; pass times with the F32 KV cache (the default); passes after a ${PREFIX}-token prefix, argmax at every position; medians`);
console.log("\n| model | threads | clock | " + PASS_SIZES.map((k) => `${k}-token pass: binding / llama_decode ms (overhead)`).join(" | ") + " |");
console.log("|---|---|---|" + PASS_SIZES.map(() => "---").join("|") + "|");
const cell = (b: number, d: number) => `${b.toFixed(3)} / ${d.toFixed(3)} (${((b / d - 1) * 100).toFixed(1)}%)`;
for (const r of rows) {
  console.log(`| ${r.model} | ${r.threads} | wall | ` + PASS_SIZES.map((k) => cell(r.pass.get(k)!.binding, r.pass.get(k)!.decode)).join(" | ") + " |");
  if (r.threads === 1) console.log(`| ${r.model} | 1 | CPU | ` + PASS_SIZES.map((k) => cell(r.pass.get(k)!.bindingCpu, r.pass.get(k)!.decodeCpu)).join(" | ") + " |");
}
console.log("\n| model | threads | greedy tok/s: binding (F32 KV) | binding (F16 KV) | node-llama-cpp (F16 KV) | llama-bench tg (F16 KV) | binding F16 / llama-bench |");
console.log("|---|---|---|---|---|---|---|");
for (const r of rows)
  console.log(`| ${r.model} | ${r.threads} | ${f(r.tps.binding)} | ${f(r.tps.bindingF16)} | ${f(r.tps.nodeLlamaCpp)} | ${f(r.tps.llamaBench)} | ${r.tps.llamaBench ? (r.tps.bindingF16 / r.tps.llamaBench).toFixed(2) : "-"} |`);
