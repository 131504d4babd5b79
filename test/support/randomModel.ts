// Small random-weight llama-family GGUF models for checking the built-in engine against
// llama.cpp, with the stories260K tokenizer (SentencePiece, 512 tokens) copied from shared data.
// The weights depend only on the spec's shape and seed, so the same model can be written in any
// tensor type (and in F32 as the unquantized original).

import { openGguf, type GgufArray } from "../../src/gguf/reader.js";
import { GgmlType } from "../../src/gguf/ggmlTypes.js";
import { kv, writeGguf, type GgufWriteEntry, type GgufWriteTensor } from "../../src/gguf/writer.js";
import { dequantizeRow, quantizeRow } from "../../src/engine/quant/index.js";
import { sharedFile } from "./sharedData.js";
import { gaussian, rng } from "./quantFixtures.js";

export { gaussian, rng };

export const TYPE_NAMES: Record<number, string> = {
  [GgmlType.F32]: "F32", [GgmlType.F16]: "F16", [GgmlType.BF16]: "BF16", [GgmlType.Q8_0]: "Q8_0", [GgmlType.Q4_0]: "Q4_0",
  [GgmlType.Q4_1]: "Q4_1", [GgmlType.Q5_0]: "Q5_0", [GgmlType.Q5_1]: "Q5_1", [GgmlType.Q4_K]: "Q4_K", [GgmlType.Q5_K]: "Q5_K", [GgmlType.Q6_K]: "Q6_K",
};

let tokenizerCache: GgufWriteEntry[] | undefined;

/** The tokenizer.* metadata of stories260K.gguf (512 tokens, SentencePiece). */
export function stories260KTokenizer(): GgufWriteEntry[] {
  if (!tokenizerCache) {
    const src = openGguf(sharedFile("models", "stories260K.gguf"));
    try {
      tokenizerCache = [...src.metadata].filter(([k]) => k.startsWith("tokenizer.")).map(([key, e]) => ({ key, ...e }));
    } finally {
      src.close();
    }
  }
  return tokenizerCache;
}

/** tokenizer.* metadata of a SentencePiece vocabulary of `n` tokens: <unk>, <s>, </s>, then ▁a, ▁b, ... */
function tinyTokenizer(n: number): GgufWriteEntry[] {
  if (n < 4 || n > 29) throw new Error(`tiny vocabulary of ${n} tokens: 4 to 29`);
  const pieces = Array.from({ length: n - 3 }, (_, i) => "\u2581" + String.fromCharCode(97 + i));
  return [
    kv.string("tokenizer.ggml.model", "llama"),
    kv.strings("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", ...pieces]),
    kv.f32s("tokenizer.ggml.scores", [0, 0, 0, ...pieces.map((_, i) => -i)]),
    kv.i32s("tokenizer.ggml.token_type", [2, 3, 3, ...pieces.map(() => 1)]),
    kv.u32("tokenizer.ggml.bos_token_id", 1), kv.u32("tokenizer.ggml.eos_token_id", 2), kv.u32("tokenizer.ggml.unknown_token_id", 0),
  ];
}

export interface RandomModelSpec {
  /** Default "llama". qwen2 has q/k/v biases and NeoX RoPE. */
  arch?: "llama" | "qwen2";
  /** Embedding length; K-quant rows need a multiple of 256. Default 256. */
  dim?: number;
  /** Feed-forward length. Default 512. */
  ffn?: number;
  /** Default 2. */
  layers?: number;
  /** Default 4. */
  heads?: number;
  /** Default = heads; fewer is grouped-query attention. */
  kvHeads?: number;
  /** No output.weight: the output projection is the token embedding. Default false. */
  tied?: boolean;
  /** Default 10000. */
  ropeBase?: number;
  /** Rotated dimensions of each head; default the head size. */
  ropeDim?: number;
  /** Writes {arch}.rope.scaling.type / .factor. */
  ropeScaling?: { type: string; factor: number };
  /** Default 1e-5. */
  normEps?: number;
  /** Default 64. */
  contextLength?: number;
  /** Standard deviation of the logits (sharpness of the distributions). Default 4. */
  logitScale?: number;
  /** Sharpness of the attention scores (gain of wq and wk). Default 1.5. */
  attnGain?: number;
  seed?: number;
  /**
   * A vocabulary of this many tokens (<unk>, <s>, </s>, then "▁a", "▁b", ...: SentencePiece
   * without byte pieces) instead of stories260K's 512: for tests that enumerate continuations.
   */
  vocab?: number;
}

/** A random model: metadata, and its tensors in a chosen type for the 2-D weights. */
export interface RandomModel {
  readonly spec: Required<Omit<RandomModelSpec, "ropeScaling">> & Pick<RandomModelSpec, "ropeScaling">;
  readonly metadata: GgufWriteEntry[];
  /** The tensors with every matrix quantized to `type` (norms and biases stay F32). */
  tensors(type: number): GgufWriteTensor[];
  /** The same, with each quantized matrix dequantized back to F32 (what the engine should compute with). */
  dequantizedTensors(type: number): GgufWriteTensor[];
  /** Write the model with matrices in `type` (F32 = the unquantized original). */
  write(path: string, type: number): void;
}

