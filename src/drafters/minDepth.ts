// llama.cpp's speculative.n_min for any drafter: a proposal that reaches fewer than `minDepth`
// tokens ahead is not verified (a short guess can cost more than it saves).
import { NO_DRAFT, nodeDepths, type DraftTree } from "./draftTree.js";
import type { DraftBudget, Drafter, DrafterStart, VerifiedPass } from "./drafter.js";
import type { Token } from "../types.js";

/**
 * `inner` with its short proposals dropped. A pass that verified none of the inner drafter's
 * proposal is not shown to it (its `observe` would read nodes that were never evaluated): its
 * state then lags one step, which can only make its next guesses worse, never the output
 * different. The inner drafter stays its owner's to dispose.
 */
export class MinDepthDrafter implements Drafter {
  readonly name: string;
  readonly requires: Drafter["requires"];
  private dropped = false;

  constructor(private readonly inner: Drafter, readonly minDepth: number) {
    this.name = inner.name;
    this.requires = inner.requires;
  }

  begin(start: DrafterStart): Promise<void> | void {
    this.dropped = false;
    return this.inner.begin(start);
  }

  async propose(context: readonly Token[], budget: DraftBudget, signal?: AbortSignal): Promise<DraftTree> {
    const tree = await this.inner.propose(context, budget, signal);
    this.dropped = tree.tokens.length > 0 && Math.max(...nodeDepths(tree)) < this.minDepth;
    return this.dropped ? NO_DRAFT : tree;
  }

  observe(pass: VerifiedPass): Promise<void> | void {
    if (!this.dropped) return this.inner.observe(pass);
  }
}
