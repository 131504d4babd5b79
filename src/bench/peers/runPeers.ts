// The peers of a bench run, measured in the same run on the same model file and prompts:
// node-llama-cpp's decoding loop with its token predictors, and llama.cpp's native programs
// (where `npm run bench:anchors` built them). Speedups are over specdec's plain decoding of the
// same prompts in this run.

import { nativeProgram, runNativeExample, runNativePlain, type NativeRun } from "./native.js";
import { runNodeLlamaCpp, type NodeLlamaCppPeer } from "./nodeLlamaCpp.js";

export interface PeerResult {
  readonly peer: string;
  readonly category: string;
  readonly tokensPerSecond: number;
  /** Over specdec's plain decoding of the same prompts, this run. */
  readonly speedup: number;
  /** Accepted / drafted guesses, where the peer reports them. */
  readonly acceptance?: number;
  readonly settings?: string;
}

export interface PeerSettings {
  readonly model: string;
  readonly draftModel?: string;
  /**
   * Prompts by category, and specdec's plain tokens/s per category (the baseline); plainTokens:
   * the tokens of specdec's plain output of each prompt (end of generation excluded), what a native
   * peer's time is divided by (nativeTokensPerSecond).
   */
  readonly categories: ReadonlyMap<string, { prompts: readonly string[]; plainTokensPerSecond: number; plainTokens?: readonly number[] }>;
  readonly maxTokens: number;
  readonly contextSize: number;
  /** Thread counts to try; each native peer is reported at its best. */
  readonly threads: readonly number[];
  readonly onProgress?: (what: string) => void;
}

export async function runPeers(s: PeerSettings): Promise<PeerResult[]> {
  const out: PeerResult[] = [];
  const t1 = s.threads[0];
  // node-llama-cpp: plain and its predictors.
  const nlc: NodeLlamaCppPeer[] = ["plain", "InputLookupTokenPredictor", ...(s.draftModel ? (["DraftSequenceTokenPredictor"] as const) : [])];
  for (const peer of nlc) {
    for (const [category, c] of s.categories) {
      s.onProgress?.(`node-llama-cpp ${peer} / ${category}`);
      const r = await runNodeLlamaCpp(peer, { model: s.model, draftModel: s.draftModel, prompts: c.prompts, maxTokens: s.maxTokens, threads: t1, contextSize: s.contextSize });
      const total = r.validated + r.refuted;
      out.push({ peer: `node-llama-cpp ${peer}`, category, tokensPerSecond: r.tokensPerSecond, speedup: r.tokensPerSecond / c.plainTokensPerSecond, acceptance: total > 0 ? r.validated / total : undefined, settings: `threads ${t1}` });
    }
  }
  // llama.cpp's own programs, at their best thread count (and draft length).
  if (nativeProgram("llama-bench")) {
    let best = { tps: 0, t: 0 };
    for (const t of s.threads) {
      s.onProgress?.(`llama-bench threads ${t}`);
      const tps = runNativePlain(s.model, s.maxTokens, t) ?? 0;
      if (tps > best.tps) best = { tps, t };
    }
    for (const [category, c] of s.categories) out.push({ peer: "llama-bench (plain, empty context)", category, tokensPerSecond: best.tps, speedup: best.tps / c.plainTokensPerSecond, settings: `threads ${best.t}` });
  }
  const examples: { program: "llama-speculative-simple" | "llama-lookup" | "llama-lookahead"; draftMax: (number | undefined)[] }[] = [
    ...(s.draftModel ? [{ program: "llama-speculative-simple" as const, draftMax: [2, 4, 8] }] : []),
    { program: "llama-lookup", draftMax: [2, 4, 8] },
    { program: "llama-lookahead", draftMax: [undefined] },
  ];
  for (const { program, draftMax } of examples) {
    if (!nativeProgram(program)) continue;
    for (const [category, c] of s.categories) {
      let best: { tps: number; settings: string; acc?: number } = { tps: 0, settings: "" };
      for (const t of s.threads) {
        for (const k of draftMax) {
          s.onProgress?.(`${program} / ${category} (threads ${t}${k ? `, k ${k}` : ""})`);
          const runs: (NativeRun | undefined)[] = [];
          let drafted = 0, accepted = 0;
          for (const prompt of c.prompts) {
            const r = runNativeExample(program, { model: s.model, draftModel: s.draftModel, prompt, maxTokens: s.maxTokens, draftMax: k, threads: t, contextSize: s.contextSize });
            runs.push(r);
            drafted += r?.drafted ?? 0;
            accepted += r?.accepted ?? 0;
          }
          const tps = nativeTokensPerSecond(runs, c.plainTokens);
          if (tps > best.tps) best = { tps, settings: `threads ${t}${k ? `, k ${k}` : ", W 15 N 5 G 15"}`, acc: drafted > 0 ? accepted / drafted : undefined };
        }
      }
      if (best.tps > 0) out.push({ peer: program, category, tokensPerSecond: best.tps, speedup: best.tps / c.plainTokensPerSecond, acceptance: best.acc, settings: `${best.settings} (best)` });
    }
  }
  return out;
}

/**
 * A native example's tokens/s over prompts, counted as specdec counts its own output: the tokens
 * of the text (plainTokens[i], specdec's plain output of prompt i) over the time the program
 * reports for decoding it. The programs count the end-of-generation token, and
 * llama-speculative-simple every token of the step that made it, so their own figure runs high on
 * short answers (docs/measurements.md); with the same greedy output that is the same work.
 * Without plainTokens, or for a prompt beyond them, the program's own count.
 */
export function nativeTokensPerSecond(runs: readonly (NativeRun | undefined)[], plainTokens?: readonly number[]): number {
  let tokens = 0, seconds = 0;
  runs.forEach((r, i) => {
    if (!r || r.tokensPerSecond <= 0) return;
    tokens += plainTokens?.[i] ?? r.tokens;
    seconds += r.tokens / r.tokensPerSecond;
  });
  return seconds > 0 ? tokens / seconds : 0;
}
