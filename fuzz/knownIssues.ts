// Failures that belong to fixes being made on other branches. Until those land, cases that hit
// them are counted in a column of their own ("open elsewhere") instead of as crashes, so the
// campaign's assertions stay about this branch's code. REMOVE an entry when its fix is merged:
// from then on its cases count as crashes again, and the fuzz test would catch a regression.

import type { CaseVerdict } from "./outcome.js";
import type { BuiltCase } from "./targets/target.js";

export interface KnownIssue {
  readonly id: string;
  readonly what: string;
  /** `nonFiniteWeights` tells (lazily, it reads the case's file) whether the file has NaN/Inf weights. */
  readonly matches: (c: Pick<BuiltCase, "target">, v: CaseVerdict, nonFiniteWeights: () => boolean) => boolean;
}

export const OPEN_ELSEWHERE: readonly KnownIssue[] = [
  {
    // Issue 15 item 1, the engine branch: NaN/Inf weights trap in the WASM kernels
    // ("float unrepresentable in integer range") or silently give a non-finite distribution.
    id: "nonfinite-weights",
    what: "issue 15 item 1: the built-in engine on NaN/Inf weights (engine branch)",
    matches: (c, v, nonFiniteWeights) =>
      c.target === "builtin" &&
      ((v.outcome === "crash" && /^RuntimeError\b.*float unrepresentable/.test(v.detail)) || (v.outcome === "wrong" && /^non-finite/.test(v.detail))) &&
      nonFiniteWeights(),
  },
  {
    // Issue 15 item 3, the FFI branch (issue 10): files our reader accepts that crash or blow up
    // libllama through node-llama-cpp (empty keys, I32 layer tensors, context_length 2^31, ...).
    id: "llamacpp-native",
    what: "issue 15 item 3: libllama crashes, hangs or over-allocates through node-llama-cpp (FFI branch, issue 10)",
    matches: (c, v) => c.target === "llamacpp" && (v.outcome === "hang" || v.outcome === "memory" || (v.outcome === "crash" && /^signal |native/.test(v.detail)) || v.outcome === "wrong"),
  },
];
