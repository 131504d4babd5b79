// The forward pass of the built-in engine, over a batch of tokens with a tree attention mask.
// Reads in the order it runs (llama2.c style); every buffer is allocated once, in the
// constructor, with its shape in a comment. The KV cache is an offset: rolling back is
// moving `length`.
//
// Batch invariance: every per-token computation (matrix rows, attention over the visible keys
// in slot order, norms) is done in the same order whether the token comes alone or in a batch,
// so a k-token pass gives bit-identical logits to k one-token passes.
//
// Attention and the SwiGLU gate run on WASM SIMD kernels (wasm/attention.ts, wasm/elementwise.ts)
// when available, with the KV cache and the activations they touch in a fixed WASM memory of
// this engine; otherwise on the JS loops below. Either way one engine always uses the same code
// for every token.

import { SpecdecError } from "../errors.js";
import type { HParams } from "./hparams.js";
import type { LlamaWeights } from "./llamaWeights.js";
import { engineMemory, kernelModule, kernelsFuseMultiplyAdd, MIN_SPLIT_WORK, type EngineMemory, type ProductOptions } from "./wasm/wasmMatrix.js";
import { ThreadPool } from "./wasm/threadPool.js";

export interface EngineOptions {
  /**
   * Threads for the matrix products and attention (the main thread included); results are
   * bit-identical for any count. Default 1.
   */
  threads?: number;
  /**
   * "q8": round the inputs of products with quantized weights to 8 bits per block, as llama.cpp
   * does (closer to llama.cpp's numbers, integer dot products; still batch-invariant). Default "f32".
   */
  activations?: "f32" | "q8";
}

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

/** A SwiGLU gate over fewer vectors (4 elements) than this runs on one thread (~50k operations: splitting costs more than it saves). */
export const SWIGLU_SPLIT_VECTORS = 2048;

export class Transformer {
  /** Tokens in the KV cache. */
  length = 0;
  readonly maxBatch: number;
  /** The kernels of the passes: "wasm-fma" (WASM SIMD, fused multiply-adds), "wasm" or "js". */
  readonly kernels: "wasm-fma" | "wasm" | "js";

  // KV cache
  // Each kv head's slots are contiguous, so attention over a long cache streams through memory.
  private readonly keyCache: Float32Array; // (layer, kvHead, contextSize, headDim)
  private readonly valueCache: Float32Array; // (layer, kvHead, contextSize, headDim)
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
  private readonly att: Float32Array; // (threads, contextSize) attention scores of one head of one token, per thread
  private readonly visible: Int32Array; // (maxBatch, contextSize) cache slots each batch token attends to, ascending
  private readonly visibleCount: Int32Array; // (maxBatch) visible slots of each batch token
  private readonly logitsBuf: Float32Array; // (maxBatch, vocab)
  private readonly ropeFreq: Float64Array; // (ropeDim / 2) rotation frequency of each pair
  private readonly ropeCos: Float64Array; // (maxBatch, ropeDim / 2) cos of each batch token's angles, shared by heads and layers
  private readonly ropeSin: Float64Array; // (maxBatch, ropeDim / 2)
  private readonly identityRows: Int32Array; // (maxBatch) leading entries of each visible row known to be 0, 1, 2, ...
  private readonly batchParents: Int32Array; // (maxBatch)
  // The WASM kernels, when available: the KV cache and the activations they touch then live in
  // the engine's memory, at these byte offsets.
  private readonly wasm: EngineMemory | undefined;
  private readonly at = { key: 0, value: 0, q: 0, xb: 0, att: 0, visible: 0, counts: 0, hb: 0, hb2: 0 };
  // How the products run: threads and 8-bit activations.
  private products: ProductOptions;
  private readonly maxThreads: number; // the pool's room (att holds this many threads' scores)

