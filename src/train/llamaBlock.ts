// One llama block as the trainers run it — x2 = x + Wo · attention(RoPE(Wq n₁), RoPE(Wk n₁), Wv n₁),
// out = x2 + W_down (SiLU(W_gate n₂) ⊙ W_up n₂), n₁ = RMSNorm(x) g₁, n₂ = RMSNorm(x2) g₂ — in two
// halves around the attention, which the caller runs with RoPE: causal windows for the draft
// model (draftModel.ts), the unrolled drafting streams for the EAGLE head (eagleModel.ts).
// Forward: attentionInputs → (RoPE, attention → ao) → blockOutput. Backward: blockOutputBackward
// → (attention backward, inverse RoPE) → attentionInputsBackward. Conventions as layers.ts:
// the caller owns every buffer, parameter gradients accumulate.

import { linearBackward, linearForward } from "./layers.js";
import type { Param } from "./optim.js";
import { rmsNormBackward, rmsNormForward, swigluBackward, swigluForward } from "./transformerLayers.js";

export interface BlockParams {
  attnNorm: Param; // (dim)
  wq: Param; // (dim, dim)
  wk: Param; // (kvDim, dim)
  wv: Param; // (kvDim, dim)
  wo: Param; // (dim, dim)
  ffnNorm: Param; // (dim)
  wGate: Param; // (hidden, dim)
  wUp: Param; // (hidden, dim)
  wDown: Param; // (dim, hidden)
}

/** A block's saved activations over N rows. */
export interface BlockActs {
  x: Float32Array; // (N, dim) block input (residual stream)
  xn1: Float32Array; // (N, dim) attention norm output
  inv1: Float32Array; // (N)
  q: Float32Array; // (N, dim) (the caller applies RoPE in place)
  k: Float32Array; // (N, kvDim)
  v: Float32Array; // (N, kvDim)
  ao: Float32Array; // (N, dim) attention output before wo (the caller's)
  x2: Float32Array; // (N, dim) residual after attention
  xn2: Float32Array; // (N, dim)
  inv2: Float32Array; // (N)
  g: Float32Array; // (N, hidden) gate pre-activation
  u: Float32Array; // (N, hidden)
  h: Float32Array; // (N, hidden) SiLU(g) ⊙ u
}

export interface BlockDims {
  readonly dim: number;
  readonly kvDim: number;
  readonly hidden: number;
  readonly normEps: number;
}

export function blockActs(N: number, d: BlockDims): BlockActs {
  const f = (n: number) => new Float32Array(n);
  return { x: f(N * d.dim), xn1: f(N * d.dim), inv1: f(N), q: f(N * d.dim), k: f(N * d.kvDim), v: f(N * d.kvDim), ao: f(N * d.dim), x2: f(N * d.dim), xn2: f(N * d.dim), inv2: f(N), g: f(N * d.hidden), u: f(N * d.hidden), h: f(N * d.hidden) };
}

/** Backward scratch for blocks of up to N rows. */
export interface BlockScratch {
  dn: Float32Array; // (N, dim) gradient of a norm's output
  dtmp: Float32Array; // (N, dim)
  dao: Float32Array; // (N, dim) gradient of the attention output
  dh: Float32Array; // (N, hidden)
  dg: Float32Array; // (N, hidden)
  du: Float32Array; // (N, hidden)
}

export function blockScratch(N: number, d: BlockDims): BlockScratch {
  const f = (n: number) => new Float32Array(n);
  return { dn: f(N * d.dim), dtmp: f(N * d.dim), dao: f(N * d.dim), dh: f(N * d.hidden), dg: f(N * d.hidden), du: f(N * d.hidden) };
}

/** n₁ = RMSNorm(A.x) g₁ and q, k, v = n₁ W{q,k,v}ᵀ, before RoPE. */
export function attentionInputs(P: BlockParams, A: BlockActs, N: number, d: BlockDims): void {
  rmsNormForward(A.x, P.attnNorm.value, N, d.dim, d.normEps, A.xn1, A.inv1);
  linearForward(A.xn1, P.wq.value, null, N, d.dim, d.dim, A.q);
  linearForward(A.xn1, P.wk.value, null, N, d.dim, d.kvDim, A.k);
  linearForward(A.xn1, P.wv.value, null, N, d.dim, d.kvDim, A.v);
}

/** From the attention output A.ao to the block's output `out` (N, dim); tmp (N, dim) is scratch. */
export function blockOutput(P: BlockParams, A: BlockActs, N: number, d: BlockDims, out: Float32Array, tmp: Float32Array): void {
  const { dim, hidden } = d;
  linearForward(A.ao, P.wo.value, null, N, dim, dim, tmp);
  for (let i = 0; i < N * dim; i++) A.x2[i] = A.x[i] + tmp[i];
  rmsNormForward(A.x2, P.ffnNorm.value, N, dim, d.normEps, A.xn2, A.inv2);
  linearForward(A.xn2, P.wGate.value, null, N, dim, hidden, A.g);
  linearForward(A.xn2, P.wUp.value, null, N, dim, hidden, A.u);
  swigluForward(A.g, A.u, N * hidden, A.h);
  linearForward(A.h, P.wDown.value, null, N, hidden, dim, tmp);
  for (let i = 0; i < N * dim; i++) out[i] = A.x2[i] + tmp[i];
}

/**
 * Backward of blockOutput: dx (N, dim) holds the gradient of the block's output and becomes the
 * gradient of x2 = of the block input through the residual; s.dao gets the attention output's.
 */
export function blockOutputBackward(P: BlockParams, A: BlockActs, N: number, d: BlockDims, dx: Float32Array, s: BlockScratch): void {
  const { dim, hidden } = d;
  linearBackward(A.h, P.wDown.value, dx, N, hidden, dim, P.wDown.grad, null, s.dh);
  swigluBackward(A.g, A.u, s.dh, N * hidden, s.dg, s.du);
  linearBackward(A.xn2, P.wGate.value, s.dg, N, dim, hidden, P.wGate.grad, null, s.dn);
  linearBackward(A.xn2, P.wUp.value, s.du, N, dim, hidden, P.wUp.grad, null, s.dtmp);
  for (let i = 0; i < N * dim; i++) s.dn[i] += s.dtmp[i];
  rmsNormBackward(A.x2, P.ffnNorm.value, A.inv2, s.dn, N, dim, dx, P.ffnNorm.grad, true);
  linearBackward(A.ao, P.wo.value, dx, N, dim, dim, P.wo.grad, null, s.dao);
}

/** Backward of attentionInputs for the gradients of q, k, v (after inverse RoPE): added to dx, the block input's. */
export function attentionInputsBackward(P: BlockParams, A: BlockActs, N: number, d: BlockDims, dq: Float32Array, dk: Float32Array, dv: Float32Array, dx: Float32Array, s: BlockScratch): void {
  const { dim, kvDim } = d;
  linearBackward(A.xn1, P.wq.value, dq, N, dim, dim, P.wq.grad, null, s.dn);
  linearBackward(A.xn1, P.wk.value, dk, N, dim, kvDim, P.wk.grad, null, s.dtmp);
  for (let i = 0; i < N * dim; i++) s.dn[i] += s.dtmp[i];
  linearBackward(A.xn1, P.wv.value, dv, N, dim, kvDim, P.wv.grad, null, s.dtmp);
  for (let i = 0; i < N * dim; i++) s.dn[i] += s.dtmp[i];
  rmsNormBackward(A.x, P.attnNorm.value, A.inv1, s.dn, N, dim, dx, P.attnNorm.grad, true);
}
