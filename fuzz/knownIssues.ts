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

// None open: the NaN/Inf weights of issue 15 item 1 (the engine refuses them at load, and
// non-finite activations are a clear error) and libllama's crashes of item 3 (the direct
// binding validates the file first) are fixed on main.
export const OPEN_ELSEWHERE: readonly KnownIssue[] = [];
