// Forward and backward passes of the llama block's pieces, for training the llama model (llamaModel.ts):
// embedding, RMSNorm, RoPE (normal: pairs (2i, 2i + 1)), causal grouped-query attention and
// the SwiGLU gate. The math is the built-in engine's (src/engine/transformer.ts), so a trained
// model runs there (and in llama.cpp) as it was trained. Linear layers are layers.ts's.
//
// Conventions (as layers.ts): row-major, rows first; the caller owns every buffer; backward
// passes ACCUMULATE parameter gradients (+=). Input gradients are overwritten unless a function
// says it accumulates. Buffers may be f32 (training) or f64 (exact gradient checks).
// Shapes: N = rows (batch × window), T = window length, n = features.

import { matmul } from "./layers.js";

export type Buf = Float32Array | Float64Array;

/** x (N, dim) = E[tokens] — rows of E (V, dim). */
export function embeddingForward(tokens: ArrayLike<number>, E: Buf, N: number, dim: number, x: Buf): void {
  for (let r = 0; r < N; r++) {
    const e = tokens[r] * dim, o = r * dim;
    for (let i = 0; i < dim; i++) x[o + i] = E[e + i];
  }
}

/** dE (V, dim) += scatter of dx (N, dim) into the tokens' rows. */
export function embeddingBackward(tokens: ArrayLike<number>, dx: Buf, N: number, dim: number, dE: Buf): void {
  for (let r = 0; r < N; r++) {
    const e = tokens[r] * dim, o = r * dim;
    for (let i = 0; i < dim; i++) dE[e + i] += dx[o + i];
  }
}

/** y (N, n) = x / rms(x) * w, rms = sqrt(mean(x²) + eps); invRms (N) is kept for the backward pass. */
export function rmsNormForward(x: Buf, w: Buf, N: number, n: number, eps: number, y: Buf, invRms: Buf): void {
  for (let r = 0; r < N; r++) {
    const o = r * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / n + eps);
    invRms[r] = inv;
    for (let i = 0; i < n; i++) y[o + i] = x[o + i] * inv * w[i];
  }
}

/**
 * Backward of rmsNormForward for dy (N, n): dw (n) += Σ dy x inv; dx (N, n) gets
 * inv (dy w) − inv³ x · mean(dy w x) — added to dx when `accumulate` (the residual stream).
 */
export function rmsNormBackward(x: Buf, w: Buf, invRms: Buf, dy: Buf, N: number, n: number, dx: Buf, dw: Buf | null, accumulate: boolean): void {
  for (let r = 0; r < N; r++) {
    const o = r * n, inv = invRms[r];
    let dot = 0;
    for (let i = 0; i < n; i++) dot += dy[o + i] * w[i] * x[o + i];
    const c = (inv * inv * inv * dot) / n;
    for (let i = 0; i < n; i++) {
      const g = inv * dy[o + i] * w[i] - c * x[o + i];
      dx[o + i] = accumulate ? dx[o + i] + g : g;
      if (dw) dw[i] += dy[o + i] * x[o + i] * inv;
    }
  }
}

/**
 * cos and sin (T, ropeDim / 2) of the angle pos × base^(−2i / ropeDim) for positions 0 .. T − 1,
 * computed in f64 as the engine does.
 */
export function ropeTables(T: number, ropeDim: number, base: number): { cos: Float64Array; sin: Float64Array } {
  const half = ropeDim / 2;
  const cos = new Float64Array(T * half), sin = new Float64Array(T * half);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < half; i++) {
      const angle = t * Math.pow(base, (-2 * i) / ropeDim);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  return { cos, sin };
}

/**
 * Rotate, in place, pairs (2i, 2i + 1) of each head's first ropeDim dimensions of vec
 * (N, nHeads × headDim); row r is at position r mod T. `inverse` rotates by −angle: the
 * rotation is orthogonal, so that is its backward pass.
 */
export function rope(vec: Buf, N: number, T: number, nHeads: number, headDim: number, ropeDim: number, cos: Float64Array, sin: Float64Array, inverse: boolean): void {
  const half = ropeDim / 2, width = nHeads * headDim;
  for (let r = 0; r < N; r++) {
    const t = r % T;
    for (let h = 0; h < nHeads; h++) {
      const base = r * width + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i], s = inverse ? -sin[t * half + i] : sin[t * half + i];
        const a = base + 2 * i, b = a + 1;
        const v0 = vec[a], v1 = vec[b];
        vec[a] = v0 * c - v1 * s;
        vec[b] = v0 * s + v1 * c;
      }
    }
  }
}

