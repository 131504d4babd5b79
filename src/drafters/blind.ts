import { chainTree, type DraftTree } from "./draftTree.js";
import type { DraftBudget, Drafter, DrafterStart } from "./drafter.js";
import type { MethodDescriptor } from "./method.js";
import type { Rng, Token } from "../types.js";

/**
 * Method `blind`: guesses tokens at random, drawn from the unigram frequencies of the context
 * so far. Kept as the baseline that shows, by measurement, why guessing needs information:
 * its acceptance is near zero, so it only adds cost.
 */
export class BlindDrafter implements Drafter {
  readonly name = "blind";
  private rng!: Rng;
  private bag: Token[] = []; // every context token once per occurrence: a uniform pick is a unigram draw
  private seen = 0;

  begin(start: DrafterStart): void {
    this.rng = start.rng;
    this.bag = [];
    this.seen = 0;
  }

  propose(context: readonly Token[], budget: DraftBudget): DraftTree {
    for (; this.seen < context.length; this.seen++) this.bag.push(context[this.seen]);
    const tokens: Token[] = [];
    if (this.bag.length > 0) for (let i = 0; i < budget.maxDepth; i++) tokens.push(this.bag[Math.floor(this.rng.next() * this.bag.length)]);
    return chainTree(tokens);
  }

  observe(): void {}
}

export const blindMethod: MethodDescriptor = {
  name: "blind",
  summary: "random tokens from the context's unigram frequencies: the baseline that shows guessing needs information",
  defaultDraftMax: 2,
  options: {},
  create: () => new BlindDrafter(),
};
