import type { Draft, Drafter, DrafterStart, DraftOutcome } from "../drafter.js";
import { isGreedy, type SamplingSettings } from "../sampling/samplingSettings.js";
import { argmax, sample, shapeDistribution } from "../sampling/shapeDistribution.js";
import type { Target } from "../target.js";
import type { Distribution, Rng, Token } from "../types.js";

/**
 * Method `draft`: a smaller helper model with the same vocabulary guesses k tokens one at a
 * time (greedy at temperature 0, otherwise sampled from its own shaped distribution q, which
 * is recorded for rejection sampling). Its cache follows the target's: after each step it is
 * rolled back to the committed tokens.
 */
export class DraftModelDrafter implements Drafter {
  readonly name = "draft";
  private sampling!: SamplingSettings;
  private rng!: Rng;
  private cached: Token[] = []; // the tokens in the draft model's cache, in order
  private readonly one: Token[] = [0 as Token]; // the one-token input of every guess after the first

  constructor(private readonly model: Target) {}

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

  async propose(context: readonly Token[], maxTokens: number, signal?: AbortSignal): Promise<Draft> {
    // The helper's own context may be shorter than the target's: guess less, or not at all.
    maxTokens = Math.min(maxTokens, this.model.contextSize - context.length);
    if (maxTokens <= 0 || context.length === 0) return { tokens: [] };
    // Bring the cache to context minus its last token, which is evaluated for the first guess.
    let common = 0;
    while (common < this.cached.length && common < context.length - 1 && this.cached[common] === context[common]) common++;
    await this.truncateTo(common);
    const greedy = isGreedy(this.sampling);
    const tokens: Token[] = [];
    const q: (Distribution | undefined)[] = [];
    let next: readonly Token[] = context.slice(common);
    for (let i = 0; i < maxTokens; i++) {
      const [raw] = await this.model.evaluate(next, { outputs: "last", signal, argmaxOnly: greedy });
      for (const t of next) this.cached.push(t);
      let tok: Token;
      if (greedy) {
        tok = argmax(raw);
      } else {
        const shaped = shapeDistribution(raw, this.sampling);
        tok = sample(shaped, this.rng);
        q.push(shaped);
      }
      tokens.push(tok);
      if (this.model.eogTokens.has(tok)) break; // nothing sensible follows the end
      this.one[0] = tok;
      next = this.one;
    }
    return greedy ? { tokens } : { tokens, q };
  }

  async observe(outcome: DraftOutcome): Promise<void> {
    // Keep the context and the accepted guesses; forget the rejected ones.
    await this.truncateTo(Math.min(this.cached.length, outcome.contextLength + outcome.accepted));
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
