// Unquantized weight types F32, F16 and BF16 (little-endian, one element per "block").
// Accumulation order, shared by the one-vector and batched kernels so batches are
// bit-identical: chunks of 32 elements, each summed as two chains (elements 0..15 and 16..31 of
// the chunk) added to the row total as (s0 + s1); the last n % 32 elements form one more
// chain added at the end.

import { F16_TO_F32 } from "./f16.js";

/** BF16_TO_F32[bits] is the value of the bfloat16 number with those bits. (65536) */
export const BF16_TO_F32 = new Float32Array(new Uint32Array(65536).map((_, h) => h << 16).buffer);

// One chunk of weights as doubles, for the batched kernels. (32)
const WB = new Float64Array(32);

// ---- f32 weights seen as a Float32Array ----

// A Float32Array over each weight buffer, made once per buffer and reused.
const viewCache = new WeakMap<ArrayBufferLike, Float32Array>();
// A copy of one row when the weights are not 4-byte aligned. (n), grows on first need only.
let rowCopy = new Float32Array(0);
const copyBytes = new Uint8Array(4);
const copyF32 = new Float32Array(copyBytes.buffer);
// Element index of the row in the array f32Row last returned.
let rowIndex = 0;

function f32Row(w: Uint8Array, byteOff: number, n: number): Float32Array {
  const abs = w.byteOffset + byteOff;
  if ((abs & 3) === 0) {
    let v = viewCache.get(w.buffer);
    if (v === undefined) {
      v = new Float32Array(w.buffer, 0, w.buffer.byteLength >> 2);
      viewCache.set(w.buffer, v);
    }
    rowIndex = abs >> 2;
    return v;
  }
  if (rowCopy.length < n) rowCopy = new Float32Array(n);
  for (let i = 0, o = byteOff; i < n; i++, o += 4) {
    copyBytes[0] = w[o]; copyBytes[1] = w[o + 1]; copyBytes[2] = w[o + 2]; copyBytes[3] = w[o + 3];
    rowCopy[i] = copyF32[0];
  }
  rowIndex = 0;
  return rowCopy;
}

// ---- F32 ----

export function dequantF32(w: Uint8Array, off: number, out: Float32Array, oo: number, n: number): void {
  const v = f32Row(w, off, n);
  const base = rowIndex;
  for (let i = 0; i < n; i++) out[oo + i] = v[base + i];
}

export function dotF32(w: Uint8Array, off: number, x: Float32Array, xo: number, n: number): number {
  const v = f32Row(w, off, n);
  let p = rowIndex, acc = 0, c = 0;
  for (; c + 32 <= n; c += 32, p += 32) {
    let s0 = 0, s1 = 0;
    for (let j = 0; j < 16; j++) {
      s0 += v[p + j] * x[xo + c + j];
      s1 += v[p + j + 16] * x[xo + c + j + 16];
    }
    acc += s0 + s1;
  }
  let s = 0;
  for (let j = 0; c + j < n; j++) s += v[p + j] * x[xo + c + j];
  return acc + s;
}

export function dotF32Batch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, n: number, acc: Float64Array): void {
  const v = f32Row(w, off, n);
  const p = rowIndex;
  let c = 0;
  for (; c + 32 <= n; c += 32) {
    for (let j = 0; j < 32; j++) WB[j] = v[p + c + j];
    accumulateChunk(X, xo + c, xStride, batch, acc);
  }
  for (let j = 0; c + j < n; j++) WB[j] = v[p + c + j];
  accumulateTail(n - c, X, xo + c, xStride, batch, acc);
}

// ---- F16 and BF16: the same kernels over a different decoding table ----

function dequantHalf(table: Float32Array, w: Uint8Array, off: number, out: Float32Array, oo: number, n: number): void {
  for (let i = 0; i < n; i++, off += 2) out[oo + i] = table[w[off] | (w[off + 1] << 8)];
}

