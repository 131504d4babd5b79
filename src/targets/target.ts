// The Target: the model being accelerated, on some backend. Everything the loop needs of it —
// tokenize, one pass over a tree of tokens, roll back — and what it can do beyond a chain.
import type { Matrix } from "../engine/matrix.js";
import type { Vocabulary } from "../gguf/modelInfo.js";
import type { Distribution, Token } from "../types.js";

/**
 * What a target can do beyond appending a chain of tokens. A drafter lists the capabilities it
 * requires (`Drafter.requires`); the loop checks them once, before the first pass.
 */
export interface TargetCapabilities {
  /**
   * One pass verifies a tree of guesses (several tokens at one position, each attending only to
   * its ancestors), and `keep` retains one branch of it.
   */
  readonly treeAttention: boolean;
  /** A pass can return the final hidden state (after the output norm) of every output position. */
  readonly hiddenStates: boolean;
}

export type Capability = keyof TargetCapabilities;
export type { Vocabulary };

/** What one pass is asked to produce. */
export interface PassRequest {
  /**
   * Tree structure of the appended tokens: parents[i] = -1 attaches token i to the cache's last
   * token, otherwise to an earlier token of this pass (index < i). Default: a chain
   * (parents[i] = i - 1). A branching tree needs the treeAttention capability and at most
   * `maxBatch` tokens; a chain of any length is split into several passes when it must be.
   */
  readonly parents?: readonly number[];
  /** Positions that get an output: every appended one ("all", the default), the last, or none. */
  readonly outputs?: "all" | "last" | "none";
  /**
   * What each output holds besides its argmax: "argmax" only (cheap: greedy verification needs
   * nothing else), or "probabilities", the raw next-token distribution (softmax of the logits at
   * temperature 1, before any sampling settings). Default "probabilities".
   */
  readonly read?: "argmax" | "probabilities";
  /** Also return the final hidden state of every output position (needs the hiddenStates capability). */
  readonly hidden?: boolean;
  /** CPU threads for this pass, one of `Target.threadCounts` (default: the target's own setting). */
  readonly threads?: number;
  /**
   * Make a chain pass this many tokens long with filler that no real token attends to (after the
   * chain's last position), where `Target.reusesGraphs`: a pass of the same shape as the last one
   * reuses its compute graph. Filler gives no outputs and leaves the cache right after the pass.
   * Capped at the batch and the context's room; ignored for trees, for passes already this long,
   * and by other targets.
   */
  readonly padTo?: number;
  readonly signal?: AbortSignal;
}

/** What one pass produced, one entry per output position, in order. */
export interface PassResult {
  /** The most likely next token after each output position (lowest id on a tie): (nOut). */
  readonly argmax: Int32Array;
  /** With read "probabilities": the raw next-token distribution after each output position. */
  readonly probs?: readonly Distribution[];
  /** With hidden: (nOut, hiddenSize), copied (valid after the next pass). */
  readonly hidden?: Float32Array;
}

/**
 * The model being accelerated. It owns a KV cache holding a prefix of the sequence: `evaluate`
 * appends to it, `keep` / `truncate` roll it back (a rejected guess is forgotten by moving the
 * end of the cache; nothing is recomputed).
 */
export interface Target {
  /** Backend name, for messages ("builtin", "llama.cpp"). */
  readonly backend: string;
  readonly capabilities: TargetCapabilities;
  /** Vocabulary size: the length of every distribution. */
  readonly vocabSize: number;
  readonly vocab: Vocabulary;
  /** Maximum number of tokens the cache holds. */
  readonly contextSize: number;
  /** Most tokens one tree pass takes. */
  readonly maxBatch: number;
  /** Width of the final hidden state (0 without the hiddenStates capability). */
  readonly hiddenSize: number;
  /** Tokens that end generation (end of sequence / turn). */
  readonly eogTokens: ReadonlySet<Token>;
  /** Thread counts a pass may ask for (`PassRequest.threads`); absent = the target's own setting only. */
  readonly threadCounts?: readonly number[];
  /** Which code runs the passes, when the backend has variants (a cached pass-cost table is measured anew when it changes). */
  readonly kernels?: string;
  /**
   * Whether the target rounds the inputs of its matrix products to 8 bits (llama.cpp with
   * quantized weights): a last-bit difference between two ways of computing a pass can then
   * move an activation by a whole rounding step, so a near-tie is wider (`nearTieBound`).
   */
  readonly roundsActivations?: boolean;
  /**
   * Whether a pass of the same shape as the last (tokens, outputs, sequences) costs less than
   * another (llama.cpp builds a new compute graph otherwise): `PassRequest.padTo` keeps a
   * speculating loop on one shape, and the cost model prices each change of shape.
   */
  readonly reusesGraphs?: boolean;
  /** Number of tokens now in the cache. */
  readonly length: number;

  /**
   * Text to tokens; `addBos` follows the model's own rule when undefined. With `parseSpecial`,
   * texts of control tokens in `text` (e.g. "<|im_start|>" from a chat template) become those
   * tokens; otherwise they are ordinary text. Default false.
   */
  tokenize(text: string, addBos?: boolean, parseSpecial?: boolean): Token[];
  /** Tokens to text. `previous` gives context (e.g. for a leading-space rule); its text is not included. */
  detokenize(tokens: readonly Token[], previous?: readonly Token[]): string;

  /** Append `tokens` to the cache (a chain, or a tree with `parents`) and return the requested outputs. */
  evaluate(tokens: readonly Token[], request?: PassRequest): Promise<PassResult>;
  /**
   * Keep only tokens `from + indices[i]` (ascending, inside the last pass) of the cache, moved to
   * `from + i`; the cache then ends after them. Keeping a prefix of the pass is a truncation, which
   * every target does; any other selection (one branch of a tree) needs treeAttention.
   */
  keep(from: number, indices: readonly number[]): Promise<void>;
  /** Drop everything from position `length` on. */
  truncate(length: number): Promise<void>;
  /** Drop the whole cache. */
  reset(): Promise<void>;
  /** The target's own embedding and output matrices, for helpers that share them (Medusa, EAGLE heads). */
  tokenMatrices?(): TokenMatrices;
  /**
   * Another target over the same model with a KV cache of its own (same context size and batch),
   * for serving several sequences at once; the weights are shared, not copied. Optional: where a
   * backend has none, a caller loads the file again (session.forkTarget). Each fork is disposed
   * on its own; the model stays loaded while any of them is alive.
   */
  fork?(): Promise<Target>;
  dispose(): Promise<void>;
}

/** Matrices a helper may share with its target, as the engine multiplies them. */
export interface TokenMatrices {
  /** (vocab, dim) token embeddings. */
  readonly embedding: Matrix;
  /** (vocab, dim) output projection (the embedding matrix when tied). */
  readonly output: Matrix;
}

/** What each capability means, for error messages. */
export const CAPABILITY_TEXT: Record<Capability, string> = {
  treeAttention: "tree attention (verifying several guesses per position in one pass)",
  hiddenStates: "the target's hidden states",
};

/** Whether `indices` keeps a prefix of the last pass (0, 1, ..., m - 1): a plain truncation. */
export function isPrefix(indices: readonly number[]): boolean {
  for (let i = 0; i < indices.length; i++) if (indices[i] !== i) return false;
  return true;
}
