// A synthetic language model for exactness tests: the next-token distribution depends only on
// the previous token (a Markov chain), so the exact distribution of any continuation is known.
import { chainTree, type DraftTree } from "../../src/drafters/draftTree.js";
import type { DraftBudget, Drafter, DrafterStart } from "../../src/drafters/drafter.js";
import { vocabFingerprint } from "../../src/gguf/modelInfo.js";
import type { SamplingSettings } from "../../src/sampling/samplingSettings.js";
import { argmax, sample, shapeDistribution } from "../../src/sampling/shapeDistribution.js";
import { isPrefix, type PassRequest, type PassResult, type Target, type Vocabulary } from "../../src/targets/target.js";
import type { Distribution, Rng, Token } from "../../src/types.js";

/** (vocab, vocab) row-stochastic matrix with random rows; `peaked` sharpens them. */
export function randomTransitions(vocab: number, rng: Rng, peaked = 1): Float32Array[] {
  return Array.from({ length: vocab }, () => randomDistribution(vocab, rng, peaked));
}

export function randomDistribution(vocab: number, rng: Rng, peaked = 1): Float32Array {
  const d = new Float32Array(vocab);
  let s = 0;
  for (let i = 0; i < vocab; i++) s += d[i] = Math.pow(rng.next(), peaked) + 1e-3;
  for (let i = 0; i < vocab; i++) d[i] /= s;
  return d;
}

/** A synthetic vocabulary of n tokens named "a", "b", ... */
export function syntheticVocab(n: number): Vocabulary {
  const tokens = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i));
  return { model: "synthetic", tokens, fingerprint: vocabFingerprint(tokens) };
}

/**
 * A target whose next-token distribution after a token is its row of `transitions`. With
 * `treeAttention` it verifies trees too: a node's output depends on its own token only, so
 * attending to its ancestors alone is automatic.
 */
export class MarkovTarget implements Target {
  readonly backend = "markov";
  readonly capabilities: { treeAttention: boolean; hiddenStates: false };
  readonly vocabSize: number;
  readonly vocab: Vocabulary;
  readonly maxBatch = 64;
  readonly hiddenSize = 0;
  readonly eogTokens = new Set<Token>();
  private cache: Token[] = [];
  passes = 0;

  constructor(readonly transitions: readonly Float32Array[], readonly contextSize = 1 << 20, treeAttention = false) {
    this.capabilities = { treeAttention, hiddenStates: false };
    this.vocabSize = transitions.length;
    this.vocab = syntheticVocab(this.vocabSize);
  }
  get length() { return this.cache.length; }
  tokenize(text: string): Token[] { return [...text].map((c) => (c.charCodeAt(0) - 97) as Token); }
  detokenize(tokens: readonly Token[]): string { return tokens.map((t) => String.fromCharCode(97 + t)).join(""); }
  async evaluate(tokens: readonly Token[], request: PassRequest = {}): Promise<PassResult> {
    if (!this.capabilities.treeAttention && request.parents && !request.parents.every((p, i) => p === i - 1)) throw new Error("MarkovTarget verifies chains only");
    this.passes++;
    this.cache.push(...tokens);
    const outs = request.outputs ?? "all";
    const from = outs === "none" ? [] : outs === "last" ? tokens.slice(-1) : tokens;
    const probs = from.map((t) => Float32Array.from(this.transitions[t]));
    return { argmax: Int32Array.from(probs.map((p) => argmax(p))), probs: request.read === "argmax" ? undefined : probs };
  }
  async keep(from: number, indices: readonly number[]) {
    if (!this.capabilities.treeAttention && !isPrefix(indices)) throw new Error("MarkovTarget keeps prefixes only");
    const kept = indices.map((i) => this.cache[from + i]);
    this.cache.length = from;
    this.cache.push(...kept);
  }
  async truncate(length: number) { this.cache.length = Math.min(length, this.cache.length); }
  async reset() { this.cache = []; }
  async dispose() {}
}

/** Drafts k tokens by sampling its own Markov chain, recording q (or proposing its argmax with `deterministic`). */
export class MarkovDrafter implements Drafter {
  readonly name = "markov";
  private sampling!: SamplingSettings;
  private rng!: Rng;
  constructor(readonly transitions: readonly Float32Array[], readonly deterministic = false) {}
  begin(s: DrafterStart) { this.sampling = s.sampling; this.rng = s.rng; }
  propose(context: readonly Token[], budget: DraftBudget): DraftTree {
    const maxTokens = budget.maxDepth;
    const tokens: Token[] = [];
    const q: Distribution[] = [];
    let prev = context[context.length - 1];
    for (let i = 0; i < maxTokens; i++) {
      const d = shapeDistribution(this.transitions[prev], this.sampling);
      let t: Token;
      if (this.deterministic) {
        t = 0 as Token;
        for (let j = 1; j < d.length; j++) if (d[j] > d[t]) t = j as Token;
      } else {
        t = sample(d, this.rng);
        q.push(d);
      }
      tokens.push(t);
      prev = t;
    }
    return this.deterministic ? chainTree(tokens) : chainTree(tokens, q);
  }
  observe() {}
}

/** Exact probability of each length-n continuation of `start` under shaped transitions: (vocab^n). */
export function exactSequenceDistribution(transitions: readonly Float32Array[], start: number, n: number, sampling: SamplingSettings): Float64Array {
  const V = transitions.length;
  const shaped = transitions.map((row) => shapeDistribution(row, sampling));
  let probs = new Float64Array([1]);
  let lasts = [start];
  for (let step = 0; step < n; step++) {
    const next = new Float64Array(probs.length * V);
    const nextLasts: number[] = new Array(next.length);
    for (let i = 0; i < probs.length; i++) {
      for (let t = 0; t < V; t++) {
        next[i * V + t] = probs[i] * shaped[lasts[i]][t];
        nextLasts[i * V + t] = t;
      }
    }
    probs = next;
    lasts = nextLasts;
  }
  return probs;
}

export function sequenceIndex(tokens: readonly number[], vocab: number): number {
  let k = 0;
  for (const t of tokens) k = k * vocab + t;
  return k;
}

/** Total-variation distance between empirical counts and an exact distribution. */
export function totalVariation(counts: ArrayLike<number>, exact: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i];
  let tv = 0;
  for (let i = 0; i < exact.length; i++) tv += Math.abs(counts[i] / n - exact[i]);
  return tv / 2;
}
