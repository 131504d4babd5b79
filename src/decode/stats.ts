/** Numbers every run reports. Times in milliseconds. */
export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  /** Target forward passes while generating (the prompt's prefill not counted). */
  targetCalls: number;
  draftedTokens: number;
  acceptedTokens: number;
  /**
   * Tokens the target passes decided: generatedTokens plus the end-of-generation token when the
   * run ended on one (it was decided by a pass, though it is not output).
   */
  decidedTokens: number;
  /** Mean tokens decided per target call: decidedTokens / targetCalls. Plain decoding = 1. */
  tau: number;
  /** acceptedTokens / draftedTokens (0 when nothing was drafted). */
  acceptanceRate: number;
  /** Mean guesses the planner allowed per step (0 for a step that did not speculate). */
  meanBudget: number;
  /** Steps that speculated (drafted at least one guess). */
  speculatedSteps: number;
  /** For draft position i: how often a guess was drafted there (any branch of a tree), and accepted. */
  acceptanceByPosition: { drafted: number; accepted: number; rate: number }[];
  /** generatedTokens per second of decoding (prefill excluded). */
  tokensPerSecond: number;
  prefillMs: number;
  draftMs: number;
  /** Target passes plus verification. */
  verifyMs: number;
  decodeMs: number;
}

/** Accumulates a run's counters; `finish` derives the ratios. */
export class StatsRecorder {
  promptTokens = 0;
  generatedTokens = 0;
  decidedTokens = 0;
  targetCalls = 0;
  draftedTokens = 0;
  acceptedTokens = 0;
  prefillMs = 0;
  draftMs = 0;
  verifyMs = 0;
  private budget = 0;
  private speculated = 0;
  private perPosition: { drafted: number; accepted: number }[] = [];

  /** One target pass that checked `drafted` guesses (tree nodes) reaching `depth` positions ahead, with a budget of `budget` guesses. */
  recordStep(drafted: number, depth: number, accepted: number, budget = drafted): void {
    this.targetCalls++;
    this.budget += budget;
    if (drafted > 0) this.speculated++;
    this.draftedTokens += drafted;
    this.acceptedTokens += accepted;
    for (let i = 0; i < depth; i++) {
      this.perPosition[i] ??= { drafted: 0, accepted: 0 };
      this.perPosition[i].drafted++;
      if (i < accepted) this.perPosition[i].accepted++;
    }
  }

  finish(): GenerationStats {
    const decodeMs = this.draftMs + this.verifyMs;
    return {
      promptTokens: this.promptTokens,
      generatedTokens: this.generatedTokens,
      decidedTokens: this.decidedTokens,
      targetCalls: this.targetCalls,
      draftedTokens: this.draftedTokens,
      acceptedTokens: this.acceptedTokens,
      tau: this.targetCalls > 0 ? this.decidedTokens / this.targetCalls : 0,
      acceptanceRate: this.draftedTokens > 0 ? this.acceptedTokens / this.draftedTokens : 0,
      meanBudget: this.targetCalls > 0 ? this.budget / this.targetCalls : 0,
      speculatedSteps: this.speculated,
      acceptanceByPosition: this.perPosition.map((p) => ({ ...p, rate: p.accepted / p.drafted })),
      tokensPerSecond: decodeMs > 0 ? (this.generatedTokens * 1000) / decodeMs : 0,
      prefillMs: this.prefillMs,
      draftMs: this.draftMs,
      verifyMs: this.verifyMs,
      decodeMs,
    };
  }
}
