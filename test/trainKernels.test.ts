// The trainer's WASM matrix product and the attention written with it, against the plain JS
// loops (whose gradients trainDraft.test.ts checks by finite differences).
import { test } from "node:test";
import assert from "node:assert/strict";
import { matmul, matmulABtJs } from "../src/train/layers.js";
import { SeededRng, standardNormal } from "../src/sampling/rng.js";
import { attentionBackward, attentionBackwardMm, attentionForward, attentionForwardMm, type AttentionShape } from "../src/train/transformerLayers.js";
import { wasmMatmul, wasmMatmulAvailable } from "../src/train/wasmMatmul.js";

function randoms(n: number, rng: SeededRng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = standardNormal(rng);
  return a;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test("WebAssembly SIMD is available here (the trainer's speed depends on it)", () => {
  assert.equal(wasmMatmulAvailable(), true);
});

test("WASM product equals the JS product for odd sizes, transposed operands and strided output", () => {
  const rng = new SeededRng(7);
  for (const [M, N, K] of [[1, 1, 1], [3, 5, 7], [5, 3, 9], [17, 33, 130], [64, 10, 3], [9, 2, 256]]) {
    // A given transposed (stored (K, M)), B row-major inside a wider matrix, output into a slice.
    const At = randoms(K * M, rng), Bw = randoms(N * (K + 3), rng), A = new Float32Array(M * K), B = new Float32Array(N * K);
    for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) A[m * K + k] = At[k * M + m];
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) B[n * K + k] = Bw[n * (K + 3) + 1 + k];
    const want = randoms(M * N, rng), outW = new Float32Array(2 + M * (N + 1)).fill(5);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) outW[2 + m * (N + 1) + n] = want[m * N + n];
    matmulABtJs(A, B, M, N, K, want, true);
    assert.equal(wasmMatmul({ data: At, off: 0, rs: 1, ks: M }, { data: Bw, off: 1, rs: K + 3, ks: 1 }, M, N, K, { data: outW, off: 2, rs: N + 1 }, true), true);
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) assert.ok(Math.abs(outW[2 + m * (N + 1) + n] - want[m * N + n]) < 1e-4 * Math.sqrt(K), `(${M}, ${N}, ${K}) at ${m}, ${n}`);
    // Elements outside the strided output are untouched.
    assert.equal(outW[0], 5);
    assert.equal(outW[1], 5);
    for (let m = 0; m < M; m++) assert.equal(outW[2 + m * (N + 1) + N], 5);
    // The generic entry point (JS path for tiny products) agrees too.
    const viaMatmul = new Float32Array(M * N);
    matmul({ data: At, off: 0, rs: 1, ks: M }, { data: Bw, off: 1, rs: K + 3, ks: 1 }, M, N, K, { data: viaMatmul, off: 0, rs: N }, false);
    const plain = new Float32Array(M * N);
    matmulABtJs(A, B, M, N, K, plain, false);
    assert.ok(maxDiff(viaMatmul, plain) < 1e-4 * Math.sqrt(K));
  }
});

test("the WASM product is deterministic: the same bits on every call", () => {
  const rng = new SeededRng(1);
  const A = randoms(37 * 61, rng), B = randoms(23 * 61, rng);
  const a = new Float32Array(37 * 23), b = new Float32Array(37 * 23);
  wasmMatmul({ data: A, off: 0, rs: 61, ks: 1 }, { data: B, off: 0, rs: 61, ks: 1 }, 37, 23, 61, { data: a, off: 0, rs: 23 }, false);
  wasmMatmul({ data: A, off: 0, rs: 61, ks: 1 }, { data: B, off: 0, rs: 61, ks: 1 }, 37, 23, 61, { data: b, off: 0, rs: 23 }, false);
  assert.deepEqual(a, b);
});

test("attention through matrix products equals the scalar loops, forward and backward (grouped KV heads)", () => {
  const rng = new SeededRng(3);
  const s: AttentionShape = { B: 2, T: 19, nHeads: 4, nKvHeads: 2, headDim: 8 };
  const N = s.B * s.T, dim = s.nHeads * s.headDim, kvDim = s.nKvHeads * s.headDim;
  const q = randoms(N * dim, rng), k = randoms(N * kvDim, rng), v = randoms(N * kvDim, rng), dout = randoms(N * dim, rng);
  const probs1 = new Float32Array(s.B * s.nHeads * s.T * s.T), probs2 = probs1.slice();
  const out1 = new Float32Array(N * dim), out2 = out1.slice();
  attentionForward(q, k, v, s, probs1, out1);
  attentionForwardMm(q, k, v, s, probs2, out2);
  assert.ok(maxDiff(out1, out2) < 1e-5, `out ${maxDiff(out1, out2)}`);
  // Causal: the matrix version zeroes the masked half (the scalar one leaves it unwritten).
  for (let bh = 0; bh < s.B * s.nHeads; bh++)
    for (let i = 0; i < s.T; i++)
      for (let j = 0; j < s.T; j++) {
        const at = (bh * s.T + i) * s.T + j;
        if (j > i) assert.equal(probs2[at], 0);
        else assert.ok(Math.abs(probs1[at] - probs2[at]) < 1e-6);
      }
  const g1 = [new Float32Array(N * dim), new Float32Array(N * kvDim), new Float32Array(N * kvDim)];
  const g2 = [new Float32Array(N * dim), new Float32Array(N * kvDim).fill(9), new Float32Array(N * kvDim).fill(9)];
  attentionBackward(q, k, v, s, probs1, dout, g1[0], g1[1], g1[2], new Float64Array(s.T));
  attentionBackwardMm(q, k, v, s, probs2, dout, g2[0], g2[1], g2[2], new Float32Array(s.T * s.T));
  for (let i = 0; i < 3; i++) assert.ok(maxDiff(g1[i], g2[i]) < 1e-4, `gradient ${["dq", "dk", "dv"][i]}: ${maxDiff(g1[i], g2[i])}`);
});
