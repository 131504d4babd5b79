// The 32-element block types Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, laid out as ggml stores them
// (ggml-common.h), little-endian:
//   Q4_0 (18 B): f16 d, u8 qs[16]             x = d * (q - 8)
//   Q4_1 (20 B): f16 d, f16 m, u8 qs[16]      x = d * q + m
//   Q5_0 (22 B): f16 d, u32 qh, u8 qs[16]     x = d * (q - 16)
//   Q5_1 (24 B): f16 d, f16 m, u32 qh, u8 qs[16]   x = d * q + m
//   Q8_0 (34 B): f16 d, i8 qs[32]             x = d * q
// Nibble byte j holds element j (low 4 bits) and element j + 16 (high 4 bits); bit j of qh is
// the fifth bit of element j.
//
// Every dot product (the one-vector `dot*` and the batched `dot*Batch`) accumulates in the same
// order, so batch k gives bit-identical results to batch 1: per block, element j < 16 goes into
// chain s0 and element j + 16 into chain s1, both in increasing j; the block adds
// d * (s0 + s1) (+ m * (t0 + t1) with t the matching sums of x) to the row total.

import { F16_TO_F32, f32ToF16 } from "./f16.js";

export const QK = 32;

// One decoded block, element order: the integer quants as doubles. (32)
const QB = new Float64Array(QK);

// ---- shared batched accumulation over the decoded block in QB ----

// acc[b] += d * sum_j QB[j] * X[xo + b*xStride + j]. Four batch items share each load of QB
// (eight independent chains); every item keeps exactly the chains of the one-vector kernel.
function accumulateSym(d: number, X: Float32Array, xo: number, xStride: number, batch: number, acc: Float64Array): void {
  let b = 0;
  for (; b + 4 <= batch; b += 4, xo += 4 * xStride) {
    const xa = xo, xb = xo + xStride, xc = xo + 2 * xStride, xd = xo + 3 * xStride;
    let a0 = 0, a1 = 0, b0 = 0, b1 = 0, c0 = 0, c1 = 0, d0 = 0, d1 = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = QB[j], q1 = QB[j + 16];
      a0 += q0 * X[xa + j]; a1 += q1 * X[xa + j + 16];
      b0 += q0 * X[xb + j]; b1 += q1 * X[xb + j + 16];
      c0 += q0 * X[xc + j]; c1 += q1 * X[xc + j + 16];
      d0 += q0 * X[xd + j]; d1 += q1 * X[xd + j + 16];
    }
    acc[b] += d * (a0 + a1);
    acc[b + 1] += d * (b0 + b1);
    acc[b + 2] += d * (c0 + c1);
    acc[b + 3] += d * (d0 + d1);
  }
  for (; b < batch; b++, xo += xStride) {
    let s0 = 0, s1 = 0;
    for (let j = 0; j < 16; j++) {
      s0 += QB[j] * X[xo + j];
      s1 += QB[j + 16] * X[xo + j + 16];
    }
    acc[b] += d * (s0 + s1);
  }
}

// acc[b] += d * sum_j QB[j] * x_j + m * sum_j x_j. Two batch items share each load of QB.
function accumulateAffine(d: number, m: number, X: Float32Array, xo: number, xStride: number, batch: number, acc: Float64Array): void {
  let b = 0;
  for (; b + 2 <= batch; b += 2, xo += 2 * xStride) {
    const xb = xo + xStride;
    let s0 = 0, s1 = 0, t0 = 0, t1 = 0, u0 = 0, u1 = 0, v0 = 0, v1 = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = QB[j], q1 = QB[j + 16];
      const x0 = X[xo + j], x1 = X[xo + j + 16], y0 = X[xb + j], y1 = X[xb + j + 16];
      s0 += q0 * x0; s1 += q1 * x1; t0 += x0; t1 += x1;
      u0 += q0 * y0; u1 += q1 * y1; v0 += y0; v1 += y1;
    }
    acc[b] += d * (s0 + s1) + m * (t0 + t1);
    acc[b + 1] += d * (u0 + u1) + m * (v0 + v1);
  }
  for (; b < batch; b++, xo += xStride) {
    let s0 = 0, s1 = 0, t0 = 0, t1 = 0;
    for (let j = 0; j < 16; j++) {
      const x0 = X[xo + j], x1 = X[xo + j + 16];
      s0 += QB[j] * x0;
      s1 += QB[j + 16] * x1;
      t0 += x0;
      t1 += x1;
    }
    acc[b] += d * (s0 + s1) + m * (t0 + t1);
  }
}

function qh32(w: Uint8Array, o: number): number {
  return (w[o] | (w[o + 1] << 8) | (w[o + 2] << 16) | (w[o + 3] << 24)) >>> 0;
}

// ---- Q4_0 ----

export function dequantQ4_0(w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, off += 18, oo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = w[off + 2 + j];
      out[oo + j] = d * ((q & 15) - 8);
      out[oo + j + 16] = d * ((q >> 4) - 8);
    }
  }
}

