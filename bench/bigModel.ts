// The benchmarks' ~100M-parameter model, written with our own GGUF writer.

import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { openGguf } from "../src/gguf/reader.js";
import { kv, writeGguf, type GgufWriteTensor } from "../src/gguf/writer.js";
import { quantizeRow } from "../src/engine/quant/index.js";
import { sharedFile } from "../test/support/sharedData.js";

const STORIES = sharedFile("models", "stories260K.gguf");
const CONTEXT = 512;

/**
 * A ~100M-parameter random llama (dim 768, 12 layers, FFN 2560, the stories260K tokenizer) with
 * its matrices in `type`, written once to the temp folder: a model of realistic weight traffic.
 */
export function bigModel(type: number, typeName: string): string {
  const path = join(tmpdir(), `specdec-bench-llama100M-${typeName}.gguf`);
  if (existsSync(path)) return path;
  const E = 768, F = 2560, L = 12, H = 12, V = 512;
  const src = openGguf(STORIES);
  const tokenizer = [...src.metadata].filter(([k]) => k.startsWith("tokenizer.")).map(([key, e]) => ({ key, ...e }));
  src.close();
  const metadata = [
    kv.string("general.architecture", "llama"), kv.string("general.name", "specdec-bench-100M"),
    kv.u32("llama.context_length", CONTEXT), kv.u32("llama.embedding_length", E), kv.u32("llama.feed_forward_length", F),
    kv.u32("llama.block_count", L), kv.u32("llama.attention.head_count", H), kv.u32("llama.attention.head_count_kv", H),
    kv.u32("llama.rope.dimension_count", E / H), kv.f32("llama.rope.freq_base", 10000), kv.f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
    kv.u32("llama.vocab_size", V), ...tokenizer,
  ];
  let s = 12345;
  // Uniform with the variance of N(0, gain^2): cheap and good enough for timing.
  const random = (n: number, gain: number): Float32Array => {
    const a = new Float32Array(n), k = gain * Math.sqrt(12) / 2 ** 32;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[i] = (s - 2 ** 31) * k;
    }
    return a;
  };
  const tensors: GgufWriteTensor[] = [];
  const matrix = (name: string, rows: number, cols: number, gain: number) => {
    const x = random(rows * cols, gain);
    const data = type === GgmlType.F32 ? new Uint8Array(x.buffer) : quantizeRow(type, x, rows * cols);
    tensors.push({ name, dims: [cols, rows], type, data });
  };
  const ones = (name: string) => tensors.push({ name, dims: [E], type: GgmlType.F32, data: new Uint8Array(new Float32Array(E).fill(1).buffer) });
  matrix("token_embd.weight", V, E, 1);
  matrix("output.weight", V, E, 3 / Math.sqrt(E));
  ones("output_norm.weight");
  for (let l = 0; l < L; l++) {
    const p = `blk.${l}.`;
    ones(p + "attn_norm.weight");
    ones(p + "ffn_norm.weight");
    for (const n of ["attn_q", "attn_k", "attn_v", "attn_output"]) matrix(p + n + ".weight", E, E, 1 / Math.sqrt(E));
    matrix(p + "ffn_gate.weight", F, E, 1 / Math.sqrt(E));
    matrix(p + "ffn_up.weight", F, E, 1 / Math.sqrt(E));
    matrix(p + "ffn_down.weight", E, F, 1 / Math.sqrt(F));
  }
  writeGguf(path, { metadata, tensors });
  return path;
}