export interface AttentionShape {
  /** Windows (independent sequences) in the batch. */
  readonly B: number;
  /** Window length: rows b·T .. b·T + T − 1 are one sequence. */
  readonly T: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

/**
 * Causal grouped-query attention within each window. q (N, nHeads × hd), k, v (N, nKv × hd),
 * N = B·T; query head h reads KV head ⌊h / (nHeads / nKv)⌋. probs (B, nHeads, T, T) keeps the
 * softmax weights (entries j ≤ i) for the backward pass; out (N, nHeads × hd).
 */
export function attentionForward(q: Buf, k: Buf, v: Buf, s: AttentionShape, probs: Buf, out: Buf): void {
  const { B, T, nHeads, nKvHeads, headDim: hd } = s;
  const dim = nHeads * hd, kvDim = nKvHeads * hd, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hd);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nHeads; h++) {
      const kvo = Math.floor(h / group) * hd, po = (b * nHeads + h) * T * T;
      for (let i = 0; i < T; i++) {
        const qo = (b * T + i) * dim + h * hd, ao = po + i * T;
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          const ko = (b * T + j) * kvDim + kvo;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[qo + d] * k[ko + d];
          dot *= scale;
          probs[ao + j] = dot;
          if (dot > max) max = dot;
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += probs[ao + j] = Math.exp(probs[ao + j] - max);
        const inv = 1 / sum;
        for (let d = 0; d < hd; d++) out[qo + d] = 0;
        for (let j = 0; j <= i; j++) {
          const a = (probs[ao + j] *= inv), vo = (b * T + j) * kvDim + kvo;
          for (let d = 0; d < hd; d++) out[qo + d] += a * v[vo + d];
        }
      }
    }
}

/**
 * Backward of attentionForward for dout (N, dim): dq (N, dim), dk, dv (N, kvDim) overwritten.
 * With a = softmax(s): da_j = dout_i · v_j, ds_j = a_j (da_j − Σ_l a_l da_l), and s_ij = scale q_i · k_j.
 * da (T) is scratch.
 */
