// The fuzzer's one door into specdec: every call it makes into the library goes through this
// file, so a change of the library's API (targets, drafters, generation) is ported here alone.
// No other file under fuzz/ imports from src/.

import { BuiltinTarget } from "../src/targets/builtin.js";
import { loadTarget } from "../src/targets/loadTarget.js";
import { MedusaHeads } from "../src/drafters/medusaHeads.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { NoDrafter } from "../src/drafters/none.js";

export { SpecdecError } from "../src/errors.js";
export { openGguf, GgufValueType, valueTypeName, type GgufFile, type GgufValue } from "../src/gguf/reader.js";
export { ggmlTypeInfo } from "../src/gguf/ggmlTypes.js";
export { encodeMetadataEntry, type GgufWriteEntry } from "../src/gguf/writer.js";
export { loadTokenizer, TokenTextDecoder, type Tokenizer } from "../src/tokenizer/index.js";
export { BYTE_TO_CHAR } from "../src/tokenizer/byteLevel.js";
export { SeededRng } from "../src/sampling/rng.js";
export { PROJECT_ROOT, sharedDir } from "../test/support/sharedData.js";
export { defaultModels } from "../src/defaultModels.js";
export { markdownTable } from "../src/compare.js";
export { dequantizeRow, isSupportedType } from "../src/engine/quant/index.js";

export type FuzzBackend = "builtin" | "llama.cpp";

export interface GenerateProbe {
  /** The greedy tokens generated. */
  tokens: number[];
  /** False when the next-token distribution after the prompt has a NaN, an infinity or no mass. */
  finite: boolean;
}

/**
 * Load `path` on `backend` with the model's own context size (as a user would), check the
 * distribution after the prompt, then generate `maxTokens` greedy tokens with no drafter.
 */
export async function loadAndGenerate(backend: FuzzBackend, path: string, prompt: string, maxTokens: number): Promise<GenerateProbe> {
  const target = await loadTarget(backend, path);
  try {
    const ids = target.tokenize(prompt);
    let finite = true;
    if (ids.length > 0 && ids.length < target.contextSize) {
      const [dist] = (await target.evaluate(ids, { outputs: "last" })).probs!;
      let sum = 0;
      for (const p of dist) sum += p;
      finite = Number.isFinite(sum) && sum > 0.5;
      await target.reset();
    }
    const result = await generate(target, new NoDrafter(), { prompt, maxTokens });
    return { tokens: result.tokens, finite };
  } finally {
    await target.dispose();
  }
}

const medusaTargets = new Map<string, BuiltinTarget>();

/**
 * Load Medusa heads from `headsPath` for the built-in target `targetPath` (loaded once per
 * process) and run every head once on a hidden state; false when a head's logits are not finite.
 */
export async function loadMedusaAndPredict(headsPath: string, targetPath: string): Promise<boolean> {
  let t = medusaTargets.get(targetPath);
  if (!t) medusaTargets.set(targetPath, (t = await BuiltinTarget.load(targetPath, { contextSize: 64 })));
  const heads = MedusaHeads.load(headsPath, t);
  const h = new Float32Array(t.hiddenSize).fill(0.1);
  const out = new Float32Array(t.vocabSize);
  for (let k = 0; k < heads.count; k++) {
    heads.logits(k, h, out);
    if (!out.every(Number.isFinite)) return false;
  }
  return true;
}
