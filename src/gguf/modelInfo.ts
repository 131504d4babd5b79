// What a model file says about itself, read once with our own GGUF reader before any backend
// sees it: a clear error for files that are not models, and the vocabulary a helper must match.

import { createHash } from "node:crypto";
import { excerpt, SpecdecError } from "../errors.js";
import { metaArray, metaNumber, metaString, openGguf, type GgufFile } from "./reader.js";
import { GgmlType } from "./ggmlTypes.js";

/** The vocabulary as a model file declares it. */
export interface Vocabulary {
  /** tokenizer.ggml.model ("llama", "gpt2", ...), when the file says. */
  readonly model: string | undefined;
  /** Token texts by id. */
  readonly tokens: readonly string[];
  /** sha256 over the token texts (each followed by a NUL byte): ties helper files to this vocabulary. */
  readonly fingerprint: string;
}

/** A validated model file: what every backend needs to know before it loads the weights. */
export interface ModelFileInfo {
  readonly path: string;
  readonly architecture: string;
  /** `<arch>.context_length`, when the file says. */
  readonly contextLength: number | undefined;
  readonly vocab: Vocabulary;
  /** Whether some matrix is stored in a block format (llama.cpp then rounds its products' inputs to 8 bits). */
  readonly quantizedWeights: boolean;
}

// Float storage types (F32, F16, BF16): products with them read float activations.
const FLOAT_TYPES = new Set<number>([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

/** The vocabulary of an open GGUF file, or undefined when it has none. */
export function readVocabulary(f: GgufFile): Vocabulary | undefined {
  const tokens = metaArray(f, "tokenizer.ggml.tokens");
  if (!tokens || !tokens.every((t) => typeof t === "string")) return undefined;
  return { model: metaString(f, "tokenizer.ggml.model"), tokens: tokens as string[], fingerprint: vocabFingerprint(tokens as string[]) };
}

/** Check an open GGUF file is a model (architecture, tokenizer, tensors) and describe it. */
export function describeModelFile(f: GgufFile): ModelFileInfo {
  const architecture = metaString(f, "general.architecture");
  if (!architecture) throw new SpecdecError(`${f.path}: GGUF file has no general.architecture: not a model`);
  const vocab = readVocabulary(f);
  if (!vocab) throw new SpecdecError(`${f.path}: GGUF file has no tokenizer (tokenizer.ggml.tokens)`);
  if (f.tensors.length === 0) throw new SpecdecError(`${f.path}: GGUF file has no tensors (a vocabulary-only file?)`);
  const quantizedWeights = f.tensors.some((t) => t.dims.length >= 2 && !FLOAT_TYPES.has(t.type));
  return { path: f.path, architecture, contextLength: metaNumber(f, `${architecture}.context_length`), vocab, quantizedWeights };
}

/** Open, validate and describe a model file (for backends that load the weights themselves). */
export function inspectModelFile(path: string): ModelFileInfo {
  const f = openGguf(path);
  try {
    return describeModelFile(f);
  } finally {
    f.close();
  }
}

/** Throws a clear error when two models cannot share drafts (different vocabularies). */
export function checkSameVocabulary(target: Vocabulary, draft: Vocabulary, draftPath: string): void {
  if (target.model !== draft.model) throw new SpecdecError(`draft model ${draftPath} uses tokenizer '${excerpt(String(draft.model))}', the target uses '${excerpt(String(target.model))}': vocabularies must match`);
  if (target.tokens.length !== draft.tokens.length)
    throw new SpecdecError(`draft model ${draftPath} has ${draft.tokens.length} tokens, the target has ${target.tokens.length}: vocabularies must match`);
  if (target.fingerprint === draft.fingerprint) return;
  for (let i = 0; i < target.tokens.length; i++) {
    if (target.tokens[i] !== draft.tokens[i])
      throw new SpecdecError(`draft model ${draftPath} differs from the target's vocabulary at token ${i} (${excerpt(JSON.stringify(draft.tokens[i]))} vs ${excerpt(JSON.stringify(target.tokens[i]))})`);
  }
}

/** sha256 over the token texts, each followed by a NUL byte. */
export function vocabFingerprint(tokens: readonly string[]): string {
  const h = createHash("sha256");
  for (const t of tokens) h.update(t).update("\0");
  return h.digest("hex");
}
