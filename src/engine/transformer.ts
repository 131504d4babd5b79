// The forward pass of the built-in engine, over a batch of tokens with a tree attention mask.
// Reads in the order it runs (llama2.c style); every buffer is allocated once, in the
// constructor, with its shape in a comment. The KV cache is an offset: rolling back is
// moving `length`.
//
// Batch invariance: every per-token computation (matrix rows, attention over the visible keys
// in slot order, norms) is done in the same order whether the token comes alone or in a batch,
// so a k-token pass gives bit-identical logits to k one-token passes.
//
// Attention runs on the WASM SIMD kernel (wasm/attention.ts) when available, with
// the KV cache, q and the attention output in a fixed WASM memory of this engine; otherwise on
// the JS loop below. Either way one engine always uses the same code for every token.

import { SpecdecError } from "../errors.js";
import type { HParams } from "./hparams.js";
import type { LlamaWeights } from "./llamaWeights.js";
import { attentionMemory, type AttendFn } from "./wasm/wasmMatrix.js";

export interface ForwardOptions {
  /**
   * Tree structure: parents[t] is the batch index of token t's parent, or -1 when its parent
   * is the last cached token. Token t attends to the cache and to its ancestors (and itself).
   * Default: a chain (parents[t] = t - 1).
   */
  parents?: ArrayLike<number>;
  /** Which positions get logits. Default "all". */
  logits?: "all" | "last" | "none";
  /** Also return the final hidden state (after the output norm) of every position. */
  hidden?: boolean;
}

export interface ForwardResult {
  /** (nOut, vocab) — a view into the engine's buffer, valid until the next call. */
  logits: Float32Array;
  /** (batch, dim) — a view, valid until the next call; empty unless requested. */
  hidden: Float32Array;
}

export class Transformer {
  /** Tokens in the KV cache. */
  length = 0;
  readonly maxBatch: number;

  // KV cache
  private readonly keyCache: Float32Array; // (layer, contextSize, kvDim)
  private readonly valueCache: Float32Array; // (layer, contextSize, kvDim)
  private readonly positions: Int32Array; // (contextSize) RoPE position of each cache slot

  // activations of one batch
  private readonly x: Float32Array; // (maxBatch, dim) residual stream
  private readonly xb: Float32Array; // (maxBatch, dim) normed input of a block / attention output
  private readonly xb2: Float32Array; // (maxBatch, dim) block output before the residual add
  private readonly q: Float32Array; // (maxBatch, dim)
  private readonly k: Float32Array; // (maxBatch, kvDim)
  private readonly v: Float32Array; // (maxBatch, kvDim)
  private readonly hb: Float32Array; // (maxBatch, hiddenDim)
  private readonly hb2: Float32Array; // (maxBatch, hiddenDim)
  private readonly att: Float32Array; // (contextSize) attention scores of one head of one token
  private readonly visible: Int32Array; // (maxBatch, contextSize) cache slots each batch token attends to, ascending
  private readonly visibleCount: Int32Array; // (maxBatch)
  private readonly logitsBuf: Float32Array; // (maxBatch, vocab)
  private readonly ropeFreq: Float64Array; // (ropeDim / 2) rotation frequency of each pair
  private readonly ropeCos: Float64Array; // (maxBatch, ropeDim / 2) cos of each batch token's angles, shared by heads and layers
  private readonly ropeSin: Float64Array; // (maxBatch, ropeDim / 2)
  private readonly identityRows: Int32Array; // (maxBatch) leading entries of each visible row known to be 0, 1, 2, ...
  private readonly batchParents: Int32Array; // (maxBatch)
  // The WASM attention kernel, when available: the KV cache, q, xb, att and visible then live
  // in its memory, at these byte offsets.
  private readonly wasmAttend: AttendFn | undefined;
  private readonly at = { key: 0, value: 0, q: 0, xb: 0, att: 0, visible: 0 };

