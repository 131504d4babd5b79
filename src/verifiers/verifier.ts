// The Verifier: checks a draft tree against the target's outputs for it and decides what is
// committed — the accepted path plus one token of the target's own.
import type { DraftTree } from "../drafters/draftTree.js";
import type { Distribution, Rng, Token } from "../types.js";

/**
 * The target's outputs for one draft tree. Slot 0 is the last committed token (its output
 * predicts the root-level nodes); slot i + 1 is node i (its output predicts node i's children,
 * or the token after node i when it is a leaf).
 */
export interface TargetOutputs {
  /** The target's most likely token after each slot: (1 + nodes). */
  readonly argmax: ArrayLike<number>;
  /**
   * The target's distribution after each slot, shaped by the sampling settings: (1 + nodes).
   * Filled only for verifiers that read "probabilities".
   */
  readonly p: readonly Distribution[];
}

/**
 * The outcome of checking a draft tree.
 *  - path: the accepted nodes, root level first, each a child of the one before (may be empty);
 *    their tokens are committed in that order;
 *  - token: the one token the target contributes itself after the path — a *recovered* token
 *    when the path's last node (or the root, for an empty path) had children and all of them
 *    were rejected; a *bonus* token when it had none (a leaf was accepted, or nothing was drafted).
 */
export interface Verdict {
  readonly path: number[];
  readonly token: Token;
  readonly kind: "recovered" | "bonus";
}

export interface Verifier {
  readonly name: string;
  /** What the verifier reads of the target: its argmax only (greedy), or shaped probabilities. */
  readonly reads: "argmax" | "probabilities";
  /** True when the committed tokens no longer follow the target's distribution (opt-in only). */
  readonly lossy?: boolean;
  /**
   * @param tree the drafter's guesses (validated by the caller)
   * @param out the target's outputs for it (`out.p` empty when reads is "argmax")
   * @param rng random source (unused by greedy verification)
   */
  verify(tree: DraftTree, out: TargetOutputs, rng: Rng): Verdict;
}
