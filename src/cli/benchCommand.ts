// `specdec bench`: every method on one target and a prompts file, Spec-Bench style, plain
// decoding first as the reference, in one process; a table per category (or one JSON object),
// an optional SVG chart, and the peers measured in the same run where they are available.
import { writeFileSync } from "node:fs";
import { Command, Option } from "commander";
import cliProgress from "cli-progress";
import { markdownTable } from "../compare.js";
import { DEFAULT_MAX_TOKENS } from "../decode/speculativeDecode.js";
import { SpecdecError } from "../errors.js";
import { methodNamed, methods } from "../methods.js";
import { bestCost } from "../planner/passCost.js";
import { readPromptsFile } from "../bench/promptsFile.js";
import { requireIdentical, runBench, type BenchMethod, type BenchResult } from "../bench/runBench.js";
import { benchSvg } from "../bench/svgChart.js";
import { runPeers, type PeerResult } from "../bench/peers/runPeers.js";
import { cpus } from "node:os";
import { methodNeeds, openPassCost, openTarget } from "../session.js";
import { addTargetOptions, targetSpecFrom, type TargetCliOptions } from "./targetOptions.js";
import { addMethodOptions, flagOf, methodOptionsFrom } from "./methodOptions.js";
import { integer, real } from "./options.js";

interface BenchCliOptions extends TargetCliOptions {
  prompts: string;
  methods?: string;
  maxTokens: number;
  repeats: number;
  temperature: number;
  seed: number;
  draftMax?: number;
  planner: "auto" | "fixed";
  refreshCost?: boolean;
  json?: boolean;
  svg?: string;
  peers: "auto" | "none";
  control?: boolean;
  [methodOption: string]: unknown;
}

export function addBenchCommand(cli: Command): void {
  const cmd = cli
    .command("bench")
    .description("measure every method against plain decoding on one target and a prompts file (JSON Lines: {\"prompt\"} or {\"turns\"}, optional \"category\"), in one process")
    .requiredOption("--prompts <file>", "prompts, one JSON object per line")
    .option("--methods <list>", `comma-separated methods (default: every method this target can run: ${methods().map((m) => m.name).join(", ")}, minus blind)`)
    .option("--max-tokens <n>", "tokens per generation", integer(1, 1_000_000), DEFAULT_MAX_TOKENS)
    .option("--repeats <n>", "timed runs per prompt (the median is kept)", integer(1, 1000), 1)
    .option("--temperature <t>", "0 = greedy (outputs checked against plain decoding); > 0 samples", real(0, 100), 0)
    .option("--seed <s>", "sampling seed", integer(0, 2 ** 32 - 1), 0)
    .option("--draft-max <k>", "a fixed draft length for every method (default: the cost model chooses per step)", integer(0, 256))
    .addOption(new Option("--planner <how>", "auto: the cost model picks each step's budget; fixed: each method's default draft length").choices(["auto", "fixed"]).default("auto"))
    .option("--refresh-cost", "measure the target's pass costs again (and those with hidden states, for methods that read them)")
    .option("--control", `also run plain decoding a second time as method "control", interleaved like the others: its speedup over "none" is this run's noise floor`)
    .option("--json", "print one JSON object instead of tables")
    .option("--svg <file>", "write a chart (speedup per method and category, the pass-cost curve)")
    .addOption(new Option("--peers <which>", "auto: also measure node-llama-cpp's loop with its predictors and llama.cpp's native programs (where `npm run bench:anchors` built them) on the same file and prompts; none: only specdec").choices(["auto", "none"]).default("auto"));
  addMethodOptions(addTargetOptions(cmd, { model: "target model (GGUF); default: the default family in models/ (with its draft and heads)" })).action(runBenchCommand);
}