  constructor(
    readonly hp: HParams,
    private readonly w: LlamaWeights,
    readonly contextSize: number,
    maxBatch = 64,
  ) {
    if (!Number.isInteger(contextSize) || contextSize < 1) throw new SpecdecError(`context size must be a positive integer, got ${contextSize}`);
    this.maxBatch = Math.min(maxBatch, contextSize);
    const { nLayers, dim, kvDim, hiddenDim, vocabSize } = hp;
    const B = this.maxBatch;
    const kvBytes = 2 * nLayers * contextSize * kvDim * 4;
    if (kvBytes > 8 * 2 ** 30) throw new SpecdecError(`a ${contextSize}-token KV cache would take ${(kvBytes / 2 ** 30).toFixed(1)} GiB: choose a smaller context size`);
    // Buffers the attention kernel reads and writes, in WASM memory when it is there.
    const sizes = { key: nLayers * contextSize * kvDim, value: nLayers * contextSize * kvDim, q: B * dim, xb: B * dim, att: contextSize, visible: B * contextSize };
    let bytes = 0;
    for (const [name, n] of Object.entries(sizes) as [keyof typeof sizes, number][]) {
      this.at[name] = bytes;
      bytes += (4 * n + 15) & ~15;
    }
    const wasm = hp.headDim % 4 === 0 ? attentionMemory(bytes) : undefined;
    this.wasmAttend = wasm?.attend;
    const buffer = wasm?.buffer;
    const f32 = (name: keyof typeof sizes) => (buffer ? new Float32Array(buffer, this.at[name], sizes[name]) : new Float32Array(sizes[name]));
    this.keyCache = f32("key");
    this.valueCache = f32("value");
    this.q = f32("q");
    this.xb = f32("xb");
    this.att = f32("att");
    this.visible = buffer ? new Int32Array(buffer, this.at.visible, sizes.visible) : new Int32Array(sizes.visible);
    this.visibleCount = new Int32Array(B);
    this.positions = new Int32Array(contextSize);
    this.x = new Float32Array(B * dim);
    this.xb2 = new Float32Array(B * dim);
    this.k = new Float32Array(B * kvDim);
    this.v = new Float32Array(B * kvDim);
    this.hb = new Float32Array(B * hiddenDim);
    this.hb2 = new Float32Array(B * hiddenDim);
    this.logitsBuf = new Float32Array(B * vocabSize);
    this.batchParents = new Int32Array(B);
    this.ropeFreq = new Float64Array(hp.ropeDim / 2);
    this.ropeCos = new Float64Array((B * hp.ropeDim) / 2);
    this.ropeSin = new Float64Array((B * hp.ropeDim) / 2);
    this.identityRows = new Int32Array(B);
    for (let i = 0; i < hp.ropeDim / 2; i++) this.ropeFreq[i] = hp.ropeScale * Math.pow(hp.ropeBase, (-2 * i) / hp.ropeDim);
  }

