import { excerpt, SpecdecError } from "../errors.js";
import { metaArray, metaNumber, metaString, type GgufFile } from "../gguf/reader.js";

/** Architectures the built-in engine runs, and how each differs from plain llama. */
export const ARCHITECTURES = {
  llama: { ropeNeox: false, attnBias: false },
  qwen2: { ropeNeox: true, attnBias: true },
} as const;
export type Architecture = keyof typeof ARCHITECTURES;

export interface HParams {
  arch: Architecture;
  vocabSize: number;
  dim: number; // embedding length
  hiddenDim: number; // feed-forward length
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  kvDim: number; // nKvHeads × headDim
  contextLength: number;
  normEps: number;
  ropeBase: number;
  ropeDim: number; // leading dimensions of each head that are rotated
  ropeScale: number; // linear position scaling (1 = none)
  ropeNeox: boolean; // rotate (i, i + d/2) pairs instead of (2i, 2i + 1)
  attnBias: boolean;
}

/** Read and sanity-check the hyperparameters; absurd values are a clear error, not a huge allocation. */
export function readHParams(f: GgufFile): HParams {
  const arch = metaString(f, "general.architecture") ?? "";
  if (!(arch in ARCHITECTURES)) throw new SpecdecError(`${f.path}: architecture '${excerpt(arch)}' is not supported by the built-in engine (supported: ${Object.keys(ARCHITECTURES).join(", ")})`);
  const a = arch as Architecture;
  const need = (key: string): number => {
    const v = metaNumber(f, `${a}.${key}`);
    if (v === undefined) throw new SpecdecError(`${f.path}: missing ${a}.${key}`);
    return v;
  };
  const dim = need("embedding_length");
  const nHeads = need("attention.head_count");
  const nKvHeads = metaNumber(f, `${a}.attention.head_count_kv`) ?? nHeads;
  const headDim = dim / nHeads;
  const vocabSize = metaArray(f, "tokenizer.ggml.tokens")?.length ?? metaNumber(f, `${a}.vocab_size`) ?? 0;
  const scalingType = metaString(f, `${a}.rope.scaling.type`);
  const scalingFactor = metaNumber(f, `${a}.rope.scaling.factor`) ?? 1;
  const hp: HParams = {
    arch: a,
    vocabSize,
    dim,
    hiddenDim: need("feed_forward_length"),
    nLayers: need("block_count"),
    nHeads,
    nKvHeads,
    headDim,
    kvDim: nKvHeads * headDim,
    contextLength: need("context_length"),
    normEps: metaNumber(f, `${a}.attention.layer_norm_rms_epsilon`) ?? 1e-5,
    ropeBase: metaNumber(f, `${a}.rope.freq_base`) ?? 10000,
    ropeDim: metaNumber(f, `${a}.rope.dimension_count`) ?? headDim,
    ropeScale: scalingType === "linear" && scalingFactor > 0 ? 1 / scalingFactor : 1,
    ...ARCHITECTURES[a],
  };
  const ok = (x: number, max: number) => Number.isInteger(x) && x >= 1 && x <= max;
  if (!ok(hp.dim, 1 << 16) || !ok(hp.hiddenDim, 1 << 18) || !ok(hp.nLayers, 1024) || !ok(hp.nHeads, 1024) || !ok(hp.nKvHeads, hp.nHeads) || !ok(hp.vocabSize, 1 << 22) || !ok(hp.contextLength, 1 << 24))
    throw new SpecdecError(`${f.path}: absurd or inconsistent model dimensions (dim ${hp.dim}, ffn ${hp.hiddenDim}, layers ${hp.nLayers}, heads ${hp.nHeads}/${hp.nKvHeads}, vocab ${hp.vocabSize}, context ${hp.contextLength})`);
  if (!Number.isInteger(headDim) || nHeads % nKvHeads !== 0 || hp.ropeDim > headDim || hp.ropeDim % 2 !== 0)
    throw new SpecdecError(`${f.path}: inconsistent attention shape (dim ${dim}, ${nHeads} heads, ${nKvHeads} KV heads, rope dims ${hp.ropeDim})`);
  if (scalingType && scalingType !== "linear" && scalingType !== "none")
    throw new SpecdecError(`${f.path}: rope scaling '${excerpt(scalingType)}' is not supported by the built-in engine`);
  // NaN, infinite or negative values would silently turn every output into NaN.
  if (!(hp.ropeBase > 0 && Number.isFinite(hp.ropeBase))) throw new SpecdecError(`${f.path}: ${a}.rope.freq_base must be a positive number, got ${hp.ropeBase}`);
  if (!(hp.normEps >= 0 && Number.isFinite(hp.normEps))) throw new SpecdecError(`${f.path}: ${a}.attention.layer_norm_rms_epsilon must be a non-negative number, got ${hp.normEps}`);
  if (scalingType === "linear" && !(scalingFactor >= 0 && Number.isFinite(scalingFactor))) // 0 means none, as in llama.cpp
    throw new SpecdecError(`${f.path}: ${a}.rope.scaling.factor must be a positive number, got ${scalingFactor}`);
  return hp;
}