export function attentionBackward(q: Buf, k: Buf, v: Buf, s: AttentionShape, probs: Buf, dout: Buf, dq: Buf, dk: Buf, dv: Buf, da: Buf): void {
  const { B, T, nHeads, nKvHeads, headDim: hd } = s;
  const dim = nHeads * hd, kvDim = nKvHeads * hd, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hd);
  dq.fill(0, 0, B * T * dim);
  dk.fill(0, 0, B * T * kvDim);
  dv.fill(0, 0, B * T * kvDim);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nHeads; h++) {
      const kvo = Math.floor(h / group) * hd, po = (b * nHeads + h) * T * T;
      for (let i = 0; i < T; i++) {
        const qo = (b * T + i) * dim + h * hd, ao = po + i * T;
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          const vo = (b * T + j) * kvDim + kvo, a = probs[ao + j];
          let dot = 0;
          for (let d = 0; d < hd; d++) {
            dot += dout[qo + d] * v[vo + d];
            dv[vo + d] += a * dout[qo + d];
          }
          da[j] = dot;
          sum += a * dot;
        }
        for (let j = 0; j <= i; j++) {
          const ds = probs[ao + j] * (da[j] - sum) * scale, ko = (b * T + j) * kvDim + kvo;
          if (ds === 0) continue;
          for (let d = 0; d < hd; d++) {
            dq[qo + d] += ds * k[ko + d];
            dk[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
}

/** SwiGLU gate: h (n) = SiLU(g) ⊙ u, elementwise over n = N × hidden. */
export function swigluForward(g: Buf, u: Buf, n: number, h: Buf): void {
  for (let i = 0; i < n; i++) {
    const x = g[i];
    h[i] = (x / (1 + Math.exp(-x))) * u[i];
  }
}

/** Backward of swigluForward for dh: dg = dh u SiLU'(g), du = dh SiLU(g) (overwritten). SiLU'(z) = σ(z)(1 + z(1 − σ(z))). */
export function swigluBackward(g: Buf, u: Buf, dh: Buf, n: number, dg: Buf, du: Buf): void {
  for (let i = 0; i < n; i++) {
    const x = g[i], sg = 1 / (1 + Math.exp(-x));
    dg[i] = dh[i] * u[i] * sg * (1 + x * (1 - sg));
    du[i] = dh[i] * x * sg;
  }
}

/**
 * attentionForward for f32 buffers through matrix products, one (window, head) at a time:
 * S = scale · Q_h K_hᵀ (T, T) into the head's probs slice, causal mask and softmax in place
 * (entries j > i become 0), then out_h = P V_h. The products cover the whole T × T square
 * (half of it masked), which still beats the scalar loops many times over on the WASM kernel.
 * Same results as attentionForward up to f32 rounding.
 */
export function attentionForwardMm(q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape, probs: Float32Array, out: Float32Array): void {
  const { B, T, nHeads, nKvHeads, headDim: hd } = s;
  const dim = nHeads * hd, kvDim = nKvHeads * hd, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hd);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nHeads; h++) {
      const qo = b * T * dim + h * hd, kvo = b * T * kvDim + Math.floor(h / group) * hd, po = (b * nHeads + h) * T * T;
      matmul({ data: q, off: qo, rs: dim, ks: 1 }, { data: k, off: kvo, rs: kvDim, ks: 1 }, T, T, hd, { data: probs, off: po, rs: T }, false);
      for (let i = 0; i < T; i++) {
        const ao = po + i * T;
        let max = -Infinity;
        for (let j = 0; j <= i; j++) if ((probs[ao + j] *= scale) > max) max = probs[ao + j];
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += probs[ao + j] = Math.exp(probs[ao + j] - max);
        const inv = 1 / sum;
        for (let j = 0; j <= i; j++) probs[ao + j] *= inv;
        probs.fill(0, ao + i + 1, ao + T);
      }
      // out_h (i, d) = Σ_j P (i, j) V_h (j, d): V_h read transposed.
      matmul({ data: probs, off: po, rs: T, ks: 1 }, { data: v, off: kvo, rs: 1, ks: kvDim }, T, hd, T, { data: out, off: qo, rs: dim }, false);
    }
}

/**
 * attentionBackward through matrix products (see attentionForwardMm), for the probs it kept:
 * dP = dO_h V_hᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale (in dP's place), dQ_h = dS K_h,
 * dK_h += dSᵀ Q_h, dV_h += Pᵀ dO_h. dP (T, T) is scratch; dq, dk, dv are overwritten.
 */
export function attentionBackwardMm(q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape, probs: Float32Array, dout: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array, dP: Float32Array): void {
  const { B, T, nHeads, nKvHeads, headDim: hd } = s;
  const dim = nHeads * hd, kvDim = nKvHeads * hd, group = nHeads / nKvHeads, scale = 1 / Math.sqrt(hd);
  dk.fill(0, 0, B * T * kvDim);
  dv.fill(0, 0, B * T * kvDim);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nHeads; h++) {
      const qo = b * T * dim + h * hd, kvo = b * T * kvDim + Math.floor(h / group) * hd, po = (b * nHeads + h) * T * T;
      const PT = { data: probs, off: po, rs: 1, ks: T };
      // dV_h (j, d) += Σ_i P (i, j) dO (i, d)
      matmul(PT, { data: dout, off: qo, rs: 1, ks: dim }, T, hd, T, { data: dv, off: kvo, rs: kvDim }, true);
      // dP (i, j) = Σ_d dO (i, d) V (j, d)
      matmul({ data: dout, off: qo, rs: dim, ks: 1 }, { data: v, off: kvo, rs: kvDim, ks: 1 }, T, T, hd, { data: dP, off: 0, rs: T }, false);
      for (let i = 0; i < T; i++) {
        const ao = po + i * T, ro = i * T;
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += probs[ao + j] * dP[ro + j];
        for (let j = 0; j <= i; j++) dP[ro + j] = probs[ao + j] * (dP[ro + j] - sum) * scale;
        dP.fill(0, ro + i + 1, ro + T);
      }
      // dQ_h (i, d) = Σ_j dS (i, j) K (j, d)
      matmul({ data: dP, off: 0, rs: T, ks: 1 }, { data: k, off: kvo, rs: 1, ks: kvDim }, T, hd, T, { data: dq, off: qo, rs: dim }, false);
      // dK_h (j, d) += Σ_i dS (i, j) Q (i, d)
      matmul({ data: dP, off: 0, rs: 1, ks: T }, { data: q, off: qo, rs: 1, ks: dim }, T, hd, T, { data: dk, off: kvo, rs: kvDim }, true);
    }
}