  constructor(
    readonly hp: HParams,
    private readonly w: LlamaWeights,
    readonly contextSize: number,
    maxBatch = 64,
    options: EngineOptions = {},
  ) {
    if (!Number.isInteger(contextSize) || contextSize < 1) throw new SpecdecError(`context size must be a positive integer, got ${contextSize}`);
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new SpecdecError(`threads must be an integer from 1 to 256, got ${threads}`);
    this.maxBatch = Math.min(maxBatch, contextSize);
    const { nLayers, dim, kvDim, hiddenDim, vocabSize } = hp;
    const B = this.maxBatch;
    const kvBytes = 2 * nLayers * contextSize * kvDim * 4;
    if (kvBytes > 8 * 2 ** 30) throw new SpecdecError(`a ${contextSize}-token KV cache would take ${(kvBytes / 2 ** 30).toFixed(1)} GiB: choose a smaller context size`);
    // Buffers the attention kernel reads and writes, in WASM memory when it is there.
    const sizes = {
      key: nLayers * contextSize * kvDim, value: nLayers * contextSize * kvDim, q: B * dim, xb: B * dim,
      att: threads * contextSize, visible: B * contextSize, counts: B, hb: B * hiddenDim, hb2: B * hiddenDim,
    };
    let bytes = 0;
    for (const [name, n] of Object.entries(sizes) as [keyof typeof sizes, number][]) {
      this.at[name] = bytes;
      bytes += (4 * n + 15) & ~15;
    }
    const wasm = hp.headDim % 4 === 0 ? engineMemory(bytes) : undefined;
    this.wasm = wasm;
    const module = kernelModule();
    this.kernels = !wasm ? "js" : kernelsFuseMultiplyAdd() ? "wasm-fma" : "wasm";
    if (options.activations !== undefined && options.activations !== "f32" && options.activations !== "q8") throw new SpecdecError(`activations must be "f32" or "q8", got ${JSON.stringify(options.activations)}`);
    const pool = threads > 1 && wasm && module ? ThreadPool.acquire(module, threads) : undefined;
    this.maxThreads = threads;
    this.products = { pool, threads, q8: options.activations === "q8" };
    const buffer = wasm?.buffer;
    const f32 = (name: keyof typeof sizes) => (buffer ? new Float32Array(buffer, this.at[name], sizes[name]) : new Float32Array(sizes[name]));
    const i32 = (name: keyof typeof sizes) => (buffer ? new Int32Array(buffer, this.at[name], sizes[name]) : new Int32Array(sizes[name]));
    this.keyCache = f32("key");
    this.valueCache = f32("value");
    this.q = f32("q");
    this.xb = f32("xb");
    this.att = f32("att");
    this.visible = i32("visible");
    this.visibleCount = i32("counts");
    this.positions = new Int32Array(contextSize);
    this.x = new Float32Array(B * dim);
    this.xb2 = new Float32Array(B * dim);
    this.k = new Float32Array(B * kvDim);
    this.v = new Float32Array(B * kvDim);
    this.hb = f32("hb");
    this.hb2 = f32("hb2");
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
      L.wq.matMul(this.xb, T, this.q, this.products);
      L.wk.matMul(this.xb, T, this.k, this.products);
      L.wv.matMul(this.xb, T, this.v, this.products);
      if (L.bq) addBiasRows(this.q, L.bq, T, dim);
      if (L.bk) addBiasRows(this.k, L.bk, T, kvDim);
      if (L.bv) addBiasRows(this.v, L.bv, T, kvDim);
      for (let t = 0; t < T; t++) {
        this.rope(this.q, t * dim, this.hp.nHeads, t);
        this.rope(this.k, t * kvDim, this.hp.nKvHeads, t);
        this.store(t, layerOff + (start + t) * this.hp.headDim);
      }
      this.attend(T, layerOff); // → xb (T, dim)
      L.wo.matMul(this.xb, T, this.xb2, this.products);
      addRows(this.x, this.xb2, T * dim);

      // Feed-forward (SwiGLU): x += down(silu(gate(xb)) * up(xb)).
      rmsNormRows(this.xb, this.x, L.ffnNorm, T, dim, this.hp.normEps);
      L.wGate.matMul(this.xb, T, this.hb, this.products);
      L.wUp.matMul(this.xb, T, this.hb2, this.products);
      if (this.wasm) this.swiglu((T * hiddenDim + 3) >> 2);
      else {
        const hb = this.hb, hb2 = this.hb2;
        for (let i = 0; i < T * hiddenDim; i++) {
          const g = hb[i];
          hb[i] = (g / (1 + Math.exp(-g))) * hb2[i];
        }
      }
      L.wDown.matMul(this.hb, T, this.xb2, this.products);
      addRows(this.x, this.xb2, T * dim);
    }

