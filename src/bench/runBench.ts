// `specdec bench` as a library: every method in one process on the same loaded target, plain
// decoding first as the reference (its tokens must be reproduced at temperature 0, its speed is
// the baseline), per method and prompt category: tau, acceptance per position, tokens/s, speedup,
// identical-to-plain, drafting share, mean budget, and the bound tau / c(pass) — the speedup a
// method would reach if drafting were free, given what its passes cost on this target.

import { summarizeRuns } from "../compare.js";
import { DEFAULT_MAX_TOKENS, generate, type GenerationResult } from "../decode/speculativeDecode.js";
import type { Drafter } from "../drafters/drafter.js";
import { FixedPlanner, type Planner } from "../planner/planner.js";
import type { MethodOptionValues } from "../drafters/method.js";
import { SpecdecError } from "../errors.js";
import { bestCost, type PassCostTable } from "../planner/passCost.js";
import type { SamplingSettings } from "../sampling/samplingSettings.js";
import { openDrafter, openPassCost, openPlanner, readsHidden, type OpenedTarget, type PlannerSpec } from "../session.js";
import type { Token } from "../types.js";
import type { Verifier } from "../verifiers/verifier.js";
import type { BenchPrompt } from "./promptsFile.js";

/**
 * The cost of an n-token pass of a method's table over plain decoding's one-token pass. A
 * hidden-state table is measured apart from the plain one (minutes later, on a machine whose speed
 * drifts by tens of percent): its own c(n) / c(1), times its one-token overhead over the plain
 * table, which reading hidden states cannot make less than 1.
 */
export function passCostOverPlain(table: PassCostTable, plain: PassCostTable, n: number): number {
  const own1 = bestCost(table, 1).ms;
  return (bestCost(table, n).ms / own1) * Math.max(1, own1 / bestCost(plain, 1).ms);
}

export interface BenchMethod {
  /** The name as given (--methods), e.g. "draft" or "prompt-lookup". */
  readonly label: string;
  readonly method: string;
  readonly options?: MethodOptionValues;
  /** How its budget is chosen (default: the cost model). */
  readonly planner?: PlannerSpec;
  /** Its verifier (default greedy at temperature 0, rejection sampling otherwise); a lossy one shows as not identical. */
  readonly verifier?: Verifier;
}

export interface BenchSettings {
  readonly prompts: readonly BenchPrompt[];
  /** The methods to measure; "none" is measured first whether listed or not. */
  readonly methods: readonly BenchMethod[];
  /** Tokens per generation. Default 128. */
  readonly maxTokens?: number;
  /** Timed runs per prompt (the median kept). Default 1. */
  readonly repeats?: number;
  readonly sampling?: Partial<SamplingSettings>;
  /** The target's pass costs (for the bound and the cost model). */
  readonly passCost: PassCostTable;
  /**
   * Also run plain decoding a second time as method "control", interleaved like the others: its
   * speedup over "none" is the run's noise floor (the two do the same work). Default false.
   */
  readonly control?: boolean;
  /** Measure the hidden-state pass costs again (once, for the first method that reads them), as the caller did passCost. Default false. */
  readonly refreshCost?: boolean;
  /** Called after each method × category: (done, total, what). */
  readonly onProgress?: (done: number, total: number, what: string) => void;
}

export interface BenchResult {
  readonly method: string;
  readonly category: string;
  readonly tau: number;
  readonly tokensPerSecond: number;
  /** tokensPerSecond over plain decoding's on the same prompts, in this run. */
  readonly speedup: number;
  /** Whether every output equals plain decoding's (greedy runs; sampled runs: undefined). */
  readonly identical: boolean | undefined;
  /** Outputs that differ from plain decoding's, and how many of them first differ at a near-tie (llama.cpp's rounding). */
  readonly differing?: { outputs: number; nearTies: number };
  readonly acceptanceByPosition: number[];
  /** Tokens of each prompt's output (end of generation excluded), in the category's prompt order. */
  readonly tokensPerPrompt: number[];
  /** Mean guesses the planner allowed per step. */
  readonly meanDraft: number;
  /** Guesses checked per target pass. */
  readonly nodesPerPass: number;
  /** Share of decoding time spent drafting. */
  readonly draftShare: number;
  /** tau / (c(1 + nodesPerPass) / c(1)): the speedup if drafting cost nothing. */
  readonly bound: number;
  readonly planner: string;
  /** The drafter's own account after the category (e.g. a cross-request cache's size and hits), when it gives one. */
  readonly drafterState?: string;
}

/** The label of plain decoding run again as a method (BenchSettings.control). */
export const CONTROL = "control";