export function dotQ4_0(w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number): number {
  let acc = 0;
  for (let i = 0; i < nb; i++, off += 18, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    let s0 = 0, s1 = 0;
    for (let j = 0; j < 16; j++) {
      const q = w[off + 2 + j];
      s0 += ((q & 15) - 8) * x[xo + j];
      s1 += ((q >> 4) - 8) * x[xo + j + 16];
    }
    acc += d * (s0 + s1);
  }
  return acc;
}

export function dotQ4_0Batch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array): void {
  for (let i = 0; i < nb; i++, off += 18, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = w[off + 2 + j];
      QB[j] = (q & 15) - 8;
      QB[j + 16] = (q >> 4) - 8;
    }
    accumulateSym(d, X, xo, xStride, batch, acc);
  }
}

// ggml's quantize_row_q4_0_ref: the value of largest magnitude maps to -8, in f32 arithmetic.
export function quantQ4_0(x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number): void {
  const fr = Math.fround;
  for (let i = 0; i < nb; i++, xo += QK, oo += 18) {
    const max = signedAbsMax(x, xo, QK);
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    putF16(out, oo, d);
    for (let j = 0; j < 16; j++) {
      const a = Math.min(15, Math.trunc(fr(fr(x[xo + j] * id) + 8.5)));
      const b = Math.min(15, Math.trunc(fr(fr(x[xo + j + 16] * id) + 8.5)));
      out[oo + 2 + j] = a | (b << 4);
    }
  }
}

// ---- Q4_1 ----

export function dequantQ4_1(w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, off += 20, oo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const m = F16_TO_F32[w[off + 2] | (w[off + 3] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = w[off + 4 + j];
      out[oo + j] = d * (q & 15) + m;
      out[oo + j + 16] = d * (q >> 4) + m;
    }
  }
}

export function dotQ4_1(w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number): number {
  let acc = 0;
  for (let i = 0; i < nb; i++, off += 20, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const m = F16_TO_F32[w[off + 2] | (w[off + 3] << 8)];
    let s0 = 0, s1 = 0, t0 = 0, t1 = 0;
    for (let j = 0; j < 16; j++) {
      const q = w[off + 4 + j];
      const x0 = x[xo + j], x1 = x[xo + j + 16];
      s0 += (q & 15) * x0;
      s1 += (q >> 4) * x1;
      t0 += x0;
      t1 += x1;
    }
    acc += d * (s0 + s1) + m * (t0 + t1);
  }
  return acc;
}

export function dotQ4_1Batch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array): void {
  for (let i = 0; i < nb; i++, off += 20, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const m = F16_TO_F32[w[off + 2] | (w[off + 3] << 8)];
    for (let j = 0; j < 16; j++) {
      const q = w[off + 4 + j];
      QB[j] = q & 15;
      QB[j + 16] = q >> 4;
    }
    accumulateAffine(d, m, X, xo, xStride, batch, acc);
  }
}

