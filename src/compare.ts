// Same-run comparison of methods: every method decodes the same prompts on the same loaded
// target in one process, so a speedup is a ratio to plain decoding measured under the same
// conditions (machine load, JIT state, cache sizes), never to a number from another run.

import type { Drafter } from "./drafters/drafter.js";
import { DEFAULT_MAX_TOKENS, generate, type GenerateOptions, type GenerationResult } from "./decode/speculativeDecode.js";
import type { Target } from "./targets/target.js";
import type { Token } from "./types.js";

export interface MeasureOptions {
  /** Tokens per generation. Default 128 (DEFAULT_MAX_TOKENS). */
  maxTokens?: number;
  /** Timed runs per prompt; the median decoding time is kept. Default 1. */
  repeats?: number;
  /** The rest of a generation's settings (draftMax, treeNodes, sampling, verifiers). Default: generate's. */
  run?: Omit<GenerateOptions, "prompt" | "maxTokens">;
  /** Plain decoding's tokens, one array per prompt, that the method must reproduce. Default: none (no check). */
  reference?: readonly (readonly Token[])[];
}

export interface Measurement {
  /** Tokens per target pass, over all prompts. */
  tau: number;
  /** Generated tokens per second of decoding (prefill excluded), median time per prompt, summed. */
  tokensPerSecond: number;
  /** Share of decoding time spent drafting. */
  draftShare: number;
  /** Guesses (tree nodes) checked per target pass. */
  nodesPerPass: number;
  /** Acceptance rate per draft position (tree depth), over all prompts. */
  acceptanceByPosition: number[];
  /** Per prompt, the last run's result. */
  results: GenerationResult[];
  /** Whether every prompt's tokens equal `reference`; undefined when none was given. */
  sameAsReference?: boolean;
  /**
   * Of the outputs that differ from `reference`, how many first differ where the target's two
   * best tokens nearly tie (top-2 probability gap < NEAR_TIE, computed one token at a time):
   * llama.cpp's batched and one-token passes may round such a tie either way.
   */
  nearTies?: number;
  /** Outputs that differ from `reference`. */
  differing?: number;
}

/** A top-2 probability gap below this is a near-tie: batched and one-token passes may break it differently. */
export const NEAR_TIE = 2e-3;
/**
 * The same where the target rounds its products' inputs to 8 bits (llama.cpp, quantized
 * weights): there a last-bit difference in one activation can cross a rounding step of its
 * block. Measured on the 100M Q8_0 twin: plain and speculative greedy outputs of 16 prompts
 * first differed at top-2 gaps of 1.7e-4 and 2.0e-3 (docs/measurements.md).
 */
export const NEAR_TIE_ROUNDED = 1e-2;

/** The near-tie bound for a target's arithmetic. */
export function nearTieBound(target: Pick<Target, "roundsActivations">): number {
  return target.roundsActivations ? NEAR_TIE_ROUNDED : NEAR_TIE;
}

/**
 * The target's top-2 probability gap at generated position `at` (after the prompt and the first
 * `at` tokens), computed one token at a time. Resets the target's cache.
 */
export async function top2GapAt(target: Target, prompt: string | readonly Token[], tokens: readonly Token[], at: number): Promise<number> {
  const seq = [...(typeof prompt === "string" ? target.tokenize(prompt) : prompt), ...tokens.slice(0, at)];
  await target.reset();
  let d!: Float32Array;
  for (const t of seq) d = (await target.evaluate([t])).probs![0];
  await target.reset();
  let first = -Infinity, second = -Infinity;
  for (const p of d) {
    if (p > first) [first, second] = [p, first];
    else if (p > second) second = p;
  }
  return first - second;
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Decode every prompt `repeats` times with one drafter and sum the statistics. */
export async function measureMethod(target: Target, drafter: Drafter, prompts: readonly GenerateOptions["prompt"][], options: MeasureOptions = {}): Promise<Measurement> {
  const repeats = options.repeats ?? 1;
  const runs: GenerationResult[][] = prompts.map(() => []);
  for (const [i, prompt] of prompts.entries())
    for (let r = 0; r < repeats; r++) runs[i].push(await generate(target, drafter, { ...options.run, prompt, maxTokens: options.maxTokens ?? DEFAULT_MAX_TOKENS }));
  return summarizeRuns(target, prompts, runs, options.reference);
}

/**
 * The statistics of runs[prompt][repeat]: each prompt's median decoding time, the rest from its
 * last run; outputs compared with `reference` (where one differs, whether at a near-tie).
 */
export async function summarizeRuns(target: Target, prompts: readonly GenerateOptions["prompt"][], runs: readonly (readonly GenerationResult[])[], reference?: readonly (readonly Token[])[]): Promise<Measurement> {
  if (reference && reference.length !== prompts.length) throw new Error(`reference has ${reference.length} outputs for ${prompts.length} prompts`);
  let tokens = 0, decided = 0, calls = 0, drafted = 0, draftMs = 0, decodeMs = 0;
  let same = reference ? true : undefined;
  let nearTies = 0, differing = 0;
  const pos: { d: number; a: number }[] = [];
  const results: GenerationResult[] = [];
  for (const [i, prompt] of prompts.entries()) {
    const last = runs[i][runs[i].length - 1];
    const s = last.stats;
    const ms = median(runs[i].map((x) => x.stats.decodeMs));
    tokens += s.generatedTokens; decided += s.decidedTokens; calls += s.targetCalls; drafted += s.draftedTokens; decodeMs += ms;
    // The drafting share of the kept run, scaled to its median time.
    if (s.decodeMs > 0) draftMs += s.draftMs * (ms / s.decodeMs);
    s.acceptanceByPosition.forEach((x, j) => { pos[j] ??= { d: 0, a: 0 }; pos[j].d += x.drafted; pos[j].a += x.accepted; });
    if (reference && reference[i].join() !== last.tokens.join()) {
      same = false;
      differing++;
      const want = reference[i];
      let at = 0;
      while (at < want.length && want[at] === last.tokens[at]) at++;
      if ((await top2GapAt(target, prompt, want, at)) < nearTieBound(target)) nearTies++;
    }
    results.push(last);
  }
  return {
    tau: calls > 0 ? decided / calls : 0,
    tokensPerSecond: decodeMs > 0 ? (tokens * 1000) / decodeMs : 0,
    draftShare: decodeMs > 0 ? draftMs / decodeMs : 0,
    nodesPerPass: calls > 0 ? drafted / calls : 0,
    acceptanceByPosition: pos.map((x) => x.a / x.d),
    results,
    sameAsReference: same,
    ...(reference ? { nearTies, differing } : {}),
  };
}

/** A GitHub-style markdown table, one string with a line per row. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), `|${header.map(() => "---").join("|")}|`, ...rows.map(line)].join("\n");
}