/** Measure every method over the prompts, by category; plain decoding's outputs are the reference. */
export async function runBench(opened: OpenedTarget, s: BenchSettings): Promise<BenchResult[]> {
  const categories = [...new Set(s.prompts.map((p) => p.category))];
  const byCategory = new Map(categories.map((c) => [c, s.prompts.filter((p) => p.category === c).map((p) => p.text)]));
  const plain: BenchMethod = { label: "none", method: "none" };
  const methods = [plain, ...(s.control ? [{ label: CONTROL, method: "none" }] : []), ...s.methods.filter((m) => m.method !== "none")];
  const greedy = (s.sampling?.temperature ?? 0) === 0;
  const results: BenchResult[] = [];
  const reference = new Map<string, Token[][]>();
  const baseline = new Map<string, number>();
  // Rounds of repeats, and in each round every method on a prompt before the next prompt: a
  // machine that slows down or speeds up during the run (a shared VM does, by tens of percent
  // within seconds) then weighs on all methods alike.
  const repeats = s.repeats ?? 1;
  const total = methods.length * categories.length * repeats;
  let done = 0;
  const cells: { m: BenchMethod; category: string; drafter: Drafter; planner: Planner; table: PassCostTable; runs: GenerationResult[][] }[] = [];
  const drafters: Drafter[] = [];
  let refreshHidden = s.refreshCost === true;
  try {
    for (const m of methods) {
      const drafter = await openDrafter(opened, m.method, m.options ?? {});
      drafters.push(drafter);
      // A method that reads hidden states pays for them in every pass (its own table; plain decoding is c(1) of the plain table).
      const table = readsHidden(m.method) ? await openPassCost(opened, { read: greedy ? "argmax" : "probabilities", hidden: true, refresh: refreshHidden }) : s.passCost;
      if (table !== s.passCost) refreshHidden = false;
      for (const category of categories) {
        // One planner per method and category: it learns that category's acceptance from its prior.
        const planner = await openPlanner(opened, m.method, { ...m.planner, read: greedy ? "argmax" : "probabilities" });
        cells.push({ m, category, drafter, planner, table, runs: byCategory.get(category)!.map(() => []) });
      }
    }
    for (const c of cells) {
      // Untimed warm-up (JIT, caches) with each method, so the one measured first pays no more than the others.
      const first = byCategory.get(c.category)![0];
      await generate(opened.target, c.drafter, { prompt: first, maxTokens: Math.min(16, s.maxTokens ?? 16), planner: new FixedPlanner(c.m.method === "none" ? 0 : 2, 8), sampling: s.sampling, verifier: c.m.verifier });
    }
    for (let r = 0; r < repeats; r++) {
      for (const category of categories) {
        const here = cells.filter((c) => c.category === category);
        for (const [i, prompt] of byCategory.get(category)!.entries())
          for (const c of here) c.runs[i].push(await generate(opened.target, c.drafter, { prompt, maxTokens: s.maxTokens ?? DEFAULT_MAX_TOKENS, planner: c.planner, sampling: s.sampling, verifier: c.m.verifier }));
        for (const c of here) s.onProgress?.(++done, total, `${c.m.label} / ${c.category}`);
      }
    }
    for (const { m, category, drafter, planner, table, runs } of cells) {
      const r = await summarizeRuns(opened.target, byCategory.get(category)!, runs, greedy && m !== plain ? reference.get(category) : undefined);
      if (m === plain) {
        reference.set(category, r.results.map((x) => x.tokens));
        baseline.set(category, r.tokensPerSecond);
      }
      const calls = r.results.reduce((a, x) => a + x.stats.targetCalls, 0);
      const budget = r.results.reduce((a, x) => a + x.stats.meanBudget * x.stats.targetCalls, 0);
      const relCost = passCostOverPlain(table, s.passCost, 1 + r.nodesPerPass);
      results.push({
        method: m.label,
        category,
        tau: r.tau,
        tokensPerSecond: r.tokensPerSecond,
        speedup: r.tokensPerSecond / baseline.get(category)!,
        identical: greedy ? (m === plain ? true : r.sameAsReference === true) : undefined,
        ...(r.differing ? { differing: { outputs: r.differing, nearTies: r.nearTies ?? 0 } } : {}),
        acceptanceByPosition: r.acceptanceByPosition,
        tokensPerPrompt: r.results.map((x) => x.tokens.length),
        meanDraft: calls > 0 ? budget / calls : 0,
        nodesPerPass: r.nodesPerPass,
        draftShare: r.draftShare,
        bound: r.tau / relCost,
        planner: planner.name,
        drafterState: drafter.describe?.(),
      });
    }
  } finally {
    for (const d of drafters) await d.dispose?.();
  }
  return results;
}

/**
 * Throw a one-line error naming the methods whose greedy outputs differ from plain decoding
 * other than at near-ties (where llama.cpp's batched and one-token passes may round apart).
 */
export function requireIdentical(results: readonly BenchResult[]): void {
  const bad = results.filter((r) => r.identical === false && (r.differing === undefined || r.differing.nearTies < r.differing.outputs)).map((r) => `${r.method} (${r.category})`);
  if (bad.length > 0) throw new SpecdecError(`output differs from plain decoding: ${bad.join(", ")} — speculation must never change greedy output`);
}
