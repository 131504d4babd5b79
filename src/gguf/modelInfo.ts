// What a model file says about itself, read with our own GGUF reader before any backend sees it:
// a clear error for files that are not models, and the vocabulary to check a helper against.

import { excerpt, SpecdecError } from "../errors.js";
import { metaArray, metaNumber, metaString, openGguf } from "./reader.js";

/** What a GGUF file says about its tokenizer, read with our own reader (used to check vocabularies match). */
export interface VocabSignature {
  readonly model: string | undefined;
  readonly tokens: readonly string[];
}

/** Validate a model file before handing it to a backend (llama.cpp reports bad files less clearly). */
export function inspectModelFile(path: string): { architecture: string; contextLength: number | undefined; vocab: VocabSignature } {
  const f = openGguf(path);
  try {
    const architecture = metaString(f, "general.architecture");
    if (!architecture) throw new SpecdecError(`${path}: GGUF file has no general.architecture: not a model`);
    const tokens = metaArray(f, "tokenizer.ggml.tokens");
    if (!tokens) throw new SpecdecError(`${path}: GGUF file has no tokenizer (tokenizer.ggml.tokens)`);
    if (f.tensors.length === 0) throw new SpecdecError(`${path}: GGUF file has no tensors (a vocabulary-only file?)`);
    return {
      architecture,
      contextLength: metaNumber(f, `${architecture}.context_length`),
      vocab: { model: metaString(f, "tokenizer.ggml.model"), tokens: tokens as string[] },
    };
  } finally {
    f.close();
  }
}

/** Throws a clear error when two models cannot share drafts (different vocabularies). */
export function checkSameVocabulary(target: VocabSignature, draft: VocabSignature, draftPath: string): void {
  if (target.model !== draft.model) throw new SpecdecError(`draft model ${draftPath} uses tokenizer '${excerpt(String(draft.model))}', the target uses '${excerpt(String(target.model))}': vocabularies must match`);
  if (target.tokens.length !== draft.tokens.length)
    throw new SpecdecError(`draft model ${draftPath} has ${draft.tokens.length} tokens, the target has ${target.tokens.length}: vocabularies must match`);
  for (let i = 0; i < target.tokens.length; i++) {
    if (target.tokens[i] !== draft.tokens[i])
      throw new SpecdecError(`draft model ${draftPath} differs from the target's vocabulary at token ${i} (${excerpt(JSON.stringify(draft.tokens[i]))} vs ${excerpt(JSON.stringify(target.tokens[i]))})`);
  }
}
