// The EAGLE head as the trainer sees it (the math of src/drafters/eagleHeads.ts): parameters
// named as the head file's tensors, and a pass that unrolls the head over several drafting
// steps at once ("training-time test", as EAGLE-3 trains its head), so it learns to draft from
// its own predicted features and not only from the target's.
//
// Data. A batch is B sequences (ragged; rows of all sequences one after another, N rows). Row j
// of a sequence is entry j: the target's feature f_j, the token t_{j+1} after it, and the
// target's next feature f_{j+1} (the regression target) with its next-token distribution
// p_{j+1} = softmax(W_out f_{j+1}) (the classification target, for t_{j+2}).
//
// Streams. Stream 0 reads the true features: input [e(t_{j+1}); f_j], output o⁰_j ≈ f_{j+1}.
// Stream s ≥ 1 reads the previous stream's prediction one row earlier: input
// [e(t_{j+1}); o^{s−1}_{j−1}], defined for j ≥ s — entry j of stream s is what drafting
// computes at depth s + 1 from the committed position j − s. Its attention sees what drafting
// sees: key position k ∈ [0, j] comes from stream max(0, s − (j − k)) (the committed entries up
// to j − s, then its own ancestors, then itself). Rows j < s of stream s are inactive: no loss,
// no gradient, never a key.
//
// Loss per stream, mean over its active rows: wReg · SmoothL1(o − f_{j+1}) (mean over the
// features) + wCls · KL(p_{j+1} ‖ softmax(W_out o)) (EAGLE-1's L_reg + w_cls L_cls; KL = the
// cross-entropy against p up to a constant). Streams add up with weights decay^s. The token
// embedding and W_out are the target's, frozen.

import { linearBackward, linearForward, matmul } from "./layers.js";
import { makeParam, type Param } from "./optim.js";
import { standardNormal } from "../sampling/rng.js";
import type { Rng } from "../types.js";
import { attentionInputs, attentionInputsBackward, blockActs, blockOutput, blockOutputBackward, blockScratch, type BlockActs, type BlockDims, type BlockParams, type BlockScratch } from "./llamaBlock.js";
import { rope, ropeTables, type Buf } from "./transformerLayers.js";
import { EAGLE_BLOCK_TENSORS, eagleTensorShapes, type EagleBlockTensor, type EagleShape } from "../drafters/eagleHeads.js";

// ---- Unrolled attention ---------------------------------------------------------------------

/** Ragged sequences: rows off[b] .. off[b] + len[b] − 1 are sequence b, at positions 0 .. len[b] − 1. */
export interface RaggedShape {
  readonly off: ArrayLike<number>;
  readonly len: ArrayLike<number>;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

/** Floats of the probabilities one stream's attention keeps: Σ_b nHeads · len[b]². */
export function probsSize(s: RaggedShape): number {
  let n = 0;
  for (let b = 0; b < s.len.length; b++) n += s.nHeads * s.len[b] * s.len[b];
  return n;
}

/**
 * Attention of stream `stream` (queries q (N, nHeads·hd)) over keys and values of streams
 * 0..stream (ks[i], vs[i] (N, nKv·hd)): query row j of a sequence reads key position k ≤ j from
 * stream max(0, stream − (j − k)). probs (probsSize) keeps the softmax weights; out (N, dim),
 * 0 on inactive rows (j < stream).
 */
export function unrolledAttentionForward(q: Buf, ks: readonly Buf[], vs: readonly Buf[], stream: number, s: RaggedShape, probs: Buf, out: Buf): void {
  const { nHeads, nKvHeads, headDim: hd } = s;
  const dim = nHeads * hd, kvDim = nKvHeads * hd, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hd);
  let po = 0;
  for (let b = 0; b < s.len.length; b++) {
    const T = s.len[b], o = s.off[b];
    for (let j = 0; j < Math.min(stream, T); j++) out.fill(0, (o + j) * dim, (o + j + 1) * dim);
    for (let h = 0; h < nHeads; h++, po += T * T) {
      const kvo = Math.floor(h / group) * hd;
      for (let j = stream; j < T; j++) {
        const qo = (o + j) * dim + h * hd, ao = po + j * T;
        let max = -Infinity;
        for (let k = 0; k <= j; k++) {
          const key = ks[Math.max(0, stream - (j - k))], ko = (o + k) * kvDim + kvo;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[qo + d] * key[ko + d];
          probs[ao + k] = dot *= scale;
          if (dot > max) max = dot;
        }
        let sum = 0;
        for (let k = 0; k <= j; k++) sum += probs[ao + k] = Math.exp(probs[ao + k] - max);
        const inv = 1 / sum;
        for (let d = 0; d < hd; d++) out[qo + d] = 0;
        for (let k = 0; k <= j; k++) {
          const a = (probs[ao + k] *= inv), val = vs[Math.max(0, stream - (j - k))], vo = (o + k) * kvDim + kvo;
          for (let d = 0; d < hd; d++) out[qo + d] += a * val[vo + d];
        }
      }
    }
  }
}

