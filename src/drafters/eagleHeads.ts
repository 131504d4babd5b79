// An EAGLE head (Li et al. 2024, EAGLE-1): a small autoregressive model over the target's own
// features. Entry j reads the target's final hidden state f_j (after the output norm) and the
// embedding of the token t_{j+1} that followed it, and predicts the next feature f_{j+1}; the
// target's output matrix turns a predicted feature into logits for t_{j+2}. Drafting feeds the
// head's own predicted features back, one tree depth at a time.
//
//   x  = W_fc [e(t_{j+1}); f_j] + b_fc                      (dim)
//   x += Wo · attention(RoPE(Wq n), RoPE(Wk n), Wv n),  n = RMSNorm(x) · g_attn   (each block)
//   x += W_down (SiLU(W_gate n) ⊙ W_up n),              n = RMSNorm(x) · g_ffn
//   f̂_{j+1} = x;  logits = W_out f̂_{j+1}                    (the target's output matrix)
//
// (EAGLE-1 leaves out the first block's attention norm; the head here keeps the llama block
// as it is, which the trainer's layers and their gradient checks already cover.)
//
// The head keeps a KV cache of its own. Its first `committed` entries were made from the
// target's true features of committed tokens; drafted entries go after them and each attends to
// the committed entries, its ancestors and itself (a tree mask), at RoPE position parent + 1.
// Every per-entry computation runs in the same order whatever the batch (GgmlMatrix products
// are batch-invariant, attention walks the visible slots in ascending order), so a draft is a
// function of the committed tokens alone.
//
// File format: a GGUF file of its own, architecture "eagle":
//   eagle.hidden_size, eagle.vocab_size (u32) — the target's;
//   eagle.target.vocab_sha256 (string) — the target's vocabulary fingerprint; eagle.target.name;
//   eagle.block_count, eagle.attention.head_count, eagle.attention.head_count_kv,
//   eagle.feed_forward_length (u32); eagle.rope.freq_base, eagle.attention.layer_norm_rms_epsilon (f32);
//   tensors eagle.fc.weight (dim × 2·dim), eagle.fc.bias (dim), and per block l
//   eagle.blk.{l}.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight
//   (shapes as a llama block's).

import { excerpt, SpecdecError } from "../errors.js";
import { GgmlType } from "../gguf/ggmlTypes.js";
import { metaNumber, metaString, openGguf } from "../gguf/reader.js";
import { kv, writeGguf, type GgufWriteTensor } from "../gguf/writer.js";
import { GgmlMatrix, type Matrix } from "../engine/matrix.js";
import { dequantizeRow } from "../engine/quant/index.js";
import { rmsNormRows } from "../engine/transformer.js";
import { engineMemory, type AttendFn } from "../engine/wasm/wasmMatrix.js";
import type { Target } from "../targets/target.js";

/** The head's shape (what the file's metadata says besides the target's sizes). */
export interface EagleShape {
  /** Width: the target's hidden size. */
  readonly dim: number;
  readonly vocabSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** Feed-forward width. */
  readonly hidden: number;
  readonly ropeBase: number;
  readonly normEps: number;
}

/** Names of a block's tensors, in file order (a llama block's). */
export const EAGLE_BLOCK_TENSORS = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"] as const;
export type EagleBlockTensor = (typeof EAGLE_BLOCK_TENSORS)[number];

/** (rows, cols) of every tensor of the head (vectors: [n]). */
export function eagleTensorShapes(s: EagleShape): Map<string, number[]> {
  const kvDim = (s.dim / s.heads) * s.kvHeads;
  const m = new Map<string, number[]>([["eagle.fc.weight", [s.dim, 2 * s.dim]], ["eagle.fc.bias", [s.dim]]]);
  for (let l = 0; l < s.layers; l++) {
    const shapes: Record<EagleBlockTensor, number[]> = {
      attn_norm: [s.dim], attn_q: [s.dim, s.dim], attn_k: [kvDim, s.dim], attn_v: [kvDim, s.dim], attn_output: [s.dim, s.dim],
      ffn_norm: [s.dim], ffn_gate: [s.hidden, s.dim], ffn_up: [s.hidden, s.dim], ffn_down: [s.dim, s.hidden],
    };
    for (const t of EAGLE_BLOCK_TENSORS) m.set(`eagle.blk.${l}.${t}.weight`, shapes[t]);
  }
  return m;
}

