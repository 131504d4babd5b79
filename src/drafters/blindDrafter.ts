import type { Draft, Drafter, DrafterStart, DraftOutcome } from "../drafter.js";
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

  async begin(start: DrafterStart): Promise<void> {
    this.rng = start.rng;
    this.bag = [];
    this.seen = 0;
  }

  async propose(context: readonly Token[], maxTokens: number): Promise<Draft> {
    for (; this.seen < context.length; this.seen++) this.bag.push(context[this.seen]);
    if (this.bag.length === 0) return { tokens: [] };
    const tokens: Token[] = [];
    for (let i = 0; i < maxTokens; i++) tokens.push(this.bag[Math.floor(this.rng.next() * this.bag.length)]);
    return { tokens };
  }

  observe(_outcome: DraftOutcome): void {}
}
