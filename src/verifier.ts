import type { Draft } from "./drafter.js";
import type { Distribution, Rng, Token } from "./types.js";

/**
 * The outcome of checking one draft against the target.
 *  - accepted: how many draft tokens were kept (a prefix of the draft);
 *  - token: the one token the target contributes itself — a *recovered* token replacing the
 *    first rejected draft token, or a *bonus* token after a fully accepted draft.
 */
export interface Verdict {
  readonly accepted: number;
  readonly token: Token;
  readonly kind: "recovered" | "bonus";
}

export interface Verifier {
  readonly name: string;
  /**
   * @param draft the drafter's guess (k tokens, optional q per token)
   * @param p the target's shaped distributions: k + 1 of them, p[i] predicts the token at draft position i
   *          (p[k] is the distribution after the whole draft)
   * @param rng random source (unused by greedy verification)
   */
  verify(draft: Draft, p: readonly Distribution[], rng: Rng): Verdict;
}