/** Check a shape's numbers (one-line errors naming `where`). */
export function checkEagleShape(s: EagleShape, where: string): void {
  const ok = (x: number, max: number) => Number.isInteger(x) && x >= 1 && x <= max;
  if (!ok(s.dim, 1 << 16) || !ok(s.vocabSize, 1 << 22) || !ok(s.layers, 64) || !ok(s.heads, 1024) || !ok(s.kvHeads, s.heads) || !ok(s.hidden, 1 << 18))
    throw new SpecdecError(`${where}: absurd EAGLE head dimensions (dim ${s.dim}, vocab ${s.vocabSize}, ${s.layers} blocks, heads ${s.heads}/${s.kvHeads}, ffn ${s.hidden})`);
  if (s.dim % s.heads !== 0 || (s.dim / s.heads) % 2 !== 0 || s.heads % s.kvHeads !== 0)
    throw new SpecdecError(`${where}: dim ${s.dim} must split into ${s.heads} heads of an even size, shared by ${s.kvHeads} KV heads`);
  if (!(s.ropeBase > 0 && Number.isFinite(s.ropeBase)) || !(s.normEps >= 0 && Number.isFinite(s.normEps)))
    throw new SpecdecError(`${where}: bad RoPE base ${s.ropeBase} or norm epsilon ${s.normEps}`);
}

/** What the head must agree with: the target's sizes and vocabulary, and its token matrices. */
export type EagleTargetInfo = Pick<Target, "hiddenSize" | "vocabSize" | "vocab" | "backend" | "tokenMatrices" | "contextSize">;

interface Block {
  attnNorm: Float32Array; // (dim)
  wq: Matrix; // (dim, dim)
  wk: Matrix; // (kvDim, dim)
  wv: Matrix; // (kvDim, dim)
  wo: Matrix; // (dim, dim)
  ffnNorm: Float32Array; // (dim)
  wGate: Matrix; // (hidden, dim)
  wUp: Matrix; // (hidden, dim)
  wDown: Matrix; // (dim, hidden)
}

/** The head's weights as read from a file. */
export interface EagleWeights {
  fc: Matrix; // (dim, 2·dim)
  fcBias: Float32Array; // (dim)
  blocks: Block[];
}

export class EagleHead {
  /** Entries in the cache (committed, then drafted). */
  length = 0;
  /** Entries made from the target's true features: everything drafted attends to all of them. */
  committed = 0;
  readonly maxBatch: number;
  readonly kvDim: number;
  readonly headDim: number;

  // KV cache and the tree of its entries
  // Each kv head's slots are contiguous (the engine's attention kernel reads that layout).
  private readonly keyCache: Float32Array; // (layers, kvHeads, contextSize, headDim)
  private readonly valueCache: Float32Array; // (layers, kvHeads, contextSize, headDim)
  private readonly slotParent: Int32Array; // (contextSize) the entry each one follows, -1 for the first
  private readonly slotPosition: Int32Array; // (contextSize) RoPE position

  // activations of one batch
  private readonly cat: Float32Array; // (maxBatch, 2·dim) [embedding; feature]
  private readonly x: Float32Array; // (maxBatch, dim) residual stream
  private readonly xn: Float32Array; // (maxBatch, dim) normed block input
  private readonly q: Float32Array; // (maxBatch, dim)
  private readonly k: Float32Array; // (maxBatch, kvDim)
  private readonly v: Float32Array; // (maxBatch, kvDim)
  private readonly ao: Float32Array; // (maxBatch, dim) attention output
  private readonly tmp: Float32Array; // (maxBatch, dim)
  private readonly hb: Float32Array; // (maxBatch, hidden)
  private readonly hb2: Float32Array; // (maxBatch, hidden)
  private readonly att: Float32Array; // (contextSize) one head's scores
  private readonly visible: Int32Array; // (maxBatch, contextSize) slots each batch entry attends to, ascending
  private readonly visibleCount: Int32Array; // (maxBatch) visible slots of each batch entry
  private readonly ropeFreq: Float64Array; // (headDim / 2)
  private readonly wasmAttend: AttendFn | undefined;
  private readonly at = { key: 0, value: 0, q: 0, ao: 0, att: 0, visible: 0, counts: 0 };

