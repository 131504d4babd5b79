// Shared vocabulary of the pipeline: prompt → tokens → drafter → target pass → verifier →
// commit / roll back → stream.

/** A token id. Branded so a count or a position cannot be passed where a token is meant. */
export type Token = number & { readonly __brand: "Token" };

/** Cast plain ids (from a tokenizer, a file, JSON) to tokens. */
export function asTokens(ids: readonly number[]): Token[] {
  return ids as Token[];
}

/**
 * A next-token distribution over the whole vocabulary: (vocabSize) probabilities that sum to 1.
 * Drafters and the target produce them; sampling settings are applied with `shapeDistribution`.
 */
export type Distribution = Float32Array;

/** A source of uniform random numbers in [0, 1). Passed in, never global, so runs are reproducible. */
export interface Rng {
  next(): number;
}
