// The llama model the trainers train (`train model` from scratch, `train draft` by distillation
// from a target): token embedding (tied to the output projection), `layers` blocks of
// RMSNorm → causal grouped-query attention with normal RoPE → residual, RMSNorm → SwiGLU MLP →
// residual, then the output RMSNorm and logits = h · Eᵀ. Exactly the built-in engine's forward
// pass for a llama GGUF with no output.weight, so the trained parameters are written as one.
//
// Parameters are named and shaped as the GGUF tensors they become (shape = rows, cols; ggml
// dims are the reverse). A LlamaPass owns the activations of one (B windows × T tokens) batch,
// allocated once: a training step allocates nothing. A LlamaModel can also be built over
// parameters given by a ParamFactory (shared memory, for data-parallel training: dataParallel.ts).

import { linearBackward, linearForward } from "./layers.js";
import { attentionInputs, attentionInputsBackward, blockActs, blockOutput, blockOutputBackward, blockScratch, type BlockActs, type BlockDims, type BlockParams, type BlockScratch } from "./llamaBlock.js";
import { makeParam, type Param } from "./optim.js";
import { standardNormal } from "../sampling/rng.js";
import type { Rng } from "../types.js";
import { attentionBackwardMm, attentionForwardMm, embeddingBackward, embeddingForward, rmsNormBackward, rmsNormForward, rope, ropeTables, type AttentionShape } from "./transformerLayers.js";

/** The shape of a llama model's blocks, as chosen on the command line. */
export interface LlamaShape {
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** Feed-forward width. */
  hidden: number;
}

/** Settings the llama trainers (draft, model) share. */
export interface WindowTrainingConfig extends LlamaShape {
  /** Window length in tokens (positions trained per sequence). */
  context: number;
  /** Optimizer updates. */
  steps: number;
  /** Windows per update. */
  batch: number;
  /** Peak learning rate. */
  lr: number;
  seed: number;
  /** Evaluate every this many steps (default: only at the end). */
  evalEvery?: number;
  /** Most held-out windows evaluated (default 32). */
  valWindows?: number;
  warmup?: number; // default steps / 20
  weightDecay?: number; // default 0.01
  clip?: number; // default 1
}

export interface LlamaArch extends LlamaShape {
  vocab: number;
  normEps: number;
  ropeBase: number;
}

type LayerParams = BlockParams;

export function checkLlamaArch(a: LlamaArch): void {
  const ok = (x: number) => Number.isInteger(x) && x >= 1;
  if (![a.vocab, a.dim, a.layers, a.heads, a.kvHeads, a.hidden].every(ok)) throw new RangeError(`llama model sizes must be positive integers: ${JSON.stringify(a)}`);
  if (a.dim % a.heads !== 0 || (a.dim / a.heads) % 2 !== 0) throw new RangeError(`dim ${a.dim} must split into ${a.heads} heads of an even size`);
  if (a.heads % a.kvHeads !== 0) throw new RangeError(`${a.heads} heads cannot share ${a.kvHeads} KV heads`);
}

/** Builds one parameter of a LlamaModel (see its constructor), in place of random initialization. */
export type ParamFactory = (name: string, shape: readonly number[], decay: boolean) => Param;

export class LlamaModel {
  readonly embed: Param; // (vocab, dim) — also the output projection
  readonly blocks: LayerParams[];
  readonly outputNorm: Param; // (dim)
  /** All parameters, in GGUF tensor order. */
  readonly params: Param[];
  readonly headDim: number;
  readonly kvDim: number;

