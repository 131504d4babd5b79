import type { Distribution, Rng, Token } from "./types.js";
import type { SamplingSettings } from "./sampling/samplingSettings.js";
import type { DraftTree } from "./draftTree.js";

/** A guess of the next tokens. */
export interface Draft {
  readonly tokens: readonly Token[];
  /**
   * For each draft token, the (shaped) distribution the drafter sampled it from, when it has
   * one. Missing entries count as one-hot q: the token was proposed deterministically.
   */
  readonly q?: readonly (Distribution | undefined)[];
}

export interface DrafterStart {
  readonly prompt: readonly Token[];
  readonly sampling: SamplingSettings;
  readonly rng: Rng;
  readonly signal?: AbortSignal;
}

/** What happened to the last draft. */
export interface DraftOutcome {
  /** The context the draft continued (as passed to `propose`). */
  readonly contextLength: number;
  /** How many draft tokens were accepted (a prefix of the draft). */
  readonly accepted: number;
  /** The tokens committed this step: the accepted draft prefix plus the target's own token. */
  readonly committed: readonly Token[];
  /**
   * For drafters that ask for it (`needsHidden`) on a tree target: the target's final hidden
   * state (after the output norm) at the last verified position — the one whose prediction is
   * the target's own token of this step. (hiddenSize)
   */
  readonly hidden?: Float32Array;
  /**
   * For drafters that ask for it (`needsPredictions`) on a tree step: the target's most likely
   * token after each node of the tree just verified (look-ahead decoding's Jacobi update).
   */
  readonly predictions?: readonly Token[];
}

/**
 * The lifecycle every drafter shares: `begin` once per generation, then a proposal and
 * `observe` alternately, then `dispose` when the drafter is no longer used.
 */
interface DrafterLifecycle {
  readonly name: string;
  begin(start: DrafterStart): Promise<void>;
  /** Feedback after verification; a stateful drafter rolls its own cache back here. */
  observe(outcome: DraftOutcome): Promise<void> | void;
  dispose?(): Promise<void>;
}

/** Proposes a chain of tokens for the target to check. */
export interface Drafter extends DrafterLifecycle {
  /** Guess up to `maxTokens` tokens that follow `context` (the prompt plus everything committed). */
  propose(context: readonly Token[], maxTokens: number, signal?: AbortSignal): Promise<Draft>;
}

/** Limits on a proposed tree: its node count, and how deep a path may go. */
export interface TreeBudget {
  readonly maxNodes: number;
  readonly maxDepth: number;
}

/** Proposes a tree of guesses (several candidates per position), verified in one pass. */
export interface TreeDrafter extends DrafterLifecycle {
  /** Ask the loop for the target's hidden states (Medusa heads read them). */
  readonly needsHidden?: boolean;
  /** Ask the loop for the target's argmax after every tree node. */
  readonly needsPredictions?: boolean;
  proposeTree(context: readonly Token[], budget: TreeBudget, signal?: AbortSignal): Promise<DraftTree>;
}

export type AnyDrafter = Drafter | TreeDrafter;

export function isTreeDrafter(d: AnyDrafter): d is TreeDrafter {
  return typeof (d as Partial<TreeDrafter>).proposeTree === "function";
}