    // Final norm (the hidden state Medusa heads read), then logits for the requested positions.
    rmsNormRows(this.xb, this.x, this.w.outputNorm, T, dim, this.hp.normEps);
    checkFinite(this.xb, T, dim);
    const which = options.logits ?? "all";
    let logits = this.logitsBuf.subarray(0, 0);
    if (which === "all") {
      this.w.output.matMul(this.xb, T, this.logitsBuf, this.products);
      logits = this.logitsBuf.subarray(0, T * vocabSize);
    } else if (which === "last") {
      this.w.output.matMul(this.xb.subarray((T - 1) * dim, T * dim), 1, this.logitsBuf, this.products);
      logits = this.logitsBuf.subarray(0, vocabSize);
    }
    this.length = start + T;
    return { logits, hidden: options.hidden ? this.xb.subarray(0, T * dim) : this.xb.subarray(0, 0) };
  }

  /** Threads for the next passes, 1 .. the engine's `threads` (same bits for any count). */
  setThreads(threads: number): void {
    const n = Math.max(1, Math.min(this.maxThreads, Math.floor(threads)));
    if (n !== this.products.threads) this.products = { ...this.products, threads: n };
  }

  /** Release the worker threads (when this was the last engine using them). */
  dispose(): void {
    this.products.pool?.release();
    this.products = { ...this.products, pool: undefined };
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
    const { kvDim, nLayers, nKvHeads, headDim } = this.hp;
    for (let i = 0; i < keep.length; i++) {
      const src = from + keep[i];
      if (!(src >= from + i && src < this.length) || (i > 0 && keep[i] <= keep[i - 1])) throw new RangeError(`keep: slot indices must be ascending and inside the last pass`);
      if (src === from + i) continue;
      for (let l = 0; l < nLayers; l++) {
        for (let h = 0; h < nKvHeads; h++) {
          const off = l * this.contextSize * kvDim + h * this.contextSize * headDim;
          this.keyCache.copyWithin(off + (from + i) * headDim, off + src * headDim, off + (src + 1) * headDim);
          this.valueCache.copyWithin(off + (from + i) * headDim, off + src * headDim, off + (src + 1) * headDim);
        }
      }
      this.positions[from + i] = this.positions[src];
    }
    this.length = from + keep.length;
  }

  // Batch token t's k and v (kvDim each) into the caches, head by head from offset `at` of kv head 0.
  private store(t: number, at: number): void {
    const { headDim, nKvHeads, kvDim } = this.hp;
    const k = this.k, v = this.v, kc = this.keyCache, vc = this.valueCache, headStride = this.contextSize * headDim;
    for (let h = 0; h < nKvHeads; h++) {
      const src = t * kvDim + h * headDim, dst = at + h * headStride;
      for (let i = 0; i < headDim; i++) {
        kc[dst + i] = k[src + i];
        vc[dst + i] = v[src + i];
      }
    }
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

  // The SwiGLU gate over the first n vectors (4 elements) of hb and hb2, split between the threads when it is long.
  private swiglu(n: number): void {
    const wasm = this.wasm!, { pool, threads } = this.products;
    if (pool && n >= SWIGLU_SPLIT_VECTORS) {
      pool.run({ memory: wasm.memory, exports: wasm.exports, fn: "swiglu", args: [0, n, this.at.hb, this.at.hb2], range: 0, work: n }, threads!);
    } else wasm.swiglu(0, n, this.at.hb, this.at.hb2);
  }

  // Multi-head attention of the T batch tokens over their visible cache slots → xb (T, dim).
  private attend(T: number, layerOff: number): void {
    const { nHeads, nKvHeads, headDim, dim } = this.hp;
    const scale = 1 / Math.sqrt(headDim);
    const group = nHeads / nKvHeads;
    if (this.wasm) {
      const at = this.at, ctx = this.contextSize;
      const kc = at.key + 4 * layerOff, vc = at.value + 4 * layerOff;
      let work = 0;
      for (let t = 0; t < T; t++) work += this.visibleCount[t];
      const { pool, threads } = this.products;
      if (pool && work * 2 * dim >= MIN_SPLIT_WORK) {
        const args = [0, T * nHeads, nHeads, group, headDim, at.q, kc, vc, at.visible, 4 * ctx, at.counts, 4 * ctx * headDim, scale, at.att, at.xb, 4 * dim];
        pool.run({ memory: this.wasm.memory, exports: this.wasm.exports, fn: "attend", args, floats: 1 << 12, range: 0, work: T * nHeads, scratch: 13, scratchStride: 4 * ctx }, threads!);
      } else this.wasm.attend(0, T * nHeads, nHeads, group, headDim, at.q, kc, vc, at.visible, 4 * ctx, at.counts, 4 * ctx * headDim, scale, at.att, at.xb, 4 * dim);
      return;
    }
    for (let t = 0; t < T; t++) this.attendJs(t, layerOff, scale, group);
  }

  // The JS reference of the attention kernel for batch token t (f64 scores, sum and weights).
  private attendJs(t: number, layerOff: number, scale: number, group: number): void {
    const { nHeads, headDim, dim } = this.hp;
    const n = this.visibleCount[t], vo = t * this.contextSize;
    const vis = this.visible, att = this.att, q = this.q, kc = this.keyCache, vc = this.valueCache, out = this.xb;
    for (let h = 0; h < nHeads; h++) {
      const qo = t * dim + h * headDim;
      const kvo = layerOff + Math.floor(h / group) * this.contextSize * headDim;
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        const ko = kvo + vis[vo + j] * headDim;
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
        const vOff = kvo + vis[vo + j] * headDim;
        for (let i = 0; i < headDim; i++) out[oo + i] += a * vc[vOff + i];
      }
    }
  }
}

// A NaN or an infinity in a token's final hidden state (weights that overflow f32, or damaged
// ones the loader could not see) would make its logits garbage: a clear error instead.
function checkFinite(h: Float32Array, T: number, n: number): void {
  for (let i = 0; i < T * n; i++) {
    if (!Number.isFinite(h[i])) throw new SpecdecError(`the model's activations became non-finite (NaN or infinity) at batch position ${Math.floor(i / n)}: its weights overflow f32 or are damaged`);
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
