import type { Draft } from "../drafter.js";
import { argmax } from "../sampling/shapeDistribution.js";
import type { Distribution } from "../types.js";
import type { Verdict, Verifier } from "../verifier.js";

/** Temperature 0: accept draft tokens while they equal the target's argmax. Output = plain greedy. */
export class GreedyVerifier implements Verifier {
  readonly name = "greedy";

  verify(draft: Draft, p: readonly Distribution[]): Verdict {
    const k = draft.tokens.length;
    for (let i = 0; i < k; i++) {
      const best = argmax(p[i]);
      if (best !== draft.tokens[i]) return { accepted: i, token: best, kind: "recovered" };
    }
    return { accepted: k, token: argmax(p[k]), kind: "bonus" };
  }
}
