// Weights of a llama-family model (llama, qwen2) read from GGUF, kept in their storage type.

import { SpecdecError } from "../errors.js";
import type { GgufFile, GgufTensorInfo } from "../gguf/reader.js";
import type { HParams } from "./hparams.js";
import { GgmlMatrix, type Matrix } from "./matrix.js";
import { dequantizeRow, firstNonFinite, isSupportedType } from "./quant/index.js";
import { ggmlTypeInfo } from "../gguf/ggmlTypes.js";

export interface LayerWeights {
  attnNorm: Float32Array; // (dim)
  wq: Matrix; // (dim, dim)
  wk: Matrix; // (kvDim, dim)
  wv: Matrix; // (kvDim, dim)
  wo: Matrix; // (dim, dim)
  bq?: Float32Array; // (dim) — qwen2
  bk?: Float32Array; // (kvDim)
  bv?: Float32Array; // (kvDim)
  ffnNorm: Float32Array; // (dim)
  wGate: Matrix; // (hiddenDim, dim)
  wUp: Matrix; // (hiddenDim, dim)
  wDown: Matrix; // (dim, hiddenDim)
}

export interface LlamaWeights {
  embed: Matrix; // (vocab, dim)
  layers: LayerWeights[];
  outputNorm: Float32Array; // (dim)
  output: Matrix; // (vocab, dim); the embedding matrix when tied
}

/** The bytes of tensor t, refused (a clear error) when a value or scale in it is NaN or infinite. */
export function readWeights(f: GgufFile, t: GgufTensorInfo): Uint8Array {
  const data = f.readTensorData(t);
  const at = firstNonFinite(t.type, data, t.dims.reduce((a, b) => a * b, 1));
  if (at >= 0) throw new SpecdecError(`${f.path}: tensor ${t.name} has a non-finite value (NaN or infinity) at element ${at}: the file is damaged`);
  return data;
}

export function loadLlamaWeights(f: GgufFile, hp: HParams): LlamaWeights {
  const byName = new Map(f.tensors.map((t) => [t.name, t]));
  const info = (name: string, shape: number[], optional = false): GgufTensorInfo | undefined => {
    const t = byName.get(name);
    if (!t) {
      if (optional) return undefined;
      throw new SpecdecError(`${f.path}: tensor ${name} is missing`);
    }
    if (t.dims.length !== shape.length || t.dims.some((d, i) => d !== shape[i]))
      throw new SpecdecError(`${f.path}: tensor ${name} has shape [${t.dims.join(", ")}], expected [${shape.join(", ")}]`);
    if (!isSupportedType(t.type)) throw new SpecdecError(`${f.path}: tensor ${name} has type ${ggmlTypeInfo(t.type)?.name ?? t.type}, not supported by the built-in engine`);
    return t;
  };
  // ggml dims: [cols (contiguous), rows].
  const matrix = (name: string, rows: number, cols: number): Matrix => {
    const t = info(name, [cols, rows])!;
    return new GgmlMatrix(t.type, readWeights(f, t), rows, cols);
  };
  const vector = (name: string, n: number, optional = false): Float32Array | undefined => {
    const t = info(name, [n], optional);
    if (!t) return undefined;
    const out = new Float32Array(n);
    dequantizeRow(t.type, readWeights(f, t), 0, out, n);
    return out;
  };
  const { dim, kvDim, hiddenDim, vocabSize } = hp;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < hp.nLayers; l++) {
    const p = `blk.${l}.`;
    layers.push({
      attnNorm: vector(p + "attn_norm.weight", dim)!,
      wq: matrix(p + "attn_q.weight", dim, dim),
      wk: matrix(p + "attn_k.weight", kvDim, dim),
      wv: matrix(p + "attn_v.weight", kvDim, dim),
      wo: matrix(p + "attn_output.weight", dim, dim),
      bq: vector(p + "attn_q.bias", dim, !hp.attnBias),
      bk: vector(p + "attn_k.bias", kvDim, !hp.attnBias),
      bv: vector(p + "attn_v.bias", kvDim, !hp.attnBias),
      ffnNorm: vector(p + "ffn_norm.weight", dim)!,
      wGate: matrix(p + "ffn_gate.weight", hiddenDim, dim),
      wUp: matrix(p + "ffn_up.weight", hiddenDim, dim),
      wDown: matrix(p + "ffn_down.weight", dim, hiddenDim),
    });
  }
  const embed = matrix("token_embd.weight", vocabSize, dim);
  const output = byName.has("output.weight") ? matrix("output.weight", vocabSize, dim) : embed; // tied embeddings
  return { embed, layers, outputNorm: vector("output_norm.weight", dim)!, output };
}