  /**
   * Random initialization (GPT-2 style: N(0, 0.02), residual outputs scaled by 1/√(2·layers)),
   * or, given a ParamFactory instead of an RNG, parameters it builds (in this same order; no
   * random numbers are drawn): e.g. views of shared memory for data-parallel training.
   */
  constructor(
    readonly arch: LlamaArch,
    init: Rng | ParamFactory,
  ) {
    checkLlamaArch(arch);
    const { vocab, dim, layers, heads, kvHeads, hidden } = arch;
    this.headDim = dim / heads;
    this.kvDim = kvHeads * this.headDim;
    const factory = typeof init === "function" ? init : null, rng = typeof init === "function" ? null : init;
    const normal = (n: number, std: number) => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = std * standardNormal(rng!);
      return a;
    };
    const ones = (n: number) => new Float32Array(n).fill(1);
    const mat = (name: string, rows: number, cols: number, std = 0.02) => (factory ? factory(name, [rows, cols], true) : makeParam(name, [rows, cols], true, normal(rows * cols, std)));
    const vec = (name: string, n: number) => (factory ? factory(name, [n], false) : makeParam(name, [n], false, ones(n)));
    const resStd = 0.02 / Math.sqrt(2 * layers);
    this.embed = mat("token_embd.weight", vocab, dim);
    this.blocks = [];
    for (let l = 0; l < layers; l++) {
      const p = `blk.${l}.`;
      this.blocks.push({
        attnNorm: vec(p + "attn_norm.weight", dim),
        wq: mat(p + "attn_q.weight", dim, dim),
        wk: mat(p + "attn_k.weight", this.kvDim, dim),
        wv: mat(p + "attn_v.weight", this.kvDim, dim),
        wo: mat(p + "attn_output.weight", dim, dim, resStd),
        ffnNorm: vec(p + "ffn_norm.weight", dim),
        wGate: mat(p + "ffn_gate.weight", hidden, dim),
        wUp: mat(p + "ffn_up.weight", hidden, dim),
        wDown: mat(p + "ffn_down.weight", dim, hidden, resStd),
      });
    }
    this.outputNorm = vec("output_norm.weight", dim);
    this.params = [this.embed, ...this.blocks.flatMap((b) => [b.attnNorm, b.wq, b.wk, b.wv, b.wo, b.ffnNorm, b.wGate, b.wUp, b.wDown]), this.outputNorm];
  }
}

/** Saved activations of one layer for the backward pass (q, k after RoPE). */
interface LayerActs extends BlockActs {
  probs: Float32Array; // (B, heads, T, T)
}

/** Forward and backward over B windows of T tokens (N = B·T rows), with buffers allocated once. */
export class LlamaPass {
  readonly N: number;
  readonly acts: LayerActs[];
  readonly xOut: Float32Array; // (N, dim) last block's output
  readonly xf: Float32Array; // (N, dim) after the output norm
  readonly invf: Float32Array; // (N)
  readonly logits: Float32Array; // (N, vocab)
  private readonly tokens: Int32Array; // (N)
  private readonly shape: AttentionShape;
  private readonly dims: BlockDims;
  private readonly cos: Float64Array; // (T, headDim / 2)
  private readonly sin: Float64Array;
  // backward scratch
  private readonly dx: Float32Array; // (N, dim) gradient of the residual stream
  private readonly dq: Float32Array; // (N, dim)
  private readonly dk: Float32Array; // (N, kvDim)
  private readonly dv: Float32Array; // (N, kvDim)
  private readonly dP: Float32Array; // (T, T) attention scratch
  private readonly scratch: BlockScratch;
  private readonly tmp: Float32Array; // (N, dim) forward scratch (projection outputs)

  constructor(
    readonly model: LlamaModel,
    readonly B: number,
    readonly T: number,
  ) {
    const { dim, hidden, heads, kvHeads, vocab, ropeBase, normEps } = model.arch;
    const N = (this.N = B * T);
    const kvDim = model.kvDim, f = (n: number) => new Float32Array(n);
    this.shape = { B, T, nHeads: heads, nKvHeads: kvHeads, headDim: model.headDim };
    this.dims = { dim, kvDim, hidden, normEps };
    ({ cos: this.cos, sin: this.sin } = ropeTables(T, model.headDim, ropeBase));
    this.acts = model.blocks.map(() => ({ ...blockActs(N, this.dims), probs: f(B * heads * T * T) }));
    this.xOut = f(N * dim);
    this.xf = f(N * dim);
    this.invf = f(N);
    this.logits = f(N * vocab);
    this.tokens = new Int32Array(N);
    this.dx = f(N * dim);
    this.dq = f(N * dim);
    this.dk = f(N * kvDim);
    this.dv = f(N * kvDim);
    this.dP = f(T * T);
    this.scratch = blockScratch(N, this.dims);
    this.tmp = f(N * dim);
  }

  /** tokens (B, T) → logits (N, vocab) (a view of this pass's buffer). */
  forward(tokens: ArrayLike<number>): Float32Array {
    const { model, N, T, shape } = this;
    const { dim, heads, kvHeads, vocab, normEps } = model.arch;
    const hd = model.headDim;
    for (let r = 0; r < N; r++) {
      const t = tokens[r];
      if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new RangeError(`token ${t} outside the vocabulary`);
      this.tokens[r] = t;
    }
    embeddingForward(this.tokens, model.embed.value, N, dim, this.acts.length ? this.acts[0].x : this.xOut);
    for (let l = 0; l < model.blocks.length; l++) {
      const P = model.blocks[l], A = this.acts[l];
      attentionInputs(P, A, N, this.dims);
      rope(A.q, N, T, heads, hd, hd, this.cos, this.sin, false);
      rope(A.k, N, T, kvHeads, hd, hd, this.cos, this.sin, false);
      attentionForwardMm(A.q, A.k, A.v, shape, A.probs, A.ao);
      blockOutput(P, A, N, this.dims, l + 1 < this.acts.length ? this.acts[l + 1].x : this.xOut, this.tmp);
    }
    rmsNormForward(this.xOut, model.outputNorm.value, N, dim, normEps, this.xf, this.invf);
    linearForward(this.xf, model.embed.value, null, N, dim, vocab, this.logits); // tied output
    return this.logits;
  }