// ggml's quantize_row_q4_1_ref: 16 levels spanning [min, max].
export function quantQ4_1(x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number): void {
  const fr = Math.fround;
  for (let i = 0; i < nb; i++, xo += QK, oo += 20) {
    const [min, max] = minMax(x, xo, QK);
    const d = fr((max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    putF16(out, oo, d);
    putF16(out, oo + 2, min);
    for (let j = 0; j < 16; j++) {
      const a = Math.min(15, Math.trunc(fr(fr(fr(x[xo + j] - min) * id) + 0.5)));
      const b = Math.min(15, Math.trunc(fr(fr(fr(x[xo + j + 16] - min) * id) + 0.5)));
      out[oo + 4 + j] = a | (b << 4);
    }
  }
}

// ---- Q5_0 ----

export function dequantQ5_0(w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, off += 22, oo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const qh = qh32(w, off + 2);
    for (let j = 0; j < 16; j++) {
      const q = w[off + 6 + j];
      out[oo + j] = d * (((q & 15) | (((qh >>> j) & 1) << 4)) - 16);
      out[oo + j + 16] = d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
    }
  }
}

export function dotQ5_0(w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number): number {
  let acc = 0;
  for (let i = 0; i < nb; i++, off += 22, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const qh = qh32(w, off + 2);
    let s0 = 0, s1 = 0;
    for (let j = 0; j < 16; j++) {
      const q = w[off + 6 + j];
      s0 += (((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * x[xo + j];
      s1 += (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * x[xo + j + 16];
    }
    acc += d * (s0 + s1);
  }
  return acc;
}

export function dotQ5_0Batch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array): void {
  for (let i = 0; i < nb; i++, off += 22, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const qh = qh32(w, off + 2);
    for (let j = 0; j < 16; j++) {
      const q = w[off + 6 + j];
      QB[j] = ((q & 15) | (((qh >>> j) & 1) << 4)) - 16;
      QB[j + 16] = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16;
    }
    accumulateSym(d, X, xo, xStride, batch, acc);
  }
}

// ggml's quantize_row_q5_0_ref: the value of largest magnitude maps to -16.
export function quantQ5_0(x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number): void {
  const fr = Math.fround;
  for (let i = 0; i < nb; i++, xo += QK, oo += 22) {
    const max = signedAbsMax(x, xo, QK);
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    putF16(out, oo, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const a = Math.min(31, Math.trunc(fr(fr(x[xo + j] * id) + 16.5)));
      const b = Math.min(31, Math.trunc(fr(fr(x[xo + j + 16] * id) + 16.5)));
      out[oo + 6 + j] = (a & 15) | ((b & 15) << 4);
      qh |= ((a >> 4) << j) | ((b >> 4) << (j + 16));
    }
    putU32(out, oo + 2, qh);
  }
}

// ---- Q5_1 ----

export function dequantQ5_1(w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, off += 24, oo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const m = F16_TO_F32[w[off + 2] | (w[off + 3] << 8)];
    const qh = qh32(w, off + 4);
    for (let j = 0; j < 16; j++) {
      const q = w[off + 8 + j];
      out[oo + j] = d * ((q & 15) | (((qh >>> j) & 1) << 4)) + m;
      out[oo + j + 16] = d * ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) + m;
    }
  }
}

export function dotQ5_1(w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number): number {
  let acc = 0;
  for (let i = 0; i < nb; i++, off += 24, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const m = F16_TO_F32[w[off + 2] | (w[off + 3] << 8)];
    const qh = qh32(w, off + 4);
    let s0 = 0, s1 = 0, t0 = 0, t1 = 0;
    for (let j = 0; j < 16; j++) {
      const q = w[off + 8 + j];
      const x0 = x[xo + j], x1 = x[xo + j + 16];
      s0 += ((q & 15) | (((qh >>> j) & 1) << 4)) * x0;
      s1 += ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * x1;
      t0 += x0;
      t1 += x1;
    }
    acc += d * (s0 + s1) + m * (t0 + t1);
  }
  return acc;
}

export function dotQ5_1Batch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array): void {
  for (let i = 0; i < nb; i++, off += 24, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const m = F16_TO_F32[w[off + 2] | (w[off + 3] << 8)];
    const qh = qh32(w, off + 4);
    for (let j = 0; j < 16; j++) {
      const q = w[off + 8 + j];
      QB[j] = (q & 15) | (((qh >>> j) & 1) << 4);
      QB[j + 16] = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
    }
    accumulateAffine(d, m, X, xo, xStride, batch, acc);
  }
}

// ggml's quantize_row_q5_1_ref: 32 levels spanning [min, max].
export function quantQ5_1(x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number): void {
  const fr = Math.fround;
  for (let i = 0; i < nb; i++, xo += QK, oo += 24) {
    const [min, max] = minMax(x, xo, QK);
    const d = fr((max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    putF16(out, oo, d);
    putF16(out, oo + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const a = Math.min(31, Math.trunc(fr(fr(fr(x[xo + j] - min) * id) + 0.5)));
      const b = Math.min(31, Math.trunc(fr(fr(fr(x[xo + j + 16] - min) * id) + 0.5)));
      out[oo + 8 + j] = (a & 15) | ((b & 15) << 4);
      qh |= ((a >> 4) << j) | ((b >> 4) << (j + 16));
    }
    putU32(out, oo + 4, qh);
  }
}

// ---- Q8_0 ----

export function dequantQ8_0(w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, off += 34, oo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    for (let j = 0; j < QK; j++) out[oo + j] = d * ((w[off + 2 + j] << 24) >> 24);
  }
}

export function dotQ8_0(w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number): number {
  let acc = 0;
  for (let i = 0; i < nb; i++, off += 34, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    const q = off + 2;
    let s0 = 0, s1 = 0;
    for (let j = 0; j < 16; j++) {
      s0 += ((w[q + j] << 24) >> 24) * x[xo + j]; // sign-extend the i8
      s1 += ((w[q + j + 16] << 24) >> 24) * x[xo + j + 16];
    }
    acc += d * (s0 + s1);
  }
  return acc;
}

export function dotQ8_0Batch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array): void {
  for (let i = 0; i < nb; i++, off += 34, xo += QK) {
    const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
    for (let j = 0; j < QK; j++) QB[j] = (w[off + 2 + j] << 24) >> 24;
    accumulateSym(d, X, xo, xStride, batch, acc);
  }
}

// ggml's quantize_row_q8_0_ref: d = absmax / 127, q = round(x / d) (halves away from zero).
export function quantQ8_0(x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number): void {
  const fr = Math.fround;
  for (let i = 0; i < nb; i++, xo += QK, oo += 34) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putF16(out, oo, d);
    for (let j = 0; j < QK; j++) out[oo + 2 + j] = roundAway(fr(x[xo + j] * id)) & 0xff;
  }
}

// ---- small helpers for the quantizers (not used by the kernels) ----

/** The element of largest magnitude, with its sign (the first one on ties). */
export function signedAbsMax(x: Float32Array, o: number, n: number): number {
  let amax = 0, max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[o + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, o: number, n: number): [number, number] {
  let min = Infinity, max = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = x[o + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** C's roundf: halves go away from zero. */
export function roundAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

export function putF16(b: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}

function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}
