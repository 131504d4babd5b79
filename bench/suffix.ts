// npm run bench:suffix [-- --backend builtin|llama.cpp --prompts N --max-tokens N --repeats N --tune --memory]
// Suffix decoding on the default model family, greedy, against plain decoding and prompt lookup
// in the same process. Workload: held-out TinyStories paragraphs as retell prompts (a paragraph,
// a blank line, its first sentence again) and continue prompts (a first sentence), each decoded
// once ("first time": the cross-request cache holds only the earlier prompts of this run), then
// all of them again ("repeat": the whole continuation is in the cache). Every repeat of the
// timing starts from an empty cache, so each timed run is the same workload.
// --tune: a grid of suffix settings on other held-out prompts (how the defaults were chosen).
// --memory: the cache's size and cost filled with the TinyStories validation head.

import { Command, Option } from "commander";
import { readFileSync } from "node:fs";
import { markdownTable, median } from "../src/compare.js";
import { defaultModels } from "../src/defaultModels.js";
import { generate, type GenerationResult } from "../src/decode/speculativeDecode.js";
import type { MethodOptionValues } from "../src/drafters/method.js";
import { SuffixDrafter, suffixMethod } from "../src/drafters/suffix.js";
import { SuffixCache } from "../src/drafters/suffixCache.js";
import { createDrafter, methodNamed } from "../src/methods.js";
import { BACKENDS, loadTarget, type Backend } from "../src/targets/loadTarget.js";
import type { Target } from "../src/targets/target.js";
import type { Token } from "../src/types.js";
import { sharedFile } from "../test/support/sharedData.js";

const opts = new Command("bench-suffix")
  .addOption(new Option("--backend <name>", "backend").choices(BACKENDS).default("builtin"))
  .option("--prompts <n>", "prompts per kind (retell, continue)", (v) => parseInt(v, 10), 6)
  .option("--max-tokens <n>", "tokens per generation", (v) => parseInt(v, 10), 128)
  .option("--repeats <n>", "timed runs of the whole workload (median per prompt kept)", (v) => parseInt(v, 10), 3)
  .option("--tune", "grid of suffix settings on the tuning prompts")
  .option("--memory", "the cache's size and cost over the validation head")
  .parse()
  .opts<{ backend: Backend; prompts: number; maxTokens: number; repeats: number; tune?: boolean; memory?: boolean }>();

const family = defaultModels();
const target = await loadTarget(opts.backend, family.target);

// Held-out paragraphs: the end of the validation head (the family's recipes hold out its last
// 5%), short enough that prompt + output fit the target's 256-token context; the last ones
// belong to bench:family. The report uses the first ones, --tune the next ones.
const paragraphs = readFileSync(sharedFile("corpora", "tinystories", "tinystories_val_head.txt"), "utf8").split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
const heldOut = paragraphs.slice(Math.floor(paragraphs.length * 0.96), -40).filter((s) => s.length >= 150 && s.length <= 330 && !s.includes("<|endoftext|>"));
const first = (s: string) => (s.match(/^.*?[.!?](\s|$)/)?.[0] ?? s.slice(0, 60)).trim();
const chosen = opts.tune ? heldOut.slice(opts.prompts, 2 * opts.prompts) : heldOut.slice(0, opts.prompts);
if (chosen.length < opts.prompts) throw new Error(`only ${chosen.length} held-out paragraphs of the right length`);
// Retell and continue prompts alternate; the repeat pass runs the same list again.
const workload = chosen.flatMap((s, i) => [
  { kind: "retell", index: i, text: `${s}\n\n${first(s)}` },
  { kind: "continue", index: i, text: first(s) },
]);

interface Config { label: string; method: string; options: MethodOptionValues; draftMax?: number }
interface Run { pass: "first time" | "repeat"; kind: string; index: number; result: GenerationResult; ms: number[]; cpuMs: number[] }

// The machine is shared: wall time depends on what else runs. CPU time of the decoding work
// (target passes after the prefill, drafting, verification bookkeeping left out) does not.
let cpuMs = 0;
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/** `obj` with the named methods' CPU time added to cpuMs (when `counts` says so). */
function metered<T extends object>(obj: T, names: readonly string[], counts: (name: string, args: unknown[]) => boolean = () => true): T {
  return new Proxy(obj, {
    get(o, prop) {
      const v = Reflect.get(o, prop, o);
      if (typeof v !== "function") return v;
      if (!names.includes(prop as string)) return v.bind(o);
      return async (...args: unknown[]) => {
        const t0 = cpuNow();
        try {
          return await v.apply(o, args);
        } finally {
          if (counts(prop as string, args)) cpuMs += cpuNow() - t0;
        }
      };
    },
  });
}
const decodePass = (name: string, args: unknown[]) => name !== "evaluate" || (args[1] as { outputs?: string } | undefined)?.outputs !== "none";

