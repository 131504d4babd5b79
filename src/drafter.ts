import type { Distribution, Rng, Token } from "./types.js";
import type { SamplingSettings } from "./sampling/samplingSettings.js";

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
}

/**
 * Proposes tokens for the target to check. Lifecycle: `begin` once per generation,
 * then `propose` / `observe` alternately, then `dispose` when the drafter is no longer used.
 */
export interface Drafter {
  readonly name: string;
  begin(start: DrafterStart): Promise<void>;
  /** Guess up to `maxTokens` tokens that follow `context` (the prompt plus everything committed). */
  propose(context: readonly Token[], maxTokens: number, signal?: AbortSignal): Promise<Draft>;
  /** Feedback after verification; a stateful drafter rolls its own cache back here. */
  observe(outcome: DraftOutcome): Promise<void> | void;
  dispose?(): Promise<void>;
}