async function runBenchCommand(o: BenchCliOptions): Promise<void> {
  const prompts = readPromptsFile(o.prompts);
  const threads = o.threads === "auto" ? undefined : o.threads;
  const given = o.methods?.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (given) for (const name of given) methodNamed(name);
  if (given && given.length === 0) throw new SpecdecError("--methods lists no method");
  // Method options from the flags, each passed to the methods that take it.
  const optionsFor = (method: string) => {
    const own = methodNamed(method).options;
    return methodOptionsFrom(method, Object.fromEntries(Object.keys(own).map((k) => [k, o[k]])));
  };
  const needs = [...new Set((given ?? []).flatMap((m) => methodNeeds(m, optionsFor(m))))];
  const opened = await openTarget(targetSpecFrom(o), given ? { name: given.join(", "), needs } : undefined);
  const { target } = opened;
  try {
    const names = given ?? methods().map((m) => m.name).filter((m) => m !== "blind" && runnable(m));
    function runnable(m: string): boolean {
      if (methodNeeds(m, optionsFor(m)).some((c) => !target.capabilities[c])) return false;
      const files = Object.entries(methodNamed(m).options).filter(([, s]) => s.kind === "file");
      return files.every(([k, s]) => o[k] !== undefined || (opened.family !== undefined && s.familyFile !== undefined));
    }
    const greedy = o.temperature === 0;
    const tty = process.stderr.isTTY && !o.json;
    const bar = tty ? new cliProgress.SingleBar({ format: "{bar} {value}/{total} {what}", hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined;
    if (tty) process.stderr.write("measuring the target's pass costs (cached per model file, backend and machine)…\n");
    const passCost = await openPassCost(opened, { read: greedy ? "argmax" : "probabilities", refresh: o.refreshCost });
    const benchMethods: BenchMethod[] = names.map((m) => ({ label: m, method: m, options: optionsFor(m), planner: { draftMax: o.draftMax, fixed: o.planner === "fixed" } }));
    bar?.start((benchMethods.filter((m) => m.method !== "none").length + (o.control ? 2 : 1)) * new Set(prompts.map((p) => p.category)).size, 0, { what: "none" });
    let results: BenchResult[];
    try {
      results = await runBench(opened, {
        prompts,
        methods: benchMethods,
        maxTokens: o.maxTokens,
        repeats: o.repeats,
        sampling: { temperature: o.temperature, seed: o.seed },
        passCost,
        refreshCost: o.refreshCost,
        control: o.control,
        onProgress: (done, _total, what) => bar?.update(done, { what }),
      });
    } finally {
      bar?.stop();
    }
    let peers: PeerResult[] = [];
    if (o.peers === "auto") {
      const plain = new Map(results.filter((r) => r.method === "none").map((r) => [r.category, r]));
      const categories = new Map([...new Set(prompts.map((p) => p.category))].map((c) => [c, { prompts: prompts.filter((p) => p.category === c).map((p) => p.text), plainTokensPerSecond: plain.get(c)!.tokensPerSecond, plainTokens: plain.get(c)!.tokensPerPrompt }]));
      const draftModel = (o.draftModel as string | undefined) ?? opened.family?.draft;
      const threadCounts = threads !== undefined ? [threads] : [...new Set([1, cpus().length])];
      if (tty) process.stderr.write("measuring the peers on the same file and prompts…\n");
      peers = await runPeers({ model: opened.path, draftModel, categories, maxTokens: o.maxTokens, contextSize: target.contextSize, threads: threadCounts, onProgress: (what) => tty && process.stderr.write(`\r\x1b[K${what}`) });
      if (tty) process.stderr.write("\r\x1b[K");
    }
    const passCostMs = Object.fromEntries([1, 2, 4, 8, 16].filter((n) => n <= passCost.sizes[passCost.sizes.length - 1]).map((n) => [String(n), bestCost(passCost, n).ms]));
    if (o.svg) writeFileSync(o.svg, benchSvg(results, passCost, `specdec bench: ${opened.path} on ${target.backend}`));
    if (o.json) {
      const threadsUsed = Object.keys(passCost.ms).map(Number).filter((t) => t > 0);
      const json = {
        model: opened.path,
        backend: target.backend,
        threads: o.threads === "auto" ? (threadsUsed.length ? { auto: threadsUsed } : "auto") : threads,
        passCost: passCostMs,
        results: results.map((r) => ({ method: r.method, category: r.category, tau: r.tau, tokensPerSecond: r.tokensPerSecond, speedup: r.speedup, identical: r.identical ?? null, ...(r.differing ? { differing: r.differing } : {}), acceptanceByPosition: r.acceptanceByPosition, meanDraft: r.meanDraft, nodesPerPass: r.nodesPerPass, draftShare: r.draftShare, bound: r.bound, planner: r.planner, ...(r.drafterState ? { drafterState: r.drafterState } : {}) })),
        peers,
      };
      process.stdout.write(JSON.stringify(json) + "\n");
    } else {
      printTables(opened.path, target.kernels ? `${target.backend} (${target.kernels})` : target.backend, o, results, passCostMs, prompts.length, peers);
    }
    if (greedy) requireIdentical(results);
  } finally {
    await target.dispose();
  }
}

function printTables(model: string, backend: string, o: BenchCliOptions, results: readonly BenchResult[], passCost: Record<string, number>, nPrompts: number, peers: readonly PeerResult[]): void {
  const f = (x: number, d = 2) => x.toFixed(d);
  console.log(`specdec bench: ${model}, ${backend} backend, threads ${o.threads}; ${nPrompts} prompts × ${o.maxTokens} tokens, median of ${o.repeats}; ${o.temperature === 0 ? "greedy" : `temperature ${o.temperature}`}; budgets: ${o.draftMax !== undefined ? `fixed ${flagOf("draftMax")} ${o.draftMax}` : o.planner === "fixed" ? "fixed (method defaults)" : "cost model"}${results.some((r) => r.method === "draft") ? `; helper models: ${o.helperBackend}` : ""}`);
  console.log(`pass cost c(n) in ms: ${Object.entries(passCost).map(([n, ms]) => `${n}: ${f(ms)}`).join(", ")} — c(n) / (n c(1)): ${Object.entries(passCost).map(([n, ms]) => `${n}: ${f(ms / (Number(n) * passCost["1"]))}`).join(", ")}`);
  for (const category of new Set(results.map((r) => r.category))) {
    console.log(`\n### ${category}`);
    const rows = results.filter((r) => r.category === category).map((r) => [
      r.method, f(r.tau), r.acceptanceByPosition.slice(0, 6).map((x) => f(x)).join(" ") || "-", f(r.tokensPerSecond, 0), `${f(r.speedup)}x`, `${f(r.bound)}x`, f(r.meanDraft), `${f(100 * r.draftShare, 0)}%`, identicalCell(r),
    ]);
    console.log(markdownTable(["method", "tau", "accept by position", "tok/s", "speedup", "bound tau/c", "mean budget", "drafting", "identical"], rows));
    for (const r of results.filter((x) => x.category === category && x.drafterState)) console.log(`${r.method}: ${r.drafterState} (state kept across this run's prompts and repeats, in order)`);
    const ps = peers.filter((p) => p.category === category);
    if (ps.length > 0) {
      console.log(`\npeers on the same file and prompts (speedup over specdec's plain decoding above):`);
      console.log(markdownTable(["peer", "settings", "tok/s", "speedup", "acceptance"], ps.map((p) => [p.peer, p.settings ?? "", f(p.tokensPerSecond, 0), `${f(p.speedup)}x`, p.acceptance === undefined ? "-" : f(p.acceptance)])));
    }
  }
}

/** "yes", "near-tie" (every differing output first differs at a near-tie: llama.cpp's rounding), or "NO". */
function identicalCell(r: BenchResult): string {
  if (r.identical === undefined) return "-";
  if (r.identical) return "yes";
  const d = r.differing;
  return d && d.nearTies === d.outputs ? `near-tie (${d.outputs})` : "NO";
}