/**
 * The workload twice (first time, repeat), each config with its own drafter from an empty store,
 * `repeats` times. Configs take turns prompt by prompt, so that a change in the machine's load
 * (it is shared) shifts them alike; per prompt the median decoding time is kept.
 */
async function runWorkloads(configs: readonly Config[], t: Target): Promise<Run[][]> {
  const all: Run[][] = configs.map(() => []);
  for (let rep = 0; rep < opts.repeats; rep++) {
    console.error(`run ${rep + 1}/${opts.repeats}`);
    const drafters = await Promise.all(configs.map((c) => createDrafter(c.method, { target: t, loadModel: () => Promise.reject(new Error("no helper")), store: new Map() }, c.options)));
    const measuredTarget = metered(t, ["evaluate", "keep", "truncate"], decodePass);
    let i = 0;
    for (const pass of ["first time", "repeat"] as const) {
      for (const p of workload) {
        for (const [k, c] of configs.entries()) {
          cpuMs = 0;
          const drafter = metered(drafters[k], ["propose", "observe"]);
          const result = await generate(measuredTarget, drafter, { prompt: p.text, maxTokens: opts.maxTokens, draftMax: c.draftMax ?? methodNamed(c.method).defaultDraftMax });
          const runs = all[k];
          if (rep === 0) runs.push({ pass, kind: p.kind, index: p.index, result, ms: [], cpuMs: [] });
          else if (runs[i].result.tokens.join() !== result.tokens.join()) throw new Error(`${c.label}: run ${rep + 1} differs from run 1`);
          runs[i].ms.push(result.stats.decodeMs);
          runs[i].cpuMs.push(cpuMs);
        }
        i++;
      }
    }
    for (const [k, d] of drafters.entries()) {
      if (rep === opts.repeats - 1 && d instanceof SuffixDrafter) console.error(`  ${configs[k].label}: ${d.describe()}`);
      await d.dispose?.();
    }
  }
  return all;
}

interface Row { tau: number; tps: number; cpuTps: number; draftShare: number; identical: boolean; byPos: number[]; meanTokens: number; prompts: number }

function summarize(runs: Run[], reference: Run[] | undefined, pass: string, kind: string): Row {
  let decided = 0, calls = 0, tokens = 0, ms = 0, cpu = 0, draftMs = 0, decodeMs = 0, prompts = 0, identical = true;
  const pos: { d: number; a: number }[] = [];
  for (const [i, r] of runs.entries()) {
    if (r.pass !== pass || r.kind !== kind) continue;
    const s = r.result.stats;
    decided += s.decidedTokens; calls += s.targetCalls; tokens += s.generatedTokens; ms += median(r.ms); cpu += median(r.cpuMs); prompts++;
    draftMs += s.draftMs; decodeMs += s.decodeMs;
    s.acceptanceByPosition.forEach((x, j) => { pos[j] ??= { d: 0, a: 0 }; pos[j].d += x.drafted; pos[j].a += x.accepted; });
    if (reference) identical &&= reference[i].result.tokens.join() === r.result.tokens.join();
  }
  return { tau: decided / calls, tps: (tokens * 1000) / ms, cpuTps: (tokens * 1000) / cpu, draftShare: draftMs / decodeMs, identical, byPos: pos.map((x) => x.a / x.d), meanTokens: tokens / prompts, prompts };
}

const GROUPS = [["first time", "retell"], ["first time", "continue"], ["repeat", "retell"], ["repeat", "continue"]] as const;

async function table(configs: readonly Config[]): Promise<void> {
  const results = (await runWorkloads(configs, target)).map((runs, k) => ({ c: configs[k], runs }));
  const reference = results[0].runs; // plain decoding
  for (const [pass, kind] of GROUPS) {
    const base = summarize(reference, undefined, pass, kind);
    const rows = results.map(({ c, runs }) => {
      const r = summarize(runs, reference, pass, kind);
      return [c.label, r.tau.toFixed(2), r.byPos.slice(0, 8).map((x) => x.toFixed(2)).join(" ") || "-", r.tps.toFixed(0), `${(r.tps / base.tps).toFixed(2)}x`, `${(r.cpuTps / base.cpuTps).toFixed(2)}x`, `${(100 * r.draftShare).toFixed(0)}%`, r.identical ? "yes" : "NO"];
    });
    console.log(`\n### ${kind} prompts, ${pass} (${base.prompts} prompts, ${base.meanTokens.toFixed(0)} tokens generated on average before the end of the story)\n`);
    console.log(markdownTable(["method", "tau", "accept by position", "tok/s", "speedup vs none (wall)", "speedup vs none (CPU)", "drafting time", "same tokens as none"], rows));
  }
}

