// Medusa-1 heads (Cai et al. 2024): K small heads on the target's final hidden state; head k
// (1-based) predicts the token k + 1 positions after the state's position. Each head is a
// residual block h + SiLU(W h + b) followed by a vocabulary projection — its own matrix, or the
// target's output matrix when the file has none.
//
// File format: a GGUF file of its own, architecture "medusa":
//   medusa.head_count (u32) K, medusa.hidden_size (u32), medusa.vocab_size (u32),
//   medusa.target.vocab_sha256 (string) — the target's vocabulary fingerprint,
//   medusa.target.name (string, informational);
//   tensors medusa.{k}.res.weight (dim × dim), medusa.{k}.res.bias (dim),
//           medusa.{k}.proj.weight (vocab × dim, optional), k = 0 .. K - 1.

import { excerpt, SpecdecError } from "../errors.js";
import { GgmlType } from "../gguf/ggmlTypes.js";
import { metaNumber, metaString, openGguf } from "../gguf/reader.js";
import { kv, writeGguf } from "../gguf/writer.js";
import { GgmlMatrix, type Matrix } from "../engine/matrix.js";
import { readWeights } from "../engine/llamaWeights.js";
import { dequantizeRow } from "../engine/quant/index.js";
import type { Target } from "../targets/target.js";

export interface MedusaHead {
  res: Matrix; // (dim, dim)
  bias: Float32Array; // (dim)
  proj?: Matrix; // (vocab, dim); undefined = the target's output matrix
}

/** What the heads must agree with: the target's hidden size and vocabulary, and its output matrix for heads without one. */
export type MedusaTargetInfo = Pick<Target, "hiddenSize" | "vocabSize" | "vocab" | "backend" | "tokenMatrices">;

export class MedusaHeads {
  private readonly h2: Float32Array; // (dim) the residual block's output
  private readonly tmp: Float32Array; // (dim)

  constructor(
    readonly heads: readonly MedusaHead[],
    readonly vocabSize: number,
    /** The target's output matrix, for heads without a projection of their own. */
    private readonly sharedProjection: Matrix | undefined,
  ) {
    const dim = heads[0]?.res.cols ?? 0;
    this.h2 = new Float32Array(dim);
    this.tmp = new Float32Array(dim);
  }

  get count(): number {
    return this.heads.length;
  }

  /** Logits of head k (0-based) for hidden state h (dim) into out (vocab). */
  logits(k: number, h: Float32Array, out: Float32Array): void {
    const head = this.heads[k];
    head.res.matMul(h, 1, this.tmp);
    for (let i = 0; i < h.length; i++) {
      const z = this.tmp[i] + head.bias[i];
      this.h2[i] = h[i] + z / (1 + Math.exp(-z));
    }
    (head.proj ?? this.sharedProjection!).matMul(this.h2, 1, out);
  }

  /** Load heads and check they were made for this target. */
  static load(path: string, target: MedusaTargetInfo): MedusaHeads {
    const f = openGguf(path);
    try {
      if (metaString(f, "general.architecture") !== "medusa") throw new SpecdecError(`${path} is not a Medusa heads file (general.architecture is '${excerpt(metaString(f, "general.architecture") ?? "missing")}')`);
      const K = metaNumber(f, "medusa.head_count") ?? 0;
      const dim = metaNumber(f, "medusa.hidden_size");
      const vocab = metaNumber(f, "medusa.vocab_size");
      const fp = metaString(f, "medusa.target.vocab_sha256");
      if (!Number.isInteger(K) || K < 1 || K > 64) throw new SpecdecError(`${path}: medusa.head_count must be 1 to 64, got ${K}`);
      if (dim !== target.hiddenSize) throw new SpecdecError(`${path}: heads made for hidden size ${dim}, the target has ${target.hiddenSize}: made for another model`);
      if (vocab !== target.vocabSize) throw new SpecdecError(`${path}: heads made for a ${vocab}-token vocabulary, the target has ${target.vocabSize}: made for another model`);
      if (fp !== target.vocab.fingerprint) throw new SpecdecError(`${path}: heads made for another vocabulary (fingerprint ${fp === undefined ? "missing" : excerpt(String(fp).slice(0, 12))}…, the target's is ${target.vocab.fingerprint.slice(0, 12)}…)`);
      const byName = new Map(f.tensors.map((t) => [t.name, t]));
      const tensor = (name: string, dims: number[], optional = false) => {
        const t = byName.get(name);
        if (!t) {
          if (optional) return undefined;
          throw new SpecdecError(`${path}: tensor ${name} is missing`);
        }
        if (t.dims.join() !== dims.join()) throw new SpecdecError(`${path}: tensor ${name} has shape [${t.dims.join(", ")}], expected [${dims.join(", ")}]`);
        return t;
      };
      const heads: MedusaHead[] = [];
      for (let k = 0; k < K; k++) {
        const res = tensor(`medusa.${k}.res.weight`, [dim, dim])!;
        const bias = tensor(`medusa.${k}.res.bias`, [dim])!;
        const proj = tensor(`medusa.${k}.proj.weight`, [dim, vocab], true);
        const b = new Float32Array(dim);
        dequantizeRow(bias.type, readWeights(f, bias), 0, b, dim);
        heads.push({
          res: new GgmlMatrix(res.type, readWeights(f, res), dim, dim),
          bias: b,
          proj: proj && new GgmlMatrix(proj.type, readWeights(f, proj), vocab, dim),
        });
      }
      let shared: Matrix | undefined;
      if (heads.some((h) => !h.proj)) {
        if (!target.tokenMatrices) throw new SpecdecError(`${path}: these heads share the target's output matrix, which the ${target.backend} backend does not expose`);
        shared = target.tokenMatrices().output;
      }
      return new MedusaHeads(heads, target.vocabSize, shared);
    } finally {
      f.close();
    }
  }
}

/** F32 weights of one head, for writing. */
export interface MedusaHeadWeights {
  res: Float32Array; // (dim, dim)
  bias: Float32Array; // (dim)
  proj?: Float32Array; // (vocab, dim)
}

/** Write heads for a target; refuses to overwrite an existing file unless `overwrite`. */
export function saveMedusaHeads(path: string, heads: readonly MedusaHeadWeights[], target: { hiddenSize: number; vocabSize: number; vocabFingerprint: string; name?: string }, options: { overwrite?: boolean } = {}): void {
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const dim = target.hiddenSize;
  writeGguf(path, {
    metadata: [
      kv.string("general.architecture", "medusa"),
      kv.u32("medusa.head_count", heads.length),
      kv.u32("medusa.hidden_size", dim),
      kv.u32("medusa.vocab_size", target.vocabSize),
      kv.string("medusa.target.vocab_sha256", target.vocabFingerprint),
      kv.string("medusa.target.name", target.name ?? ""),
    ],
    tensors: heads.flatMap((h, k) => [
      { name: `medusa.${k}.res.weight`, dims: [dim, dim], type: GgmlType.F32, data: bytes(h.res) },
      { name: `medusa.${k}.res.bias`, dims: [dim], type: GgmlType.F32, data: bytes(h.bias) },
      ...(h.proj ? [{ name: `medusa.${k}.proj.weight`, dims: [dim, target.vocabSize], type: GgmlType.F32, data: bytes(h.proj) }] : []),
    ]),
    overwrite: options.overwrite,
  });
}
