import { checkSameVocabulary } from "../gguf/modelInfo.js";
import { isGreedy, type SamplingSettings } from "../sampling/samplingSettings.js";
import { sample, shapeDistribution } from "../sampling/shapeDistribution.js";
import type { Target } from "../targets/target.js";
import type { Distribution, Rng, Token } from "../types.js";
import { chainTree, type DraftTree } from "./draftTree.js";
import type { DraftBudget, Drafter, DrafterStart, VerifiedPass } from "./drafter.js";
import type { MethodDescriptor } from "./method.js";

/**
 * Method `draft`: a smaller helper model with the same vocabulary guesses a chain one token at a
 * time (greedy at temperature 0, otherwise sampled from its own shaped distribution q, which is
 * recorded for rejection sampling). Its cache follows the target's: after each step it is
 * rolled back to the committed tokens.
 */
export class DraftModelDrafter implements Drafter {
  readonly name = "draft";
  private sampling!: SamplingSettings;
  private rng!: Rng;
  private cached: Token[] = []; // the tokens in the draft model's cache, in order
  private readonly one: Token[] = [0 as Token]; // the one-token input of every guess after the first

  constructor(readonly model: Target) {}

  async begin(start: DrafterStart): Promise<void> {
    this.sampling = start.sampling;
    this.rng = start.rng;
    await this.model.reset();
    this.cached = [];
    // Prefill the prompt now, as the target does (prefill time, not drafting time); the first
    // propose then evaluates only the last token. Skipped when no guess could fit anyway.
    const head = start.prompt.slice(0, -1);
    if (head.length > 0 && start.prompt.length < this.model.contextSize) {
      await this.model.evaluate(head, { outputs: "none", signal: start.signal });
      this.cached = head;
    }
  }

  async propose(context: readonly Token[], budget: DraftBudget, signal?: AbortSignal): Promise<DraftTree> {
    // The helper's own context may be shorter than the target's: guess less, or not at all.
    const maxTokens = Math.min(budget.maxDepth, this.model.contextSize - context.length);
    if (maxTokens <= 0 || context.length === 0) return chainTree([]);
    // Bring the cache to context minus its last token, which is evaluated for the first guess.
    let common = 0;
    while (common < this.cached.length && common < context.length - 1 && this.cached[common] === context[common]) common++;
    await this.truncateTo(common);
    const greedy = isGreedy(this.sampling);
    const tokens: Token[] = [];
    const q: Distribution[] = [];
    let next: readonly Token[] = context.slice(common);
    for (let i = 0; i < maxTokens; i++) {
      const out = await this.model.evaluate(next, { outputs: "last", read: greedy ? "argmax" : "probabilities", signal });
      for (const t of next) this.cached.push(t);
      let tok: Token;
      if (greedy) {
        tok = out.argmax[0] as Token;
      } else {
        const shaped = shapeDistribution(out.probs![0], this.sampling);
        tok = sample(shaped, this.rng);
        q.push(shaped);
      }
      tokens.push(tok);
      if (this.model.eogTokens.has(tok)) break; // nothing sensible follows the end
      this.one[0] = tok;
      next = this.one;
    }
    return greedy ? chainTree(tokens) : chainTree(tokens, q);
  }

  async observe(pass: VerifiedPass): Promise<void> {
    // Keep the context and the accepted guesses; forget the rejected ones.
    await this.truncateTo(Math.min(this.cached.length, pass.contextLength + pass.path.length));
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }

  private async truncateTo(length: number): Promise<void> {
    if (length < this.cached.length) {
      await this.model.truncate(length);
      this.cached.length = length;
    }
  }
}

export const draftModelMethod: MethodDescriptor = {
  name: "draft",
  summary: "a smaller helper model with the same vocabulary drafts a chain (greedy, or sampled with its q recorded)",
  defaultDraftMax: 8,
  options: {
    draftModel: { kind: "file", description: "a helper model with the target's vocabulary (GGUF)", familyFile: "draft" },
  },
  async create(ctx, o) {
    const path = o.draftModel as string;
    const model = await ctx.loadModel(path);
    try {
      checkSameVocabulary(ctx.target.vocab, model.vocab, path);
    } catch (e) {
      await model.dispose();
      throw e;
    }
    return new DraftModelDrafter(model);
  },
};
