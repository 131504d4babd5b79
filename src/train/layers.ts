// Forward and backward passes of the few layers the trainers need. Row-major, batch first;
// every function writes into buffers the caller owns (no allocation), and backward passes
// ACCUMULATE parameter gradients (+=) so several uses of a parameter add up; zero them per step.
// Shapes: B = batch, nIn/nOut = features, V = vocabulary.

import { wasmMatmul, type MatView, type OutView } from "./wasmMatmul.js";

export type { MatView, OutView };

/**
 * out (M, N) = A (M, K) · Bmᵀ, Bm (N, K) — or += with `accumulate`: the one product every layer
 * here is written in. The WebAssembly SIMD kernel (wasmMatmul.ts) does it, except for tiny
 * products (where copying into its memory costs more) or where WASM is unavailable.
 */
export function matmulABt(A: Float32Array, Bm: Float32Array, M: number, N: number, K: number, out: Float32Array, accumulate: boolean): void {
  matmul({ data: A, off: 0, rs: K, ks: 1 }, { data: Bm, off: 0, rs: K, ks: 1 }, M, N, K, { data: out, off: 0, rs: N }, accumulate);
}

/** Multiply-adds below which the JS loops beat copying into WASM memory. */
const WASM_MIN_WORK = 4096;

/** matmulABt in plain JS, blocked 2 × 2 (four dot products share their loads). */
export function matmulABtJs(A: Float32Array, Bm: Float32Array, M: number, N: number, K: number, out: Float32Array, accumulate: boolean): void {
  const M2 = M & ~1, N2 = N & ~1;
  for (let m = 0; m < M2; m += 2) {
    const a0 = m * K, a1 = a0 + K, o0 = m * N, o1 = o0 + N;
    for (let n = 0; n < N2; n += 2) {
      const b0 = n * K, b1 = b0 + K;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k], x1 = A[a1 + k], y0 = Bm[b0 + k], y1 = Bm[b1 + k];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
      }
      if (accumulate) {
        out[o0 + n] += s00;
        out[o0 + n + 1] += s01;
        out[o1 + n] += s10;
        out[o1 + n + 1] += s11;
      } else {
        out[o0 + n] = s00;
        out[o0 + n + 1] = s01;
        out[o1 + n] = s10;
        out[o1 + n + 1] = s11;
      }
    }
    if (N2 < N) {
      dotInto(A, a0, Bm, N2 * K, K, out, o0 + N2, accumulate);
      dotInto(A, a1, Bm, N2 * K, K, out, o1 + N2, accumulate);
    }
  }
  if (M2 < M) for (let n = 0; n < N; n++) dotInto(A, M2 * K, Bm, n * K, K, out, M2 * N + n, accumulate);
}

function dotInto(A: Float32Array, a: number, Bm: Float32Array, b: number, K: number, out: Float32Array, o: number, accumulate: boolean): void {
  let s = 0;
  for (let k = 0; k < K; k++) s += A[a + k] * Bm[b + k];
  out[o] = accumulate ? out[o] + s : s;
}

// Dense copies for the JS path of `matmul`: grown when a larger product comes, never per call otherwise.
const scratch: Float32Array[] = [new Float32Array(0), new Float32Array(0), new Float32Array(0)];
function scratchOf(which: 0 | 1 | 2, n: number): Float32Array {
  return scratch[which].length >= n ? scratch[which] : (scratch[which] = new Float32Array(n));
}

/** A dense (rows, K) copy of a strided operand. */
function dense(v: MatView, rows: number, K: number, which: 0 | 1): Float32Array {
  if (v.off === 0 && v.rs === K && v.ks === 1) return v.data;
  const d = scratchOf(which, rows * K);
  for (let r = 0; r < rows; r++) for (let k = 0; k < K; k++) d[r * K + k] = v.data[v.off + r * v.rs + k * v.ks];
  return d;
}

/**
 * out (M, N) = A (M, K) · Bᵀ (B is (N, K)) — or += — for strided views (slices, transposes):
 * the WASM kernel takes them as they are; the JS path copies them dense first.
 */
export function matmul(A: MatView, Bm: MatView, M: number, N: number, K: number, out: OutView, accumulate: boolean): void {
  if (M * N * K >= WASM_MIN_WORK && wasmMatmul(A, Bm, M, N, K, out, accumulate)) return;
  const a = dense(A, M, K, 0), b = dense(Bm, N, K, 1);
  if (out.off === 0 && out.rs === N) return matmulABtJs(a, b, M, N, K, out.data, accumulate);
  const o = scratchOf(2, M * N);
  matmulABtJs(a, b, M, N, K, o, false);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      const d = out.off + m * out.rs + n;
      out.data[d] = accumulate ? out.data[d] + o[m * N + n] : o[m * N + n];
    }
}

/** y (B, nOut) = x (B, nIn) · Wᵀ + b.  W (nOut, nIn), b (nOut) or null. */
export function linearForward(x: Float32Array, W: Float32Array, b: Float32Array | null, B: number, nIn: number, nOut: number, y: Float32Array): void {
  matmulABt(x, W, B, nOut, nIn, y, false);
  if (b) for (let r = 0; r < B; r++) for (let o = 0; o < nOut; o++) y[r * nOut + o] += b[o];
}