const trees = target.capabilities.treeAttention;
if (!opts.memory) console.log(`${opts.backend} engine, ${family.target}; ${opts.prompts} held-out paragraphs (${opts.tune ? "tuning set" : "report set"}) as retell and continue prompts, each twice; ${opts.maxTokens} tokens; median of ${opts.repeats} runs of the workload; greedy; node ${process.version}`);

if (opts.memory) await memory();
else if (opts.tune) {
  const configs: Config[] = [{ label: "none", method: "none", options: {} }];
  for (const draftMax of [4, 8, 16])
    for (const suffixSpecFactor of [1, 2])
      for (const candidates of trees ? [1, 4] : [1]) configs.push({ label: `suffix k=${draftMax} f=${suffixSpecFactor} c=${candidates}`, method: "suffix", options: { suffixSpecFactor, candidates }, draftMax });
  await table(configs);
} else {
  const d = suffixMethod.options;
  await table([
    { label: "none", method: "none", options: {} },
    { label: "prompt-lookup (defaults: k=2, chain)", method: "prompt-lookup", options: {} },
    ...(trees ? [{ label: "prompt-lookup c=4 (k=2)", method: "prompt-lookup", options: { candidates: 4 } }] : []),
    { label: "prompt-lookup c=4 k=8", method: "prompt-lookup", options: { candidates: trees ? 4 : 1 }, draftMax: 8 },
    { label: `suffix (defaults: k=${suffixMethod.defaultDraftMax}, f=${d.suffixSpecFactor.default}, c=${trees ? d.candidates.default : "1 (chain)"})`, method: "suffix", options: {} },
    { label: "suffix without the cache", method: "suffix", options: { suffixCacheTokens: 0 } },
  ]);
}
await target.dispose();
process.exit(0);

/**
 * Fill caches with TinyStories paragraphs (one document each) and time it: the validation head
 * at two caps, then the training and validation heads three times over into the default cap
 * (evicting all along); then draft from each cache.
 */
async function memory(): Promise<void> {
  const read = (name: string) => readFileSync(sharedFile("corpora", "tinystories", name), "utf8").split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
  const val = paragraphs.map((p) => target.tokenize(p));
  const both = [...read("tinystories_train_head_smallGPT.txt").map((p) => target.tokenize(p)), ...val];
  const count = (docs: readonly Token[][]) => docs.reduce((n, d) => n + d.length, 0);
  console.log(`\nvalidation head: ${val.length} paragraphs, ${count(val)} tokens; training + validation heads: ${both.length} paragraphs, ${count(both)} tokens (the default target's tokenizer)\n`);
  const rows: string[][] = [];
  for (const [cap, docs, label] of [
    [count(val), val, "validation head"],
    [Math.floor(count(val) / 4), val, "validation head"],
    [suffixMethod.options.suffixCacheTokens.default as number, [...both, ...both, ...both], "both heads, 3 times"],
  ] as const) {
    const cache = new SuffixCache(cap);
    let worst = 0;
    const t0 = performance.now();
    for (const d of docs) {
      const t = performance.now();
      cache.add(d);
      worst = Math.max(worst, performance.now() - t);
    }
    const ms = performance.now() - t0;
    const s = cache.stats();
    // Draft as a generation would: a request made of each of 200 paragraphs' first half (twice:
    // the first round warms the code up).
    let proposeMs = 0;
    for (const d of [...val.slice(0, 200), ...val.slice(0, 200)]) {
      const half = d.slice(0, Math.ceil(d.length / 2));
      const drafter = new SuffixDrafter(cache);
      drafter.begin({ prompt: half, sampling: { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0 }, rng: { next: () => 0 } });
      const t = performance.now();
      drafter.propose(half, { maxNodes: 24, maxDepth: 8 });
      proposeMs = d === val[0] ? 0 : proposeMs + performance.now() - t;
    }
    rows.push([label, String(cap), String(s.tokens), String(s.documents), String(s.evicted), String(s.segments), (s.bytes / 2 ** 20).toFixed(1), (s.bytes / s.tokens).toFixed(0), ((ms * 1000) / count(docs)).toFixed(2), worst.toFixed(0), ((proposeMs * 1000) / 200).toFixed(0)]);
  }
  console.log(markdownTable(["documents added", "cap (tokens)", "tokens held", "documents held", "evicted", "segments", "MiB", "bytes / token", "add µs / token (incl. eviction)", "slowest add (ms)", "propose µs"], rows));
}