export function randomModel(s: RandomModelSpec = {}): RandomModel {
  const arch = s.arch ?? "llama";
  const E = s.dim ?? 256, F = s.ffn ?? 512, nLayers = s.layers ?? 2, H = s.heads ?? 4, Hkv = s.kvHeads ?? H;
  const headDim = E / H, kvDim = Hkv * headDim;
  const spec = {
    arch, dim: E, ffn: F, layers: nLayers, heads: H, kvHeads: Hkv, tied: s.tied ?? false, ropeBase: s.ropeBase ?? 10000,
    ropeDim: s.ropeDim ?? headDim, ropeScaling: s.ropeScaling, normEps: s.normEps ?? 1e-5, contextLength: s.contextLength ?? 64,
    logitScale: s.logitScale ?? 4, attnGain: s.attnGain ?? 1.5, seed: s.seed ?? 1, vocab: s.vocab ?? 0,
  };
  const tokenizer = s.vocab ? tinyTokenizer(s.vocab) : stories260KTokenizer();
  const V = (tokenizer.find((e) => e.key === "tokenizer.ggml.tokens")!.value as GgufArray).items.length;
  const a = arch;
  const metadata: GgufWriteEntry[] = [
    kv.string("general.architecture", a), kv.string("general.name", `specdec-random-${a}`),
    kv.u32(`${a}.context_length`, spec.contextLength), kv.u32(`${a}.embedding_length`, E), kv.u32(`${a}.feed_forward_length`, F),
    kv.u32(`${a}.block_count`, nLayers), kv.u32(`${a}.attention.head_count`, H), kv.u32(`${a}.attention.head_count_kv`, Hkv),
    kv.u32(`${a}.rope.dimension_count`, spec.ropeDim), kv.f32(`${a}.rope.freq_base`, spec.ropeBase),
    kv.f32(`${a}.attention.layer_norm_rms_epsilon`, spec.normEps), kv.u32(`${a}.vocab_size`, V),
  ];
  if (s.ropeScaling) metadata.push(kv.string(`${a}.rope.scaling.type`, s.ropeScaling.type), kv.f32(`${a}.rope.scaling.factor`, s.ropeScaling.factor));
  metadata.push(...tokenizer);

  // Random weights, in a fixed order so every spec with the same shape and seed gives the same model.
  const r = rng(spec.seed);
  const normal = (n: number, std: number, mean = 0) => Float32Array.from({ length: n }, () => mean + std * gaussian(r));
  const mats: { name: string; rows: number; cols: number; x: Float32Array }[] = [];
  const vecs: { name: string; x: Float32Array }[] = [];
  const mat = (name: string, rows: number, cols: number, gain: number) => mats.push({ name, rows, cols, x: normal(rows * cols, gain / Math.sqrt(cols)) });
  mat("token_embd.weight", V, E, Math.sqrt(E)); // unit-variance embeddings
  if (!spec.tied) mat("output.weight", V, E, spec.logitScale);
  vecs.push({ name: "output_norm.weight", x: normal(E, 0.1, 1) });
  for (let l = 0; l < nLayers; l++) {
    const p = `blk.${l}.`;
    vecs.push({ name: p + "attn_norm.weight", x: normal(E, 0.1, 1) }, { name: p + "ffn_norm.weight", x: normal(E, 0.1, 1) });
    mat(p + "attn_q.weight", E, E, spec.attnGain);
    mat(p + "attn_k.weight", kvDim, E, spec.attnGain);
    mat(p + "attn_v.weight", kvDim, E, 1);
    mat(p + "attn_output.weight", E, E, 1);
    mat(p + "ffn_gate.weight", F, E, 1);
    mat(p + "ffn_up.weight", F, E, 1);
    mat(p + "ffn_down.weight", E, F, 1);
    if (arch === "qwen2") vecs.push({ name: p + "attn_q.bias", x: normal(E, 0.5) }, { name: p + "attn_k.bias", x: normal(kvDim, 0.5) }, { name: p + "attn_v.bias", x: normal(kvDim, 0.5) });
  }
  if (spec.tied) {
    // The embedding doubles as the output projection: scale it so the logits still have std about
    // logitScale (the hidden state after the output norm has rms about 1). The input side does not
    // care: the first norm removes the scale.
    const emb = mats[0].x;
    const k = spec.logitScale / Math.sqrt(E);
    for (let i = 0; i < emb.length; i++) emb[i] *= k;
  }

  const vecTensors = (): GgufWriteTensor[] => vecs.map(({ name, x }) => ({ name, dims: [x.length], type: GgmlType.F32, data: new Uint8Array(x.buffer.slice(0)) }));
  const quantCache = new Map<number, Uint8Array[]>();
  const quantized = (type: number): Uint8Array[] => {
    let q = quantCache.get(type);
    if (!q) quantCache.set(type, (q = mats.map(({ x, rows, cols }) => (type === GgmlType.F32 ? new Uint8Array(x.buffer.slice(0)) : quantizeRow(type, x, rows * cols)))));
    return q;
  };
  const model: RandomModel = {
    spec,
    metadata,
    tensors(type) {
      const q = quantized(type);
      return [...mats.map(({ name, rows, cols }, i) => ({ name, dims: [cols, rows], type, data: q[i] })), ...vecTensors()];
    },
    dequantizedTensors(type) {
      const q = quantized(type);
      return [
        ...mats.map(({ name, rows, cols }, i) => {
          const d = new Float32Array(rows * cols);
          dequantizeRow(type, q[i], 0, d, rows * cols);
          return { name, dims: [cols, rows], type: GgmlType.F32, data: new Uint8Array(d.buffer) };
        }),
        ...vecTensors(),
      ];
    },
    write(path, type) {
      writeGguf(path, { metadata, tensors: model.tensors(type), overwrite: true });
    },
  };
  return model;
}