/**
 * Backward of linearForward for dy (B, nOut): dW (nOut, nIn) += dyᵀ · x, db (nOut) += Σ_rows dy,
 * dx (B, nIn) = dy · W (overwritten). dW, db, dx may be null when not needed.
 */
export function linearBackward(
  x: Float32Array,
  W: Float32Array,
  dy: Float32Array,
  B: number,
  nIn: number,
  nOut: number,
  dW: Float32Array | null,
  db: Float32Array | null,
  dx: Float32Array | null,
): void {
  if (db) for (let r = 0; r < B; r++) for (let o = 0; o < nOut; o++) db[o] += dy[r * nOut + o];
  // dW (o, i) = Σ_b dy (b, o) x (b, i): both operands are read transposed.
  if (dW) matmul({ data: dy, off: 0, rs: 1, ks: nOut }, { data: x, off: 0, rs: 1, ks: nIn }, nOut, nIn, B, { data: dW, off: 0, rs: nIn }, true);
  // dx (b, i) = Σ_o dy (b, o) W (o, i): W read transposed.
  if (dx) matmul({ data: dy, off: 0, rs: nOut, ks: 1 }, { data: W, off: 0, rs: 1, ks: nIn }, B, nIn, nOut, { data: dx, off: 0, rs: nIn }, false);
}

/** SiLU(z) = z σ(z). */
export function silu(z: number): number {
  return z / (1 + Math.exp(-z));
}

/**
 * Residual SiLU block: z (B, dim) = h · Wᵀ + b (kept for the backward pass), y (B, dim) = h + SiLU(z).
 * W (dim, dim), b (dim).
 */
export function residualForward(h: Float32Array, W: Float32Array, b: Float32Array, B: number, dim: number, z: Float32Array, y: Float32Array): void {
  linearForward(h, W, b, B, dim, dim, z);
  for (let i = 0; i < B * dim; i++) y[i] = h[i] + silu(z[i]);
}

/**
 * Backward of residualForward for dy (B, dim): dW += , db += (accumulated); dh (B, dim) =
 * dy + Wᵀ-path (overwritten; null to skip). dz (B, dim) is scratch (overwritten).
 * SiLU'(z) = σ(z) (1 + z (1 − σ(z))).
 */
export function residualBackward(
  h: Float32Array,
  W: Float32Array,
  z: Float32Array,
  dy: Float32Array,
  B: number,
  dim: number,
  dW: Float32Array | null,
  db: Float32Array | null,
  dh: Float32Array | null,
  dz: Float32Array,
): void {
  for (let i = 0; i < B * dim; i++) {
    const s = 1 / (1 + Math.exp(-z[i]));
    dz[i] = dy[i] * s * (1 + z[i] * (1 - s));
  }
  linearBackward(h, W, dz, B, dim, dim, dW, db, dh);
  if (dh) for (let i = 0; i < B * dim; i++) dh[i] += dy[i];
}

/**
 * Softmax cross-entropy from logits (B, V) against labels (B): returns the mean over the batch
 * of −log softmax(logits_r)[label_r], in nats. dlogits (B, V), when given, is overwritten with
 * the gradient of that mean: (softmax − onehot) / B. Labels < 0 are skipped (and not counted).
 */
export function softmaxCrossEntropy(logits: Float32Array, labels: ArrayLike<number>, B: number, V: number, dlogits: Float32Array | null): number {
  let n = 0;
  for (let r = 0; r < B; r++) if (labels[r] >= 0) n++;
  let loss = 0;
  const inv = n > 0 ? 1 / n : 0;
  for (let r = 0; r < B; r++) {
    const o = r * V, y = labels[r];
    if (y < 0) {
      if (dlogits) dlogits.fill(0, o, o + V);
      continue;
    }
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > max) max = logits[o + v];
    let sum = 0;
    if (dlogits) {
      for (let v = 0; v < V; v++) sum += dlogits[o + v] = Math.exp(logits[o + v] - max);
      const scale = inv / sum;
      for (let v = 0; v < V; v++) dlogits[o + v] *= scale;
      dlogits[o + y] -= inv;
    } else for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
    loss += max + Math.log(sum) - logits[o + y];
  }
  return loss * inv;
}

/**
 * KL(p ‖ q) for distillation, mean over the batch: p (B, V) the target's probabilities (rows
 * sum to 1), q = softmax(logits (B, V)) the model's. dlogits (B, V), when given, is overwritten
 * with the gradient of that mean with respect to the logits: (q − p) / B.
 */
export function klDivergence(p: Float32Array, logits: Float32Array, B: number, V: number, dlogits: Float32Array | null): number {
  let loss = 0;
  const inv = 1 / B;
  for (let r = 0; r < B; r++) {
    const o = r * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > max) max = logits[o + v];
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - max);
    const logZ = max + Math.log(sum);
    for (let v = 0; v < V; v++) {
      const pv = p[o + v];
      if (pv > 0) loss += pv * (Math.log(pv) - (logits[o + v] - logZ));
      if (dlogits) dlogits[o + v] = (Math.exp(logits[o + v] - logZ) - pv) * inv;
    }
  }
  return loss * inv;
}
