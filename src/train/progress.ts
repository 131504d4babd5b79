// How the three trainers report what they are doing: the same events from each, as callbacks in
// their hooks. Showing them (bars, plain lines, nothing) is the caller's business (src/cli/progress.ts).

/** One optimizer step done. */
export interface TrainStep {
  step: number; // 1-based
  steps: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The step's training loss (what the optimizer minimises, nats). */
  loss: number;
  /** Fraction of the step's positions where the model's top guess is the wanted token. */
  accuracy: number;
  /** Wall time of the step. */
  ms: number;
  /** Positions the step trained, where that varies from step to step (default: the display's tokens per step). */
  tokens?: number;
}

/** Preparing the data: `done` of `total` units of `what`. */
export interface PrepareProgress {
  /** Tokenizer merges (train model), training windows (train draft), training positions (train medusa), sequences (train eagle). */
  what: "merges" | "windows" | "positions" | "sequences";
  done: number;
  total: number;
}

/** The progress callbacks every trainer takes (each optional). */
export interface ProgressHooks<Step extends TrainStep = TrainStep, Eval = never> {
  /** A message about the data: sizes, where it came from, how long it took. */
  onData?(message: string): void;
  onPrepare?(p: PrepareProgress): void;
  onStep?(s: Step): void;
  /** A held-out evaluation (at the end, and every evalEvery steps where the trainer has that). */
  onEval?(e: Eval): void;
}
