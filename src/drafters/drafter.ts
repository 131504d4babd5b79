// The Drafter: guesses the next tokens as a tree (a chain is a tree with one child per node),
// and learns from every verified pass. Lifecycle as llama.cpp's common_speculative: `begin` once
// per generation, then `propose` and `observe` alternately, `dispose` when no longer used.
import type { SamplingSettings } from "../sampling/samplingSettings.js";
import type { Capability } from "../targets/target.js";
import type { Rng, Token } from "../types.js";
import type { DraftTree } from "./draftTree.js";

export interface DrafterStart {
  readonly prompt: readonly Token[];
  readonly sampling: SamplingSettings;
  readonly rng: Rng;
  readonly signal?: AbortSignal;
  /**
   * When the drafter requires hiddenStates: the target's final hidden state after each prompt
   * token but the last (the prefill's outputs), (prompt.length - 1, hiddenSize).
   */
  readonly hidden?: Float32Array;
}

/** Limits on one proposal. */
export interface DraftBudget {
  /** Most nodes (guesses) in the tree; a chain uses at most maxDepth of them. */
  readonly maxNodes: number;
  /** Longest path: how many tokens ahead of the last committed one a guess may go. */
  readonly maxDepth: number;
}

/**
 * What the target made of the last proposal: what one pass over [last committed token,
 * ...tree] produced. Slot 0 is the last committed token (whose output predicts the root-level
 * nodes), slot i + 1 is node i.
 */
export interface VerifiedPass {
  /** The context the tree continued (as passed to `propose`). */
  readonly contextLength: number;
  /** The proposal that was verified (empty when nothing was drafted). */
  readonly tree: DraftTree;
  /** The accepted nodes, root level first, each a child of the one before. */
  readonly path: readonly number[];
  /** The tokens committed: those of the path, then the target's own token. */
  readonly committed: readonly Token[];
  /** The target's most likely token after each slot: (1 + nodes). */
  readonly argmax: Int32Array;
  /** When the drafter requires hiddenStates: the target's final hidden state of each slot, (1 + nodes, hiddenSize). */
  readonly hidden?: Float32Array;
}

export interface Drafter {
  /** The method's name (statistics, messages). */
  readonly name: string;
  /** Capabilities the target must have (checked once, before the first pass). Default none. */
  readonly requires?: readonly Capability[];
  begin(start: DrafterStart): Promise<void> | void;
  /** Guess what follows `context` (the prompt plus everything committed), within the budget. */
  propose(context: readonly Token[], budget: DraftBudget, signal?: AbortSignal): Promise<DraftTree> | DraftTree;
  /** Every verified pass, in order; a stateful drafter rolls its own state back here. */
  observe(pass: VerifiedPass): Promise<void> | void;
  /** One line about state that outlives a generation (e.g. a cross-request cache), for statistics. */
  describe?(): string;
  dispose?(): Promise<void>;
}