function dotHalf(table: Float32Array, w: Uint8Array, off: number, x: Float32Array, xo: number, n: number): number {
  let acc = 0, c = 0;
  for (; c + 32 <= n; c += 32, off += 64) {
    let s0 = 0, s1 = 0;
    for (let j = 0; j < 16; j++) {
      const o = off + 2 * j;
      s0 += table[w[o] | (w[o + 1] << 8)] * x[xo + c + j];
      s1 += table[w[o + 32] | (w[o + 33] << 8)] * x[xo + c + j + 16];
    }
    acc += s0 + s1;
  }
  let s = 0;
  for (let j = 0; c + j < n; j++, off += 2) s += table[w[off] | (w[off + 1] << 8)] * x[xo + c + j];
  return acc + s;
}

function dotHalfBatch(table: Float32Array, w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, n: number, acc: Float64Array): void {
  let c = 0;
  for (; c + 32 <= n; c += 32, off += 64) {
    for (let j = 0; j < 32; j++) WB[j] = table[w[off + 2 * j] | (w[off + 2 * j + 1] << 8)];
    accumulateChunk(X, xo + c, xStride, batch, acc);
  }
  for (let j = 0; c + j < n; j++) WB[j] = table[w[off + 2 * j] | (w[off + 2 * j + 1] << 8)];
  accumulateTail(n - c, X, xo + c, xStride, batch, acc);
}

export const dequantF16 = (w: Uint8Array, off: number, out: Float32Array, oo: number, n: number): void => dequantHalf(F16_TO_F32, w, off, out, oo, n);
export const dotF16 = (w: Uint8Array, off: number, x: Float32Array, xo: number, n: number): number => dotHalf(F16_TO_F32, w, off, x, xo, n);
export const dotF16Batch = (w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, n: number, acc: Float64Array): void =>
  dotHalfBatch(F16_TO_F32, w, off, X, xo, xStride, batch, n, acc);
export const dequantBF16 = (w: Uint8Array, off: number, out: Float32Array, oo: number, n: number): void => dequantHalf(BF16_TO_F32, w, off, out, oo, n);
export const dotBF16 = (w: Uint8Array, off: number, x: Float32Array, xo: number, n: number): number => dotHalf(BF16_TO_F32, w, off, x, xo, n);
export const dotBF16Batch = (w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, n: number, acc: Float64Array): void =>
  dotHalfBatch(BF16_TO_F32, w, off, X, xo, xStride, batch, n, acc);

// ---- batched accumulation over the chunk in WB ----

// Four batch items share each load of WB; every item keeps the chains of the one-vector kernel.
function accumulateChunk(X: Float32Array, xo: number, xStride: number, batch: number, acc: Float64Array): void {
  let b = 0;
  for (; b + 4 <= batch; b += 4, xo += 4 * xStride) {
    const xa = xo, xb = xo + xStride, xc = xo + 2 * xStride, xd = xo + 3 * xStride;
    let a0 = 0, a1 = 0, b0 = 0, b1 = 0, c0 = 0, c1 = 0, d0 = 0, d1 = 0;
    for (let j = 0; j < 16; j++) {
      const w0 = WB[j], w1 = WB[j + 16];
      a0 += w0 * X[xa + j]; a1 += w1 * X[xa + j + 16];
      b0 += w0 * X[xb + j]; b1 += w1 * X[xb + j + 16];
      c0 += w0 * X[xc + j]; c1 += w1 * X[xc + j + 16];
      d0 += w0 * X[xd + j]; d1 += w1 * X[xd + j + 16];
    }
    acc[b] += a0 + a1;
    acc[b + 1] += b0 + b1;
    acc[b + 2] += c0 + c1;
    acc[b + 3] += d0 + d1;
  }
  for (; b < batch; b++, xo += xStride) {
    let s0 = 0, s1 = 0;
    for (let j = 0; j < 16; j++) {
      s0 += WB[j] * X[xo + j];
      s1 += WB[j + 16] * X[xo + j + 16];
    }
    acc[b] += s0 + s1;
  }
}

function accumulateTail(m: number, X: Float32Array, xo: number, xStride: number, batch: number, acc: Float64Array): void {
  for (let b = 0; b < batch; b++, xo += xStride) {
    let s = 0;
    for (let j = 0; j < m; j++) s += WB[j] * X[xo + j];
    acc[b] += s;
  }
}
