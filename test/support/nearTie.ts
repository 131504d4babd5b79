// llama.cpp's batched and one-token passes may round differently; a flip of the argmax is only
// acceptable where the two best tokens were this close (probability difference).
import type { Target } from "../../src/targets/target.js";
import type { Token } from "../../src/types.js";

export const NEAR_TIE = 2e-3;

/** Top-2 probability gap of the target at generated position `at`, computed one token at a time. */
export async function top2GapAt(target: Target, prompt: string, tokens: readonly Token[], at: number): Promise<number> {
  const seq = [...target.tokenize(prompt), ...tokens.slice(0, at)];
  await target.reset();
  let d!: Float32Array;
  for (const t of seq) d = (await target.evaluate([t])).probs![0];
  const sorted = [...d].sort((a, b) => b - a);
  return sorted[0] - sorted[1];
}