/**
 * Backward of unrolledAttentionForward for dout (N, dim): dq (N, dim) overwritten; dks[i], dvs[i]
 * (N, kvDim) ACCUMULATE the gradients of the keys and values each stream gave. da (max len) is scratch.
 */
export function unrolledAttentionBackward(q: Buf, ks: readonly Buf[], vs: readonly Buf[], stream: number, s: RaggedShape, probs: Buf, dout: Buf, dq: Buf, dks: readonly Buf[], dvs: readonly Buf[], da: Buf): void {
  const { nHeads, nKvHeads, headDim: hd } = s;
  const dim = nHeads * hd, kvDim = nKvHeads * hd, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hd);
  let po = 0;
  for (let b = 0; b < s.len.length; b++) {
    const T = s.len[b], o = s.off[b];
    dq.fill(0, o * dim, (o + T) * dim);
    for (let h = 0; h < nHeads; h++, po += T * T) {
      const kvo = Math.floor(h / group) * hd;
      for (let j = stream; j < T; j++) {
        const qo = (o + j) * dim + h * hd, ao = po + j * T;
        let sum = 0;
        for (let k = 0; k <= j; k++) {
          const from = Math.max(0, stream - (j - k)), val = vs[from], dval = dvs[from], vo = (o + k) * kvDim + kvo, a = probs[ao + k];
          let dot = 0;
          for (let d = 0; d < hd; d++) {
            dot += dout[qo + d] * val[vo + d];
            dval[vo + d] += a * dout[qo + d];
          }
          da[k] = dot;
          sum += a * dot;
        }
        for (let k = 0; k <= j; k++) {
          const ds = probs[ao + k] * (da[k] - sum) * scale;
          if (ds === 0) continue;
          const from = Math.max(0, stream - (j - k)), key = ks[from], dkey = dks[from], ko = (o + k) * kvDim + kvo;
          for (let d = 0; d < hd; d++) {
            dq[qo + d] += ds * key[ko + d];
            dkey[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
  }
}

/**
 * unrolledAttentionForward for f32 buffers through matrix products, one (sequence, head) at a
 * time (as attentionForwardMm): the scores against stream 0's keys for the whole square, the
 * few entries whose key comes from a later stream (k > j − stream) recomputed, a masked softmax,
 * out = P V₀ and the same few entries corrected to their own stream's values. Same results as
 * the scalar version up to f32 rounding.
 */
export function unrolledAttentionForwardMm(q: Float32Array, ks: readonly Float32Array[], vs: readonly Float32Array[], stream: number, s: RaggedShape, probs: Float32Array, out: Float32Array): void {
  const { nHeads, nKvHeads, headDim: hd } = s;
  const dim = nHeads * hd, kvDim = nKvHeads * hd, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hd);
  let po = 0;
  for (let b = 0; b < s.len.length; b++) {
    const T = s.len[b], o = s.off[b];
    for (let h = 0; h < nHeads; h++, po += T * T) {
      const qo = o * dim + h * hd, kvo = o * kvDim + Math.floor(h / group) * hd;
      matmul({ data: q, off: qo, rs: dim, ks: 1 }, { data: ks[0], off: kvo, rs: kvDim, ks: 1 }, T, T, hd, { data: probs, off: po, rs: T }, false);
      for (let j = 0; j < T; j++) {
        const ao = po + j * T;
        if (j < stream) {
          probs.fill(0, ao, ao + T);
          continue;
        }
        for (let d = 0; d < stream; d++) probs[ao + j - d] = dotRows(q, qo + j * dim, ks[stream - d], kvo + (j - d) * kvDim, hd);
        let max = -Infinity;
        for (let k = 0; k <= j; k++) if ((probs[ao + k] *= scale) > max) max = probs[ao + k];
        let sum = 0;
        for (let k = 0; k <= j; k++) sum += probs[ao + k] = Math.exp(probs[ao + k] - max);
        const inv = 1 / sum;
        for (let k = 0; k <= j; k++) probs[ao + k] *= inv;
        probs.fill(0, ao + j + 1, ao + T);
      }
      matmul({ data: probs, off: po, rs: T, ks: 1 }, { data: vs[0], off: kvo, rs: 1, ks: kvDim }, T, hd, T, { data: out, off: qo, rs: dim }, false);
      for (let j = stream; j < T; j++)
        for (let d = 0; d < stream; d++) {
          const a = probs[po + j * T + j - d], v1 = vs[stream - d], vo = kvo + (j - d) * kvDim, oo = qo + j * dim;
          for (let i = 0; i < hd; i++) out[oo + i] += a * (v1[vo + i] - vs[0][vo + i]);
        }
    }
  }
}

/**
 * unrolledAttentionBackward through matrix products (see unrolledAttentionForwardMm): stream 0's
 * products for the whole square, the later streams' entries moved to their own keys and values.
 * dq overwritten; dks[i], dvs[i] accumulate. dP (max len²) is scratch.
 */
export function unrolledAttentionBackwardMm(q: Float32Array, ks: readonly Float32Array[], vs: readonly Float32Array[], stream: number, s: RaggedShape, probs: Float32Array, dout: Float32Array, dq: Float32Array, dks: readonly Float32Array[], dvs: readonly Float32Array[], dP: Float32Array): void {
  const { nHeads, nKvHeads, headDim: hd } = s;
  const dim = nHeads * hd, kvDim = nKvHeads * hd, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hd);
  let po = 0;
  for (let b = 0; b < s.len.length; b++) {
    const T = s.len[b], o = s.off[b];
    for (let h = 0; h < nHeads; h++, po += T * T) {
      const qo = o * dim + h * hd, kvo = o * kvDim + Math.floor(h / group) * hd;
      // dV₀ += Pᵀ dO, then the later streams' entries moved to their own values.
      matmul({ data: probs, off: po, rs: 1, ks: T }, { data: dout, off: qo, rs: 1, ks: dim }, T, hd, T, { data: dvs[0], off: kvo, rs: kvDim }, true);
      // dP = dO V₀ᵀ, the later streams' entries against their own values.
      matmul({ data: dout, off: qo, rs: dim, ks: 1 }, { data: vs[0], off: kvo, rs: kvDim, ks: 1 }, T, T, hd, { data: dP, off: 0, rs: T }, false);
      for (let j = stream; j < T; j++)
        for (let d = 0; d < stream; d++) {
          const a = probs[po + j * T + j - d], vo = kvo + (j - d) * kvDim, oo = qo + j * dim, dv1 = dvs[stream - d], dv0 = dvs[0];
          for (let i = 0; i < hd; i++) {
            dv0[vo + i] -= a * dout[oo + i];
            dv1[vo + i] += a * dout[oo + i];
          }
          dP[j * T + j - d] = dotRows(dout, oo, vs[stream - d], vo, hd);
        }
      for (let j = 0; j < T; j++) {
        const ao = po + j * T, ro = j * T;
        if (j < stream) {
          dP.fill(0, ro, ro + T);
          continue;
        }
        let sum = 0;
        for (let k = 0; k <= j; k++) sum += probs[ao + k] * dP[ro + k];
        for (let k = 0; k <= j; k++) dP[ro + k] = probs[ao + k] * (dP[ro + k] - sum) * scale;
        dP.fill(0, ro + j + 1, ro + T);
      }
      // dQ = dS K₀, dK₀ += dSᵀ Q, then the later streams' entries moved to their own keys.
      matmul({ data: dP, off: 0, rs: T, ks: 1 }, { data: ks[0], off: kvo, rs: 1, ks: kvDim }, T, hd, T, { data: dq, off: qo, rs: dim }, false);
      matmul({ data: dP, off: 0, rs: 1, ks: T }, { data: q, off: qo, rs: 1, ks: dim }, T, hd, T, { data: dks[0], off: kvo, rs: kvDim }, true);
      for (let j = stream; j < T; j++)
        for (let d = 0; d < stream; d++) {
          const ds = dP[j * T + j - d], ko = kvo + (j - d) * kvDim, qr = qo + j * dim, k1 = ks[stream - d], k0 = ks[0], dk1 = dks[stream - d], dk0 = dks[0];
          for (let i = 0; i < hd; i++) {
            dq[qr + i] += ds * (k1[ko + i] - k0[ko + i]);
            dk0[ko + i] -= ds * q[qr + i];
            dk1[ko + i] += ds * q[qr + i];
          }
        }
    }
  }
}

function dotRows(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
  return s;
}

/** Smooth L1 (Huber with β = 1) of pred − target, mean over `n` values; grad (n) = its derivative scaled by `scale` (overwritten) when given. */
export function smoothL1(pred: Float32Array, target: Float32Array, n: number, grad: Float32Array | null, scale: number): number {
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const d = pred[i] - target[i], a = Math.abs(d);
    loss += a < 1 ? 0.5 * d * d : a - 0.5;
    if (grad) grad[i] = scale * (a < 1 ? d : Math.sign(d));
  }
  return loss / Math.max(1, n);
}

// ---- The model -------------------------------------------------------------------------------

const FIELD: Record<EagleBlockTensor, keyof BlockParams> = {
  attn_norm: "attnNorm", attn_q: "wq", attn_k: "wk", attn_v: "wv", attn_output: "wo", ffn_norm: "ffnNorm", ffn_gate: "wGate", ffn_up: "wUp", ffn_down: "wDown",
};

export class EagleModel {
  readonly fc: Param; // (dim, 2·dim) over [embedding; feature]
  readonly fcBias: Param; // (dim)
  readonly blocks: BlockParams[];
  /** All parameters, in file order (eagleTensorShapes). */
  readonly params: Param[];
  readonly headDim: number;
  readonly kvDim: number;

  /**
   * Initialisation under rng: matrices N(0, 0.02²) (the blocks' output projections scaled by
   * 1/√(2·layers)), norms 1, bias 0; the feature half of fc starts as the identity, so the
   * untrained head passes the feature through and learns what changes.
   */
  constructor(
    readonly shape: EagleShape,
    rng: Rng,
    /** The target's token embedding and output matrix, (vocab, dim) each, frozen. */
    readonly embedding: Float32Array,
    readonly output: Float32Array,
  ) {
    const { dim, layers, heads, kvHeads } = shape;
    this.headDim = dim / heads;
    this.kvDim = kvHeads * this.headDim;
    const shapes = eagleTensorShapes(shape);
    const resStd = 0.02 / Math.sqrt(2 * layers);
    const make = (name: string): Param => {
      const s = shapes.get(name)!;
      const n = s.reduce((a, b) => a * b, 1);
      const init = new Float32Array(n);
      if (s.length === 1) {
        if (!name.endsWith("bias")) init.fill(1);
        return makeParam(name, s, false, init);
      }
      const std = /attn_output|ffn_down/.test(name) ? resStd : 0.02;
      for (let i = 0; i < n; i++) init[i] = std * standardNormal(rng);
      if (name === "eagle.fc.weight") for (let r = 0; r < dim; r++) init[r * 2 * dim + dim + r] += 1;
      return makeParam(name, s, true, init);
    };
    this.fc = make("eagle.fc.weight");
    this.fcBias = make("eagle.fc.bias");
    this.blocks = [];
    for (let l = 0; l < layers; l++) {
      const b = {} as BlockParams;
      for (const t of EAGLE_BLOCK_TENSORS) b[FIELD[t]] = make(`eagle.blk.${l}.${t}.weight`);
      this.blocks.push(b);
    }
    this.params = [this.fc, this.fcBias, ...this.blocks.flatMap((b) => EAGLE_BLOCK_TENSORS.map((t) => b[FIELD[t]]))];
  }

  /** The parameters by tensor name (for saveEagleHead). */
  tensors(): Map<string, Float32Array> {
    return new Map(this.params.map((p) => [p.name, p.value]));
  }
}

/** One batch: ragged sequences of entries (see the file comment). */
export interface EagleBatch {
  readonly off: Int32Array; // (B)
  readonly len: Int32Array; // (B)
  readonly rows: number; // N = Σ len
  readonly tokens: Int32Array; // (N) t_{j+1}, the token after each entry's feature
  readonly feat: Float32Array; // (N, dim) f_j
  readonly next: Float32Array; // (N, dim) f_{j+1}
}

export interface EagleLossConfig {
  wReg: number;
  wCls: number;
  /** Weight of stream s: decay^s. */
  decay: number;
}

/** A stream's share of the loss: regression, KL, top-1 agreement with the target, active rows. */
export interface StreamLoss {
  reg: number;
  kl: number;
  agree: number;
  rows: number;
}

/** A block's activations in one stream (q, k after RoPE). */
interface LayerActs extends BlockActs {
  probs: Float32Array; // (probsSize)
  dk: Float32Array; // (N, kvDim) gradient of k, summed over the streams that read it
  dv: Float32Array; // (N, kvDim)
}

interface StreamActs {
  cat: Float32Array; // (N, 2·dim) [embedding; feature]
  layers: LayerActs[];
  out: Float32Array; // (N, dim) predicted features
  logits: Float32Array; // (N, vocab)
  dlogits: Float32Array; // (N, vocab)
  dout: Float32Array; // (N, dim) gradient of out
  labels: Int32Array; // (N) the target's argmax, −1 on inactive rows
}

/**
 * Forward, loss and backward of `streams` unrolled steps over batches of up to `maxRows` rows
 * (sequences of at most `maxLen` entries), buffers allocated once.
 */
export class EaglePass {
  readonly acts: StreamActs[];
  readonly p: Float32Array; // (maxRows, vocab) the target's distributions p_{j+1}
  private readonly logp: Float32Array; // (maxRows, vocab) their logarithms
  private readonly want: Int32Array; // (maxRows) their argmax (the target's greedy token)
  private readonly cos: Float64Array; // (maxLen, headDim / 2)
  private readonly sin: Float64Array;
  private readonly rowCos: Float64Array; // (maxRows, headDim / 2) angles at each row's position
  private readonly rowSin: Float64Array;
  private shape!: RaggedShape;
  private rows = 0;
  private readonly dims: BlockDims;
  // backward scratch
  private readonly dx: Float32Array; // (maxRows, dim)
  private readonly dq: Float32Array; // (maxRows, dim)
  private readonly scratch: BlockScratch;
  private readonly dcat: Float32Array; // (maxRows, 2·dim)
  private readonly dP: Float32Array; // (maxLen, maxLen) attention scratch
  private readonly tmp: Float32Array; // (maxRows, dim)

  constructor(
    readonly model: EagleModel,
    readonly streams: number,
    readonly maxRows: number,
    readonly maxLen: number,
  ) {
    const { dim, hidden, heads, vocabSize: V, ropeBase, normEps } = model.shape;
    const N = maxRows, kvDim = model.kvDim, f = (n: number) => new Float32Array(n);
    this.dims = { dim, kvDim, hidden, normEps };
    this.acts = Array.from({ length: streams }, () => ({
      cat: f(N * 2 * dim),
      layers: model.blocks.map(() => ({ ...blockActs(N, this.dims), probs: f(heads * N * maxLen), dk: f(N * kvDim), dv: f(N * kvDim) })),
      out: f(N * dim), logits: f(N * V), dlogits: f(N * V), dout: f(N * dim), labels: new Int32Array(N),
    }));
    this.p = f(N * V);
    this.logp = f(N * V);
    this.want = new Int32Array(N);
    ({ cos: this.cos, sin: this.sin } = ropeTables(maxLen, model.headDim, ropeBase));
    this.rowCos = new Float64Array((N * model.headDim) / 2);
    this.rowSin = new Float64Array((N * model.headDim) / 2);
    this.dx = f(N * dim);
    this.dq = f(N * dim);
    this.scratch = blockScratch(N, this.dims);
    this.dcat = f(N * 2 * dim);
    this.dP = f(maxLen * maxLen);
    this.tmp = f(N * dim);
  }

  /** Run every stream over the batch; returns each stream's predicted features (N, dim) (views of this pass's buffers). */
  forward(batch: EagleBatch, noise?: (i: number) => number): Float32Array[] {
    const { model, streams } = this;
    const { dim, heads, kvHeads, vocabSize: V } = model.shape;
    const N = batch.rows, hd = model.headDim, half = hd / 2;
    if (N > this.maxRows) throw new RangeError(`a batch of ${N} rows exceeds the pass's ${this.maxRows}`);
    this.rows = N;
    this.shape = { off: batch.off, len: batch.len, nHeads: heads, nKvHeads: kvHeads, headDim: hd };
    for (let b = 0; b < batch.len.length; b++) {
      if (batch.len[b] > this.maxLen) throw new RangeError(`a sequence of ${batch.len[b]} entries exceeds the pass's ${this.maxLen}`);
      for (let j = 0; j < batch.len[b]; j++) {
        const r = batch.off[b] + j;
        this.rowCos.set(this.cos.subarray(j * half, (j + 1) * half), r * half);
        this.rowSin.set(this.sin.subarray(j * half, (j + 1) * half), r * half);
      }
    }
    const E = model.embedding;
    for (let s = 0; s < streams; s++) {
      const S = this.acts[s];
      // Input rows [e(t_{j+1}); feature]: the true f_j (stream 0), else the previous stream's prediction at j − 1.
      for (let b = 0; b < batch.len.length; b++) {
        for (let j = 0; j < batch.len[b]; j++) {
          const r = batch.off[b] + j, c = r * 2 * dim;
          const t = batch.tokens[r];
          S.cat.set(E.subarray(t * dim, (t + 1) * dim), c);
          if (s === 0) {
            for (let i = 0; i < dim; i++) S.cat[c + dim + i] = batch.feat[r * dim + i] + (noise ? noise(i) : 0);
          } else if (j >= s) S.cat.set(this.acts[s - 1].out.subarray((r - 1) * dim, r * dim), c + dim);
          else S.cat.fill(0, c + dim, c + 2 * dim);
        }
      }
      const first = S.layers.length ? S.layers[0].x : S.out;
      linearForward(S.cat, model.fc.value, model.fcBias.value, N, 2 * dim, dim, first);
      for (let l = 0; l < model.blocks.length; l++) {
        const P = model.blocks[l], A = S.layers[l];
        attentionInputs(P, A, N, this.dims);
        rope(A.q, N, N, heads, hd, hd, this.rowCos, this.rowSin, false);
        rope(A.k, N, N, kvHeads, hd, hd, this.rowCos, this.rowSin, false);
        const ks = this.acts.slice(0, s + 1).map((x) => x.layers[l].k), vs = this.acts.slice(0, s + 1).map((x) => x.layers[l].v);
        unrolledAttentionForwardMm(A.q, ks, vs, s, this.shape, A.probs, A.ao);
        blockOutput(P, A, N, this.dims, l + 1 < S.layers.length ? S.layers[l + 1].x : S.out, this.tmp);
      }
      linearForward(S.out, model.output, null, N, dim, V, S.logits);
    }
    return this.acts.map((a) => a.out.subarray(0, N * dim));
  }

  /** The target's distributions p_{j+1} = softmax(W_out f_{j+1}) for the batch (this.p), their logarithms and argmax. */
  targetDistributions(batch: EagleBatch): void {
    const { dim, vocabSize: V } = this.model.shape, N = batch.rows, p = this.p, logp = this.logp;
    linearForward(batch.next, this.model.output, null, N, dim, V, logp);
    for (let r = 0; r < N; r++) {
      const o = r * V;
      let max = -Infinity, arg = 0;
      for (let v = 0; v < V; v++) if (logp[o + v] > max) (max = logp[o + v]), (arg = v);
      let sum = 0;
      for (let v = 0; v < V; v++) sum += p[o + v] = Math.exp(logp[o + v] - max);
      const logZ = max + Math.log(sum), inv = 1 / sum;
      for (let v = 0; v < V; v++) {
        p[o + v] *= inv;
        logp[o + v] -= logZ;
      }
      this.want[r] = arg;
    }
  }

  /** The target's greedy token after entry row r (argmax of p_{j+1}; lowest id on a tie). */
  targetToken(r: number): number {
    return this.want[r];
  }

  /**
   * Mean over stream s's active rows (labels ≥ 0) of KL(p ‖ softmax(logits)); with dlogits its
   * gradient (softmax − p) / rows (0 on inactive rows). Also the share of rows whose argmax is the target's.
   */
  private klToTarget(logits: Float32Array, active: Int32Array, N: number, dlogits: Float32Array | null): { kl: number; agree: number } {
    const V = this.model.shape.vocabSize, p = this.p, logp = this.logp;
    let n = 0;
    for (let r = 0; r < N; r++) if (active[r] >= 0) n++;
    const inv = n > 0 ? 1 / n : 0;
    let kl = 0, agree = 0;
    for (let r = 0; r < N; r++) {
      const o = r * V;
      if (active[r] < 0) {
        if (dlogits) dlogits.fill(0, o, o + V);
        continue;
      }
      let max = -Infinity, arg = 0;
      for (let v = 0; v < V; v++) if (logits[o + v] > max) (max = logits[o + v]), (arg = v);
      let sum = 0;
      if (dlogits) for (let v = 0; v < V; v++) sum += dlogits[o + v] = Math.exp(logits[o + v] - max);
      else for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
      const logZ = max + Math.log(sum);
      for (let v = 0; v < V; v++) kl += p[o + v] * (logp[o + v] - logits[o + v] + logZ);
      if (dlogits) {
        const scale = inv / sum;
        for (let v = 0; v < V; v++) dlogits[o + v] = dlogits[o + v] * scale - p[o + v] * inv;
      }
      if (arg === this.want[r]) agree++;
    }
    return { kl: kl * inv, agree: agree * inv };
  }

  /**
   * The loss of the last forward against `batch` (targetDistributions must have run), and with
   * `grad` the gradients of every stream's output (into acts[s].dout, before backward).
   */
  loss(batch: EagleBatch, cfg: EagleLossConfig, grad: boolean): { total: number; streams: StreamLoss[] } {
    const { dim, vocabSize: V } = this.model.shape, N = batch.rows;
    let total = 0;
    const parts: StreamLoss[] = [];
    for (let s = 0; s < this.streams; s++) {
      const S = this.acts[s], w = Math.pow(cfg.decay, s);
      let rows = 0;
      for (let b = 0; b < batch.len.length; b++)
        for (let j = 0; j < batch.len[b]; j++) {
          const r = batch.off[b] + j;
          S.labels[r] = j >= s ? this.want[r] : -1;
          if (j >= s) rows++;
        }
      const cls = this.klToTarget(S.logits, S.labels, N, grad ? S.dlogits : null);
      // Regression over active rows only: the mean over (rows × dim) values.
      let reg = 0;
      const scale = rows > 0 ? (w * cfg.wReg) / (rows * dim) : 0;
      for (let b = 0; b < batch.len.length; b++) {
        const o = batch.off[b] + s, n = Math.max(0, batch.len[b] - s) * dim;
        if (grad) S.dout.fill(0, batch.off[b] * dim, (batch.off[b] + Math.min(s, batch.len[b])) * dim);
        if (n > 0) reg += smoothL1(S.out.subarray(o * dim), batch.next.subarray(o * dim), n, grad ? S.dout.subarray(o * dim) : null, scale) * n;
      }
      reg /= Math.max(1, rows * dim);
      if (grad) {
        // dout += wCls · w · dlogits · W_out.
        for (let i = 0; i < N * V; i++) S.dlogits[i] *= w * cfg.wCls;
        linearBackward(S.out, this.model.output, S.dlogits, N, dim, V, null, null, this.tmp);
        for (let i = 0; i < N * dim; i++) S.dout[i] += this.tmp[i];
      }
      total += w * (cfg.wReg * reg + cfg.wCls * cls.kl);
      parts.push({ reg, kl: cls.kl, agree: cls.agree, rows });
    }
    return { total, streams: parts };
  }

  /** Backpropagate the gradients left by `loss` through every stream; parameter gradients accumulate. */
  backward(): void {
    const { model, streams } = this;
    const { dim, heads, kvHeads } = model.shape;
    const N = this.rows, kvDim = model.kvDim, hd = model.headDim, dx = this.dx;
    for (const S of this.acts) for (const A of S.layers) (A.dk.fill(0, 0, N * kvDim), A.dv.fill(0, 0, N * kvDim));
    for (let s = streams - 1; s >= 0; s--) {
      const S = this.acts[s];
      dx.set(S.dout.subarray(0, N * dim));
      for (let l = model.blocks.length - 1; l >= 0; l--) {
        const P = model.blocks[l], A = S.layers[l];
        blockOutputBackward(P, A, N, this.dims, dx, this.scratch);
        // Attention: this stream's queries; keys and values of every stream they read get their share.
        const ks = this.acts.slice(0, s + 1).map((x) => x.layers[l]);
        unrolledAttentionBackwardMm(A.q, ks.map((x) => x.k), ks.map((x) => x.v), s, this.shape, A.probs, this.scratch.dao, this.dq, ks.map((x) => x.dk), ks.map((x) => x.dv), this.dP);
        // Later streams are done, so this stream's own keys and values have their whole gradient now.
        rope(this.dq, N, N, heads, hd, hd, this.rowCos, this.rowSin, true);
        rope(A.dk, N, N, kvHeads, hd, hd, this.rowCos, this.rowSin, true);
        attentionInputsBackward(P, A, N, this.dims, this.dq, A.dk, A.dv, dx, this.scratch);
      }
      linearBackward(S.cat, model.fc.value, dx, N, 2 * dim, dim, model.fc.grad, model.fcBias.grad, s > 0 ? this.dcat : null);
      if (s === 0) continue;
      // The feature half of row j's input was the previous stream's output at j − 1.
      const prev = this.acts[s - 1].dout, len = this.shape.len, off = this.shape.off;
      for (let b = 0; b < len.length; b++)
        for (let j = s; j < len[b]; j++) {
          const r = off[b] + j, c = r * 2 * dim + dim, o = (r - 1) * dim;
          for (let i = 0; i < dim; i++) prev[o + i] += this.dcat[c + i];
        }
    }
  }
}
