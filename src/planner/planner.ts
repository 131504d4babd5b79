// The Planner: how much to guess each step. Speculation pays only where a pass over n tokens
// costs much less than n passes, so the budget is a choice per step — including "do not
// speculate" — not a constant.

import { bestCost, type PassCostTable } from "./passCost.js";

/** Hard limits of one step: what the output still wanted, the context's room and the batch allow. */
export interface StepLimits {
  /** Deepest a guess may go. */
  readonly maxDepth: number;
  /** Most guesses one pass may take. */
  readonly maxNodes: number;
}

/** The budget of one step (within the limits); maxNodes 0 = do not speculate (the drafter is not asked). */
export interface StepPlan {
  readonly maxDepth: number;
  readonly maxNodes: number;
  /** CPU threads for this step's pass, where the target lets a pass choose (Target.threadCounts). */
  readonly threads?: number;
}

/** What one step did, for the planner to learn from. */
export interface StepRecord {
  readonly plan: StepPlan;
  /** Guesses proposed (tree nodes, in the drafter's order). */
  readonly nodes: number;
  /** The accepted nodes (indices into the proposal), root level first. */
  readonly path: readonly number[];
  /** Time spent drafting and in the target's pass (with verification), ms. */
  readonly draftMs: number;
  readonly passMs: number;
  /** Tokens in the target's pass, filler included (default 1 + nodes). */
  readonly passTokens?: number;
}

export interface Planner {
  /** How the budget is chosen, for statistics ("fixed", "cost model"). */
  readonly name: string;
  /**
   * Asked before a generation's prefill, only for a drafter whose passes cost more than plain
   * ones (it reads hidden states): whether to involve the drafter in this generation at all.
   * false: plain passes throughout, the drafter neither begun, asked nor shown a pass. Default true.
   */
  attach?(maxTokens: number): boolean;
  /** A generation starts (what it learned so far carries over). */
  begin?(): void;
  plan(limits: StepLimits): StepPlan;
  /**
   * After drafting `nodes` guesses for `plan`: the pass length to pad a chain pass to (filler,
   * `PassRequest.padTo`) where the target reuses graphs and changing shape would cost more;
   * undefined = no filler.
   */
  padTo?(plan: StepPlan, nodes: number): number | undefined;
  observe(step: StepRecord): void;
}

/**
 * A constant budget: draftMax tokens ahead, treeNodes guesses per step (what the caller asked
 * for). With a pass-cost table (a target whose passes choose their thread count), each pass
 * takes the thread count measured fastest for its size — plain decoding included.
 */
export class FixedPlanner implements Planner {
  readonly name = "fixed";
  constructor(
    readonly draftMax: number,
    readonly treeNodes: number,
    private readonly cost?: PassCostTable,
  ) {}

  plan(limits: StepLimits): StepPlan {
    const maxDepth = Math.min(this.draftMax, limits.maxDepth);
    const maxNodes = maxDepth > 0 ? Math.max(maxDepth, Math.min(this.treeNodes, limits.maxNodes)) : 0;
    const threads = this.cost ? Number(bestCost(this.cost, 1 + maxNodes).threads) : 0;
    return { maxDepth, maxNodes, ...(threads > 0 ? { threads } : {}) };
  }

  observe(): void {}
}