  constructor(
    readonly shape: EagleShape,
    private readonly w: EagleWeights,
    /** The target's token embedding and output matrices: (vocab, dim) each. */
    private readonly embedding: Matrix,
    private readonly output: Matrix,
    readonly contextSize: number,
    maxBatch = 64,
  ) {
    const { dim, layers, heads, kvHeads, hidden } = shape;
    this.headDim = dim / heads;
    this.kvDim = kvHeads * this.headDim;
    this.maxBatch = Math.min(maxBatch, contextSize);
    const B = this.maxBatch, kvDim = this.kvDim;
    const sizes = { key: layers * contextSize * kvDim, value: layers * contextSize * kvDim, q: B * dim, ao: B * dim, att: contextSize, visible: B * contextSize, counts: B };
    let bytes = 0;
    for (const [name, n] of Object.entries(sizes) as [keyof typeof sizes, number][]) {
      this.at[name] = bytes;
      bytes += (4 * n + 15) & ~15;
    }
    const wasm = this.headDim % 4 === 0 ? engineMemory(bytes) : undefined;
    this.wasmAttend = wasm?.attend;
    const f32 = (name: keyof typeof sizes) => (wasm ? new Float32Array(wasm.buffer, this.at[name], sizes[name]) : new Float32Array(sizes[name]));
    this.keyCache = f32("key");
    this.valueCache = f32("value");
    this.q = f32("q");
    this.ao = f32("ao");
    this.att = f32("att");
    const i32 = (name: keyof typeof sizes) => (wasm ? new Int32Array(wasm.buffer, this.at[name], sizes[name]) : new Int32Array(sizes[name]));
    this.visible = i32("visible");
    this.visibleCount = i32("counts");
    this.slotParent = new Int32Array(contextSize);
    this.slotPosition = new Int32Array(contextSize);
    this.cat = new Float32Array(B * 2 * dim);
    this.x = new Float32Array(B * dim);
    this.xn = new Float32Array(B * dim);
    this.k = new Float32Array(B * kvDim);
    this.v = new Float32Array(B * kvDim);
    this.tmp = new Float32Array(B * dim);
    this.hb = new Float32Array(B * hidden);
    this.hb2 = new Float32Array(B * hidden);
    this.ropeFreq = new Float64Array(this.headDim / 2);
    for (let i = 0; i < this.headDim / 2; i++) this.ropeFreq[i] = Math.pow(shape.ropeBase, (-2 * i) / this.headDim);
  }

  get vocabSize(): number {
    return this.shape.vocabSize;
  }

