// Checks shared by the trainer tests.
import type { BuiltinTarget } from "../../src/targets/builtin.js";
import { LlamaPass, type LlamaModel } from "../../src/train/llamaModel.js";

/** Largest |training forward pass logit − built-in engine logit| over a token sequence. */
export function maxTrainVsEngineLogitDiff(model: LlamaModel, engine: BuiltinTarget, tokens: readonly number[]): number {
  const trainLogits = new LlamaPass(model, 1, tokens.length).forward(tokens as number[]);
  engine.engine.truncate(0);
  const engineLogits = engine.engine.forward(tokens, { logits: "all" }).logits;
  let maxDiff = 0;
  for (let i = 0; i < trainLogits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(trainLogits[i] - engineLogits[i]));
  return maxDiff;
}