  /** Append `tokens` (at most maxBatch) to the cache and run them through the model. */
  forward(tokens: ArrayLike<number>, options: ForwardOptions = {}): ForwardResult {
    const T = tokens.length;
    const { dim, kvDim, hiddenDim, nLayers, vocabSize } = this.hp;
    const start = this.length;
    if (T < 1 || T > this.maxBatch) throw new SpecdecError(`a forward pass takes 1 to ${this.maxBatch} tokens, got ${T}`);
    if (start + T > this.contextSize) throw new SpecdecError(`context full: ${start} + ${T} tokens exceed the context size ${this.contextSize}`);

    // Tree structure → parent of each batch token and the RoPE position of each new slot.
    const parents = this.batchParents;
    for (let t = 0; t < T; t++) {
      const p = options.parents ? options.parents[t] : t - 1;
      if (!Number.isInteger(p) || p < -1 || p >= t) throw new SpecdecError(`tree parent of token ${t} must be -1 or an earlier batch index, got ${p}`);
      parents[t] = p;
      this.positions[start + t] = p < 0 ? start : this.positions[start + p] + 1;
    }
    // Visible slots of each token in ascending order: the whole cache before the pass, then its ancestors.
    // The cache part of a row is 0, 1, ..., start - 1 every pass: only the entries past what the
    // row already holds of it are written (the ancestors overwrite from `start` on).
    for (let t = 0; t < T; t++) {
      const vis = this.visible, o = t * this.contextSize;
      for (let s = Math.min(this.identityRows[t], start); s < start; s++) vis[o + s] = s;
      this.identityRows[t] = start;
      const n = start;
      let chain = 0;
      for (let a = t; a >= 0; a = parents[a]) chain++;
      let idx = n + chain;
      for (let a = t; a >= 0; a = parents[a]) vis[o + --idx] = start + a;
      this.visibleCount[t] = n + chain;
    }

    // Embedding lookup: x (T, dim).
    for (let t = 0; t < T; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new SpecdecError(`token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
      this.w.embed.readRow(id, this.x, t * dim);
    }

    // RoPE angles of each batch token, once per pass (the same for every head and layer).
    const half = this.hp.ropeDim / 2;
    for (let t = 0; t < T; t++) {
      const pos = this.positions[start + t];
      for (let i = 0; i < half; i++) {
        const angle = pos * this.ropeFreq[i];
        this.ropeCos[t * half + i] = Math.cos(angle);
        this.ropeSin[t * half + i] = Math.sin(angle);
      }
    }

    for (let l = 0; l < nLayers; l++) {
      const L = this.w.layers[l];
      const layerOff = l * this.contextSize * kvDim;

      // Attention: q, k, v of every batch token; k, v go into the cache at slots start + t.
      rmsNormRows(this.xb, this.x, L.attnNorm, T, dim, this.hp.normEps);
      L.wq.matMul(this.xb, T, this.q);
      L.wk.matMul(this.xb, T, this.k);
      L.wv.matMul(this.xb, T, this.v);
      if (L.bq) addBiasRows(this.q, L.bq, T, dim);
      if (L.bk) addBiasRows(this.k, L.bk, T, kvDim);
      if (L.bv) addBiasRows(this.v, L.bv, T, kvDim);
      for (let t = 0; t < T; t++) {
        this.rope(this.q, t * dim, this.hp.nHeads, t);
        this.rope(this.k, t * kvDim, this.hp.nKvHeads, t);
        this.keyCache.set(this.k.subarray(t * kvDim, (t + 1) * kvDim), layerOff + (start + t) * kvDim);
        this.valueCache.set(this.v.subarray(t * kvDim, (t + 1) * kvDim), layerOff + (start + t) * kvDim);
      }
      for (let t = 0; t < T; t++) this.attend(t, layerOff); // → xb (T, dim)
      L.wo.matMul(this.xb, T, this.xb2);
      addRows(this.x, this.xb2, T * dim);

      // Feed-forward (SwiGLU): x += down(silu(gate(xb)) * up(xb)).
      rmsNormRows(this.xb, this.x, L.ffnNorm, T, dim, this.hp.normEps);
      L.wGate.matMul(this.xb, T, this.hb);
      L.wUp.matMul(this.xb, T, this.hb2);
      const hb = this.hb, hb2 = this.hb2;
      for (let i = 0; i < T * hiddenDim; i++) {
        const g = hb[i];
        hb[i] = (g / (1 + Math.exp(-g))) * hb2[i];
      }
      L.wDown.matMul(this.hb, T, this.xb2);
      addRows(this.x, this.xb2, T * dim);
    }

    // Final norm (the hidden state Medusa heads read), then logits for the requested positions.
    rmsNormRows(this.xb, this.x, this.w.outputNorm, T, dim, this.hp.normEps);
    const which = options.logits ?? "all";
    let logits = this.logitsBuf.subarray(0, 0);
    if (which === "all") {
      this.w.output.matMul(this.xb, T, this.logitsBuf);
      logits = this.logitsBuf.subarray(0, T * vocabSize);
    } else if (which === "last") {
      this.w.output.matMul(this.xb.subarray((T - 1) * dim, T * dim), 1, this.logitsBuf);
      logits = this.logitsBuf.subarray(0, vocabSize);
    }
    this.length = start + T;
    return { logits, hidden: options.hidden ? this.xb.subarray(0, T * dim) : this.xb.subarray(0, 0) };
  }

  /** Roll the cache back to `length` tokens. */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.length) throw new RangeError(`cannot truncate a ${this.length}-token cache to ${length}`);
    this.length = length;
  }

  /**
   * Keep only some tokens of the last pass (one branch of a tree): the cache entries of
   * slots from + keep[i] move to from + i, in order, and the cache ends after them.
   */
  keep(from: number, keep: ArrayLike<number>): void {
    const { kvDim, nLayers } = this.hp;
    for (let i = 0; i < keep.length; i++) {
      const src = from + keep[i];
      if (!(src >= from + i && src < this.length) || (i > 0 && keep[i] <= keep[i - 1])) throw new RangeError(`keep: slot indices must be ascending and inside the last pass`);
      if (src === from + i) continue;
      for (let l = 0; l < nLayers; l++) {
        const off = l * this.contextSize * kvDim;
        this.keyCache.copyWithin(off + (from + i) * kvDim, off + src * kvDim, off + (src + 1) * kvDim);
        this.valueCache.copyWithin(off + (from + i) * kvDim, off + src * kvDim, off + (src + 1) * kvDim);
      }
      this.positions[from + i] = this.positions[src];
    }
    this.length = from + keep.length;
  }

  // Rotate pairs of each head's first ropeDim dimensions by batch token t's angles.
  private rope(vec: Float32Array, off: number, nHeads: number, t: number): void {
    const { headDim, ropeDim, ropeNeox } = this.hp;
    const half = ropeDim / 2;
    const cos = this.ropeCos, sin = this.ropeSin, co = t * half;
    for (let h = 0; h < nHeads; h++) {
      const base = off + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[co + i], s = sin[co + i];
        const a = ropeNeox ? base + i : base + 2 * i;
        const b = ropeNeox ? base + i + half : base + 2 * i + 1;
        const v0 = vec[a], v1 = vec[b];
        vec[a] = v0 * c - v1 * s;
        vec[b] = v0 * s + v1 * c;
      }
    }
  }

  // Multi-head attention of batch token t over its visible cache slots → xb[t].
  private attend(t: number, layerOff: number): void {
    const { nHeads, nKvHeads, headDim, kvDim, dim } = this.hp;
    const scale = 1 / Math.sqrt(headDim);
    const group = nHeads / nKvHeads;
    const n = this.visibleCount[t], vo = t * this.contextSize;
    if (this.wasmAttend) {
      const at = this.at;
      this.wasmAttend(at.q + 4 * t * dim, at.key + 4 * layerOff, at.value + 4 * layerOff, at.visible + 4 * vo, n, nHeads, group, headDim, 4 * kvDim, scale, at.att, at.xb + 4 * t * dim);
      return;
    }
    // The JS reference of the same computation (f64 scores, sum and weights).
    const vis = this.visible, att = this.att, q = this.q, kc = this.keyCache, vc = this.valueCache, out = this.xb;
    for (let h = 0; h < nHeads; h++) {
      const qo = t * dim + h * headDim;
      const kvo = layerOff + Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        const ko = kvo + vis[vo + j] * kvDim;
        let s = 0;
        for (let i = 0; i < headDim; i++) s += q[qo + i] * kc[ko + i];
        s *= scale;
        att[j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = 0; j < n; j++) {
        const e = Math.exp(att[j] - max);
        att[j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      const oo = t * dim + h * headDim;
      for (let i = 0; i < headDim; i++) out[oo + i] = 0;
      for (let j = 0; j < n; j++) {
        const a = att[j] * inv;
        const vOff = kvo + vis[vo + j] * kvDim;
        for (let i = 0; i < headDim; i++) out[oo + i] += a * vc[vOff + i];
      }
    }
  }
}

// out[t] = x[t] / rms(x[t]) * weight, for T rows of n.
export function rmsNormRows(out: Float32Array, x: Float32Array, weight: Float32Array, T: number, n: number, eps: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[o + i] = x[o + i] * inv * weight[i];
  }
}

function addBiasRows(x: Float32Array, bias: Float32Array, T: number, n: number): void {
  for (let t = 0; t < T; t++) for (let i = 0; i < n; i++) x[t * n + i] += bias[i];
}

function addRows(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) x[i] += y[i];
}