  /**
   * Append T entries: entry t reads features[t] (dim) and the token tokens[t] and follows slot
   * parents[t] (an earlier slot, or -1 for none). An entry whose parent is the last entry before
   * it, or any committed one's, continues the sequence; a drafted one sees the committed entries,
   * its drafted ancestors and itself. Writes each entry's predicted feature into out (T, dim).
   */
  append(features: Float32Array, tokens: ArrayLike<number>, parents: ArrayLike<number>, T: number, out: Float32Array): void {
    const { dim, layers, vocabSize } = this.shape;
    const start = this.length, kvDim = this.kvDim;
    if (T < 1 || T > this.maxBatch) throw new SpecdecError(`an EAGLE head pass takes 1 to ${this.maxBatch} entries, got ${T}`);
    if (start + T > this.contextSize) throw new SpecdecError(`EAGLE head context full: ${start} + ${T} entries exceed ${this.contextSize}`);
    for (let t = 0; t < T; t++) {
      const id = tokens[t], p = parents[t];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new SpecdecError(`token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
      if (!Number.isInteger(p) || p < -1 || p >= start + t) throw new SpecdecError(`EAGLE head: parent slot of entry ${t} must be -1 or an earlier slot, got ${p}`);
      this.slotParent[start + t] = p;
      this.slotPosition[start + t] = p < 0 ? 0 : this.slotPosition[p] + 1;
    }
    // Visible slots, ascending: the sequence part 0..a (a = the first ancestor that is committed),
    // then the uncommitted ancestors down to the entry itself.
    for (let t = 0; t < T; t++) {
      const o = t * this.contextSize, vis = this.visible;
      let chain = 0, a = start + t;
      for (; a >= this.committed; a = this.slotParent[a]) vis[o + chain++] = a; // newest first
      for (let i = 0; i < chain >> 1; i++) [vis[o + i], vis[o + chain - 1 - i]] = [vis[o + chain - 1 - i], vis[o + i]];
      const seq = a + 1;
      vis.copyWithin(o + seq, o, o + chain);
      for (let s = 0; s < seq; s++) vis[o + s] = s;
      this.visibleCount[t] = seq + chain;
    }

    // Input: x = W_fc [e(token); feature] + b_fc.
    for (let t = 0; t < T; t++) {
      this.embedding.readRow(tokens[t], this.cat, t * 2 * dim);
      this.cat.set(features.subarray(t * dim, (t + 1) * dim), t * 2 * dim + dim);
    }
    this.w.fc.matMul(this.cat, T, this.x);
    for (let t = 0; t < T; t++) for (let i = 0; i < dim; i++) this.x[t * dim + i] += this.w.fcBias[i];

    for (let l = 0; l < layers; l++) {
      const L = this.w.blocks[l];
      const layerOff = l * this.contextSize * kvDim;
      rmsNormRows(this.xn, this.x, L.attnNorm, T, dim, this.shape.normEps);
      L.wq.matMul(this.xn, T, this.q);
      L.wk.matMul(this.xn, T, this.k);
      L.wv.matMul(this.xn, T, this.v);
      for (let t = 0; t < T; t++) {
        const pos = this.slotPosition[start + t];
        this.rope(this.q, t * dim, this.shape.heads, pos);
        this.rope(this.k, t * kvDim, this.shape.kvHeads, pos);
        for (let g = 0, hd = this.headDim; g < this.shape.kvHeads; g++) {
          const to = layerOff + (g * this.contextSize + start + t) * hd, from = t * kvDim + g * hd;
          this.keyCache.set(this.k.subarray(from, from + hd), to);
          this.valueCache.set(this.v.subarray(from, from + hd), to);
        }
      }
      this.attend(T, layerOff);
      L.wo.matMul(this.ao, T, this.tmp);
      for (let i = 0; i < T * dim; i++) this.x[i] += this.tmp[i];
      rmsNormRows(this.xn, this.x, L.ffnNorm, T, dim, this.shape.normEps);
      L.wGate.matMul(this.xn, T, this.hb);
      L.wUp.matMul(this.xn, T, this.hb2);
      const hb = this.hb, hb2 = this.hb2, H = T * this.shape.hidden;
      for (let i = 0; i < H; i++) {
        const g = hb[i];
        hb[i] = (g / (1 + Math.exp(-g))) * hb2[i];
      }
      L.wDown.matMul(this.hb, T, this.tmp);
      for (let i = 0; i < T * dim; i++) this.x[i] += this.tmp[i];
    }
    out.set(this.x.subarray(0, T * dim));
    this.length = start + T;
  }

  /** logits (T, vocab) = W_out · features (T, dim). */
  logits(features: Float32Array, T: number, out: Float32Array): void {
    this.output.matMul(features, T, out);
  }

  /** Drop entries from `length` on (drafted ones, or committed ones a rejection undid). */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.length) throw new RangeError(`cannot truncate an EAGLE head cache of ${this.length} entries to ${length}`);
    this.length = length;
    this.committed = Math.min(this.committed, length);
  }

  /** Every entry now in the cache was made from true features: later drafts attend to all of them. */
  commit(): void {
    this.committed = this.length;
  }

  // Rotate pairs (2i, 2i + 1) of each head by position pos.
  private rope(vec: Float32Array, off: number, nHeads: number, pos: number): void {
    const half = this.headDim / 2;
    for (let i = 0; i < half; i++) {
      const angle = pos * this.ropeFreq[i], c = Math.cos(angle), s = Math.sin(angle);
      for (let h = 0; h < nHeads; h++) {
        const a = off + h * this.headDim + 2 * i;
        const v0 = vec[a], v1 = vec[a + 1];
        vec[a] = v0 * c - v1 * s;
        vec[a + 1] = v0 * s + v1 * c;
      }
    }
  }

  // Attention of batch entries 0 .. T over their visible slots → ao.
  private attend(T: number, layerOff: number): void {
    const { heads, kvHeads, dim } = this.shape;
    const hd = this.headDim, group = heads / kvHeads, scale = 1 / Math.sqrt(hd), ctx = this.contextSize;
    if (this.wasmAttend) {
      const at = this.at;
      this.wasmAttend(0, T * heads, heads, group, hd, at.q, at.key + 4 * layerOff, at.value + 4 * layerOff, at.visible, 4 * ctx, at.counts, 4 * ctx * hd, scale, at.att, at.ao, 4 * dim);
      return;
    }
    for (let t = 0; t < T; t++) this.attendJs(t, layerOff, scale, group);
  }

  // Attention of batch entry t (the JS loop, without WebAssembly).
  private attendJs(t: number, layerOff: number, scale: number, group: number): void {
    const { heads, dim } = this.shape;
    const hd = this.headDim, ctx = this.contextSize;
    const n = this.visibleCount[t], vo = t * ctx;
    const vis = this.visible, att = this.att, q = this.q, kc = this.keyCache, vc = this.valueCache, out = this.ao;
    for (let h = 0; h < heads; h++) {
      const qo = t * dim + h * hd, kvo = layerOff + Math.floor(h / group) * ctx * hd;
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let i = 0, ko = kvo + vis[vo + j] * hd; i < hd; i++) s += q[qo + i] * kc[ko + i];
        att[j] = s * scale;
        if (att[j] > max) max = att[j];
      }
      let sum = 0;
      for (let j = 0; j < n; j++) sum += att[j] = Math.exp(att[j] - max);
      out.fill(0, qo, qo + hd);
      for (let j = 0; j < n; j++) {
        const a = att[j] / sum;
        for (let i = 0, o = kvo + vis[vo + j] * hd; i < hd; i++) out[qo + i] += a * vc[o + i];
      }
    }
  }

  /** Load a head and check it was made for this target. */
  static load(path: string, target: EagleTargetInfo): EagleHead {
    const f = openGguf(path);
    try {
      if (metaString(f, "general.architecture") !== "eagle") throw new SpecdecError(`${path} is not an EAGLE head file (general.architecture is '${excerpt(metaString(f, "general.architecture") ?? "missing")}')`);
      const num = (key: string, fallback?: number) => {
        const v = metaNumber(f, key) ?? fallback;
        if (v === undefined) throw new SpecdecError(`${path}: missing ${key}`);
        return v;
      };
      const dim = num("eagle.hidden_size"), vocab = num("eagle.vocab_size");
      const fp = metaString(f, "eagle.target.vocab_sha256");
      if (dim !== target.hiddenSize) throw new SpecdecError(`${path}: EAGLE head made for hidden size ${dim}, the target has ${target.hiddenSize}: made for another model`);
      if (vocab !== target.vocabSize) throw new SpecdecError(`${path}: EAGLE head made for a ${vocab}-token vocabulary, the target has ${target.vocabSize}: made for another model`);
      if (fp !== target.vocab.fingerprint) throw new SpecdecError(`${path}: EAGLE head made for another vocabulary (fingerprint ${String(fp).slice(0, 12)}…, the target's is ${target.vocab.fingerprint.slice(0, 12)}…)`);
      const heads = num("eagle.attention.head_count");
      const shape: EagleShape = {
        dim, vocabSize: vocab, layers: num("eagle.block_count"), heads, kvHeads: num("eagle.attention.head_count_kv", heads), hidden: num("eagle.feed_forward_length"),
        ropeBase: num("eagle.rope.freq_base", 10000), normEps: num("eagle.attention.layer_norm_rms_epsilon", 1e-5),
      };
      checkEagleShape(shape, path);
      const byName = new Map(f.tensors.map((t) => [t.name, t]));
      const matrix = (name: string, rows: number, cols: number): Matrix => {
        const t = byName.get(name);
        if (!t) throw new SpecdecError(`${path}: tensor ${name} is missing`);
        if (t.dims.join() !== [cols, rows].join()) throw new SpecdecError(`${path}: tensor ${name} has shape [${t.dims.join(", ")}], expected [${cols}, ${rows}]`);
        return new GgmlMatrix(t.type, f.readTensorData(t), rows, cols);
      };
      const vector = (name: string, n: number): Float32Array => {
        const t = byName.get(name);
        if (!t) throw new SpecdecError(`${path}: tensor ${name} is missing`);
        if (t.dims.join() !== String(n)) throw new SpecdecError(`${path}: tensor ${name} has shape [${t.dims.join(", ")}], expected [${n}]`);
        const out = new Float32Array(n);
        dequantizeRow(t.type, f.readTensorData(t), 0, out, n);
        return out;
      };
      const shapes = eagleTensorShapes(shape);
      const get = (name: string) => {
        const s = shapes.get(name)!;
        return s.length === 1 ? vector(name, s[0]) : matrix(name, s[0], s[1]);
      };
      const blocks: Block[] = [];
      for (let l = 0; l < shape.layers; l++) {
        const t = (n: EagleBlockTensor) => get(`eagle.blk.${l}.${n}.weight`);
        blocks.push({
          attnNorm: t("attn_norm") as Float32Array, wq: t("attn_q") as Matrix, wk: t("attn_k") as Matrix, wv: t("attn_v") as Matrix, wo: t("attn_output") as Matrix,
          ffnNorm: t("ffn_norm") as Float32Array, wGate: t("ffn_gate") as Matrix, wUp: t("ffn_up") as Matrix, wDown: t("ffn_down") as Matrix,
        });
      }
      const weights: EagleWeights = { fc: get("eagle.fc.weight") as Matrix, fcBias: get("eagle.fc.bias") as Float32Array, blocks };
      if (!target.tokenMatrices) throw new SpecdecError(`${path}: an EAGLE head reads the target's embedding and output matrices, which the ${target.backend} backend does not expose`);
      const { embedding, output } = target.tokenMatrices();
      return new EagleHead(shape, weights, embedding, output, target.contextSize);
    } finally {
      f.close();
    }
  }
}

/** Write a head for a target (F32 tensors by name, shapes as eagleTensorShapes); refuses to overwrite unless `overwrite`. */
export function saveEagleHead(path: string, shape: EagleShape, tensors: ReadonlyMap<string, Float32Array>, target: { vocabFingerprint: string; name?: string }, options: { overwrite?: boolean } = {}): void {
  checkEagleShape(shape, path);
  const out: GgufWriteTensor[] = [];
  for (const [name, s] of eagleTensorShapes(shape)) {
    const a = tensors.get(name);
    const n = s.reduce((x, y) => x * y, 1);
    if (!a || a.length !== n) throw new SpecdecError(`EAGLE head: tensor ${name} needs ${n} values, got ${a?.length ?? "none"}`);
    out.push({ name, dims: [...s].reverse(), type: GgmlType.F32, data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });
  }
  writeGguf(path, {
    metadata: [
      kv.string("general.architecture", "eagle"),
      kv.u32("eagle.hidden_size", shape.dim),
      kv.u32("eagle.vocab_size", shape.vocabSize),
      kv.string("eagle.target.vocab_sha256", target.vocabFingerprint),
      kv.string("eagle.target.name", target.name ?? ""),
      kv.u32("eagle.block_count", shape.layers),
      kv.u32("eagle.attention.head_count", shape.heads),
      kv.u32("eagle.attention.head_count_kv", shape.kvHeads),
      kv.u32("eagle.feed_forward_length", shape.hidden),
      kv.f32("eagle.rope.freq_base", shape.ropeBase),
      kv.f32("eagle.attention.layer_norm_rms_epsilon", shape.normEps),
    ],
    tensors: out,
    overwrite: options.overwrite,
  });
}