  /** Backpropagate dlogits (N, vocab) of the last forward; parameter gradients are accumulated. */
  backward(dlogits: Float32Array): void {
    const { model, N, shape, T, dx } = this;
    const { dim, heads, kvHeads, vocab } = model.arch;
    const hd = model.headDim, dn = this.scratch.dn;
    linearBackward(this.xf, model.embed.value, dlogits, N, dim, vocab, model.embed.grad, null, dn);
    rmsNormBackward(this.xOut, model.outputNorm.value, this.invf, dn, N, dim, dx, model.outputNorm.grad, false);
    for (let l = model.blocks.length - 1; l >= 0; l--) {
      const P = model.blocks[l], A = this.acts[l];
      blockOutputBackward(P, A, N, this.dims, dx, this.scratch);
      attentionBackwardMm(A.q, A.k, A.v, shape, A.probs, this.scratch.dao, this.dq, this.dk, this.dv, this.dP);
      rope(this.dq, N, T, heads, hd, hd, this.cos, this.sin, true);
      rope(this.dk, N, T, kvHeads, hd, hd, this.cos, this.sin, true);
      attentionInputsBackward(P, A, N, this.dims, this.dq, this.dk, this.dv, dx, this.scratch);
    }
    embeddingBackward(this.tokens, dx, N, dim, model.embed.grad);
  }
}

export interface LossParts {
  /** alpha · KL + (1 − alpha) · CE, mean over the counted rows (nats). */
  loss: number;
  /** Mean KL(p_target ‖ p_model) (0 without target distributions). */
  kl: number;
  /** Mean cross-entropy against the labels. */
  ce: number;
  /** Fraction of the counted rows where the model's argmax equals the target's (or the label's, without a target). */
  agree: number;
  /** Rows counted (label ≥ 0). */
  rows: number;
}

/**
 * Distillation loss over N rows of logits (N, V): alpha · KL(p ‖ softmax(logits)) + (1 − alpha)
 * · CE(label), mean over rows with label ≥ 0 (the others are padding). Both terms are cross-
 * entropies up to a constant, so the gradient is (softmax − (alpha p + (1 − alpha) onehot)) / n,
 * written to dlogits (N, V) when given (0 on padding rows). p (N, V) rows sum to 1, or null (alpha
 * then counts as 0).
 */
export function distillLoss(logits: Float32Array, p: Float32Array | null, labels: ArrayLike<number>, alpha: number, N: number, V: number, dlogits: Float32Array | null): LossParts {
  let n = 0;
  for (let r = 0; r < N; r++) if (labels[r] >= 0) n++;
  const inv = n > 0 ? 1 / n : 0, a = p ? alpha : 0;
  let kl = 0, ce = 0, agree = 0;
  for (let r = 0; r < N; r++) {
    const o = r * V, y = labels[r];
    if (y < 0) {
      if (dlogits) dlogits.fill(0, o, o + V);
      continue;
    }
    let max = -Infinity, arg = 0;
    for (let v = 0; v < V; v++) if (logits[o + v] > max) (max = logits[o + v]), (arg = v);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
    const logZ = max + Math.log(sum);
    ce += logZ - logits[o + y];
    let want = y;
    if (p) {
      let pmax = -1;
      for (let v = 0; v < V; v++) {
        const pv = p[o + v];
        if (pv > 0) kl += pv * (Math.log(pv) - (logits[o + v] - logZ));
        if (pv > pmax) (pmax = pv), (want = v);
      }
    }
    if (arg === want) agree++;
    if (dlogits)
      for (let v = 0; v < V; v++) {
        const target = (p ? a * p[o + v] : 0) + (v === y ? 1 - a : 0);
        dlogits[o + v] = (Math.exp(logits[o + v] - logZ) - target) * inv;
      }
  }
  kl *= inv;
  ce *= inv;
  return { loss: a * kl + (1 - a) * ce, kl, ce, agree: agree * inv, rows: n };
}
