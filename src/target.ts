import type { Distribution, Token } from "./types.js";

/**
 * The model being accelerated. It owns a KV cache that holds a prefix of the sequence;
 * `evaluate` appends to it, `truncate` rolls it back (a rejected guess is forgotten by moving
 * the end of the cache, nothing is recomputed).
 */
export interface Target {
  /** Vocabulary size: the length of every distribution. */
  readonly vocabSize: number;
  /** Maximum number of tokens the cache holds. */
  readonly contextSize: number;
  /** Tokens that end generation (end of sequence / turn). */
  readonly eogTokens: ReadonlySet<Token>;
  /** Number of tokens now in the cache. */
  readonly length: number;

  /** Text to tokens; `addBos` follows the model's own rule when undefined. */
  tokenize(text: string, addBos?: boolean): Token[];
  /** Tokens to text. `previous` gives context (e.g. for a leading-space rule); its text is not included. */
  detokenize(tokens: readonly Token[], previous?: readonly Token[]): string;

  /**
   * Append `tokens` to the cache in one forward pass and return the next-token distribution
   * (raw, temperature 1, before any sampling settings) after each appended position, or only
   * after the last one with `{ outputs: "last" }`, or none with `{ outputs: "none" }`.
   */
  evaluate(tokens: readonly Token[], options?: EvaluateOptions): Promise<Distribution[]>;
  /** Drop everything from position `length` on. */
  truncate(length: number): Promise<void>;
  /** Drop the whole cache. */
  reset(): Promise<void>;
  dispose(): Promise<void>;
}

export interface EvaluateOptions {
  /** Which positions get a distribution. Default "all". */
  outputs?: "all" | "last" | "none";
  /**
   * Greedy decoding needs only the most likely token: return one-hot distributions at the
   * argmax (cheaper on llama.cpp, where reading a full distribution costs a native call and a
   * vocabulary-sized map per position). Default false.
   */
  argmaxOnly?: boolean;
  signal?: AbortSignal;
}

/**
 * A target that verifies a whole tree of guesses in one pass (tree attention mask) and can
 * keep just the accepted branch in its cache. The built-in engine is one; llama.cpp through
 * node-llama-cpp is not (one sequence per cache, no custom masks).
 */
export interface TreeTarget extends Target {
  /** Most tokens one tree pass takes. */
  readonly maxBatch: number;
  /** Width of the final hidden state (after the output norm). */
  readonly hiddenSize: number;
  /**
   * Append a tree in one pass: parents[i] = -1 attaches token i to the cache's last token,
   * otherwise to an earlier token of this pass. Returns the raw next-token distribution after
   * every token, and with `hidden` the final hidden states, (tokens, hiddenSize).
   */
  evaluateTree(tokens: readonly Token[], parents: readonly number[], options?: { hidden?: boolean; signal?: AbortSignal }): Promise<{ dists: Distribution[]; hidden?: Float32Array }>;
  /** Keep only tokens `from + indices[i]` of the last pass (ascending), moved to `from + i`. */
  keep(from: number, indices: readonly number[]): Promise<void>;
}

export function isTreeTarget(t: Target): t is TreeTarget {
  return typeof (t as Partial<TreeTarget>).evaluateTree === "function";
}
