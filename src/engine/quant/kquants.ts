// The 256-element super-block types Q4_K, Q5_K and Q6_K, laid out as ggml stores them
// (ggml-common.h), little-endian:
//   Q4_K (144 B): f16 d, f16 dmin, u8 scales[12], u8 qs[128]
//   Q5_K (176 B): f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]
//   Q6_K (210 B): u8 ql[128], u8 qh[64], i8 scales[16], f16 d
// Q4_K/Q5_K: 8 sub-blocks of 32, x = d*sc[j] * q - dmin*m[j], with 6-bit sc/m packed in 12 bytes.
//   Each 64-element chunk k uses 32 nibble bytes: byte l holds element 64k+l (low nibble,
//   sub-block 2k) and element 64k+32+l (high nibble, sub-block 2k+1); Q5_K's fifth bits are
//   bit 2k (resp. 2k+1) of qh[l].
// Q6_K: 16 sub-blocks of 16, x = d*sc[j] * (q - 32). Each 128-element chunk n uses ql[64n..],
//   qh[32n..]: for l < 32, elements l, l+32, l+64, l+96 of the chunk are the low nibble of
//   ql[l], the low nibble of ql[l+32], the high nibble of ql[l], the high nibble of ql[l+32],
//   with their 2 high bits at bits 0, 2, 4, 6 of qh[l].
//
// Accumulation order (shared by the one-vector and batched kernels, so batches are
// bit-identical): per sub-block, a chain over its elements in increasing order
// (Q4_K/Q5_K: the two sub-blocks of a chunk side by side; Q6_K: the four sub-blocks touched
// by one half of a chunk side by side), then the sub-block terms are added to the row total
// in sub-block order of that grouping.

import { F16_TO_F32, f32ToF16 } from "./f16.js";
import { signedAbsMax } from "./blocks32.js";

export const QK_K = 256;

// The decoded super-block, element order. (256)
const QB = new Float64Array(QK_K);
// Q4_K/Q5_K: d*sc and dmin*m per sub-block (8); Q6_K: d*sc per sub-block (16).
const KS = new Float64Array(16);
const KM = new Float64Array(8);

// Unpack the 6-bit scales and mins of a Q4_K/Q5_K super-block at `off` into KS/KM.
function unpackScalesK(w: Uint8Array, off: number): void {
  const d = F16_TO_F32[w[off] | (w[off + 1] << 8)];
  const dmin = F16_TO_F32[w[off + 2] | (w[off + 3] << 8)];
  const s = off + 4;
  for (let j = 0; j < 4; j++) {
    KS[j] = d * (w[s + j] & 63);
    KM[j] = dmin * (w[s + j + 4] & 63);
  }
  for (let j = 4; j < 8; j++) {
    KS[j] = d * ((w[s + j + 4] & 15) | ((w[s + j - 4] >> 6) << 4));
    KM[j] = dmin * ((w[s + j + 4] >> 4) | ((w[s + j] >> 6) << 4));
  }
}

// acc[b] += sum over sub-blocks j of KS[j] * sum(QB*x) - KM[j] * sum(x), Q4_K/Q5_K order.
function accumulateAffineK(X: Float32Array, xo: number, xStride: number, batch: number, acc: Float64Array): void {
  for (let b = 0; b < batch; b++, xo += xStride) {
    let a = acc[b];
    for (let k = 0; k < 4; k++) {
      const e = 64 * k, xb = xo + e;
      let s0 = 0, s1 = 0, t0 = 0, t1 = 0;
      for (let l = 0; l < 32; l++) {
        const x0 = X[xb + l], x1 = X[xb + l + 32];
        s0 += QB[e + l] * x0;
        s1 += QB[e + l + 32] * x1;
        t0 += x0;
        t1 += x1;
      }
      a += KS[2 * k] * s0 - KM[2 * k] * t0;
      a += KS[2 * k + 1] * s1 - KM[2 * k + 1] * t1;
    }
    acc[b] = a;
  }
}

// ---- Q4_K ----

export function dequantQ4_K(w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, off += 144, oo += QK_K) {
    unpackScalesK(w, off);
    for (let k = 0; k < 4; k++) {
      const q = off + 16 + 32 * k, o = oo + 64 * k;
      const d1 = KS[2 * k], m1 = KM[2 * k], d2 = KS[2 * k + 1], m2 = KM[2 * k + 1];
      for (let l = 0; l < 32; l++) {
        out[o + l] = d1 * (w[q + l] & 15) - m1;
        out[o + l + 32] = d2 * (w[q + l] >> 4) - m2;
      }
    }
  }
}

export function dotQ4_K(w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number): number {
  let acc = 0;
  for (let i = 0; i < nb; i++, off += 144, xo += QK_K) {
    unpackScalesK(w, off);
    for (let k = 0; k < 4; k++) {
      const q = off + 16 + 32 * k, xb = xo + 64 * k;
      let s0 = 0, s1 = 0, t0 = 0, t1 = 0;
      for (let l = 0; l < 32; l++) {
        const v = w[q + l];
        const x0 = x[xb + l], x1 = x[xb + l + 32];
        s0 += (v & 15) * x0;
        s1 += (v >> 4) * x1;
        t0 += x0;
        t1 += x1;
      }
      acc += KS[2 * k] * s0 - KM[2 * k] * t0;
      acc += KS[2 * k + 1] * s1 - KM[2 * k + 1] * t1;
    }
  }
  return acc;
}

export function dotQ4_KBatch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array): void {
  for (let i = 0; i < nb; i++, off += 144, xo += QK_K) {
    unpackScalesK(w, off);
    for (let k = 0; k < 4; k++) {
      const q = off + 16 + 32 * k, e = 64 * k;
      for (let l = 0; l < 32; l++) {
        QB[e + l] = w[q + l] & 15;
        QB[e + l + 32] = w[q + l] >> 4;
      }
    }
    accumulateAffineK(X, xo, xStride, batch, acc);
  }
}

// ---- Q5_K ----

export function dequantQ5_K(w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, off += 176, oo += QK_K) {
    unpackScalesK(w, off);
    for (let k = 0; k < 4; k++) {
      const q = off + 48 + 32 * k, h = off + 16, o = oo + 64 * k;
      const d1 = KS[2 * k], m1 = KM[2 * k], d2 = KS[2 * k + 1], m2 = KM[2 * k + 1];
      for (let l = 0; l < 32; l++) {
        const hb = w[h + l] >> (2 * k);
        out[o + l] = d1 * ((w[q + l] & 15) | ((hb & 1) << 4)) - m1;
        out[o + l + 32] = d2 * ((w[q + l] >> 4) | ((hb & 2) << 3)) - m2;
      }
    }
  }
}

export function dotQ5_K(w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number): number {
  let acc = 0;
  for (let i = 0; i < nb; i++, off += 176, xo += QK_K) {
    unpackScalesK(w, off);
    for (let k = 0; k < 4; k++) {
      const q = off + 48 + 32 * k, h = off + 16, xb = xo + 64 * k, sh = 2 * k;
      let s0 = 0, s1 = 0, t0 = 0, t1 = 0;
      for (let l = 0; l < 32; l++) {
        const v = w[q + l], hb = w[h + l] >> sh;
        const x0 = x[xb + l], x1 = x[xb + l + 32];
        s0 += ((v & 15) | ((hb & 1) << 4)) * x0;
        s1 += ((v >> 4) | ((hb & 2) << 3)) * x1;
        t0 += x0;
        t1 += x1;
      }
      acc += KS[2 * k] * s0 - KM[2 * k] * t0;
      acc += KS[2 * k + 1] * s1 - KM[2 * k + 1] * t1;
    }
  }
  return acc;
}

export function dotQ5_KBatch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array): void {
  for (let i = 0; i < nb; i++, off += 176, xo += QK_K) {
    unpackScalesK(w, off);
    for (let k = 0; k < 4; k++) {
      const q = off + 48 + 32 * k, h = off + 16, e = 64 * k, sh = 2 * k;
      for (let l = 0; l < 32; l++) {
        const v = w[q + l], hb = w[h + l] >> sh;
        QB[e + l] = (v & 15) | ((hb & 1) << 4);
        QB[e + l + 32] = (v >> 4) | ((hb & 2) << 3);
      }
    }
    accumulateAffineK(X, xo, xStride, batch, acc);
  }
}

// ---- Q6_K ----

// d*sc per sub-block of 16 into KS.
function unpackScalesQ6(w: Uint8Array, off: number): void {
  const d = F16_TO_F32[w[off + 208] | (w[off + 209] << 8)];
  for (let j = 0; j < 16; j++) KS[j] = d * ((w[off + 192 + j] << 24) >> 24);
}

export function dequantQ6_K(w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number): void {
  for (let i = 0; i < nb; i++, off += 210, oo += QK_K) {
    unpackScalesQ6(w, off);
    for (let n = 0; n < 2; n++) {
      const ql = off + 64 * n, qh = off + 128 + 32 * n, o = oo + 128 * n;
      for (let l = 0; l < 32; l++) {
        const a = w[ql + l], c = w[ql + l + 32], h = w[qh + l], sb = 8 * n + (l >> 4);
        out[o + l] = KS[sb] * (((a & 15) | ((h & 3) << 4)) - 32);
        out[o + l + 32] = KS[sb + 2] * (((c & 15) | ((h & 12) << 2)) - 32);
        out[o + l + 64] = KS[sb + 4] * (((a >> 4) | (h & 48)) - 32);
        out[o + l + 96] = KS[sb + 6] * (((c >> 4) | ((h & 192) >> 2)) - 32);
      }
    }
  }
}

export function dotQ6_K(w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number): number {
  let acc = 0;
  for (let i = 0; i < nb; i++, off += 210, xo += QK_K) {
    unpackScalesQ6(w, off);
    for (let n = 0; n < 2; n++) {
      const ql = off + 64 * n, qh = off + 128 + 32 * n, xb = xo + 128 * n;
      for (let half = 0; half < 2; half++) {
        let s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        for (let l = 16 * half; l < 16 * half + 16; l++) {
          const a = w[ql + l], c = w[ql + l + 32], h = w[qh + l];
          s1 += (((a & 15) | ((h & 3) << 4)) - 32) * x[xb + l];
          s2 += (((c & 15) | ((h & 12) << 2)) - 32) * x[xb + l + 32];
          s3 += (((a >> 4) | (h & 48)) - 32) * x[xb + l + 64];
          s4 += (((c >> 4) | ((h & 192) >> 2)) - 32) * x[xb + l + 96];
        }
        const sb = 8 * n + half;
        acc += KS[sb] * s1;
        acc += KS[sb + 2] * s2;
        acc += KS[sb + 4] * s3;
        acc += KS[sb + 6] * s4;
      }
    }
  }
  return acc;
}

export function dotQ6_KBatch(w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array): void {
  for (let i = 0; i < nb; i++, off += 210, xo += QK_K) {
    unpackScalesQ6(w, off);
    for (let n = 0; n < 2; n++) {
      const ql = off + 64 * n, qh = off + 128 + 32 * n, e = 128 * n;
      for (let l = 0; l < 32; l++) {
        const a = w[ql + l], c = w[ql + l + 32], h = w[qh + l];
        QB[e + l] = ((a & 15) | ((h & 3) << 4)) - 32;
        QB[e + l + 32] = ((c & 15) | ((h & 12) << 2)) - 32;
        QB[e + l + 64] = ((a >> 4) | (h & 48)) - 32;
        QB[e + l + 96] = ((c >> 4) | ((h & 192) >> 2)) - 32;
      }
    }
    for (let b = 0, xr = xo; b < batch; b++, xr += xStride) {
      let a = acc[b];
      for (let n = 0; n < 2; n++) {
        const e = 128 * n, xb = xr + e;
        for (let half = 0; half < 2; half++) {
          let s1 = 0, s2 = 0, s3 = 0, s4 = 0;
          for (let l = 16 * half; l < 16 * half + 16; l++) {
            s1 += QB[e + l] * X[xb + l];
            s2 += QB[e + l + 32] * X[xb + l + 32];
            s3 += QB[e + l + 64] * X[xb + l + 64];
            s4 += QB[e + l + 96] * X[xb + l + 96];
          }
          const sb = 8 * n + half;
          a += KS[sb] * s1;
          a += KS[sb + 2] * s2;
          a += KS[sb + 4] * s3;
          a += KS[sb + 6] * s4;
        }
      }
      acc[b] = a;
    }
  }
}

// ---- quantizers (simple and correct, not ggml's search; used to build test fixtures) ----

// The integer levels of one super-block being quantized. (256)
const L = new Uint8Array(QK_K);
// Per sub-block float scale and min before 6-bit quantization. (8)
const SUB_SCALE = new Float64Array(8);
const SUB_MIN = new Float64Array(8);

// Q4_K (nmax 15) and Q5_K (nmax 31): per sub-block of 32, levels 0..nmax span [min(0, lo), hi];
// the sub-block scales and mins are then stored as 6-bit multiples of d and dmin. Scales round
// up, so the top of a sub-block is never clipped by more than f16 rounding.
function quantAffineK(x: Float32Array, xo: number, out: Uint8Array, oo: number, nmax: number): void {
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let lo = 0, hi = -Infinity;
    for (let l = 0; l < 32; l++) {
      const v = x[xo + 32 * j + l];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    SUB_SCALE[j] = Math.max(0, hi - lo) / nmax;
    SUB_MIN[j] = -lo;
    maxScale = Math.max(maxScale, SUB_SCALE[j]);
    maxMin = Math.max(maxMin, SUB_MIN[j]);
  }
  const hd = f32ToF16(maxScale / 63), hdmin = f32ToF16(maxMin / 63);
  const d = F16_TO_F32[hd], dmin = F16_TO_F32[hdmin];
  out[oo] = hd & 0xff; out[oo + 1] = hd >> 8;
  out[oo + 2] = hdmin & 0xff; out[oo + 3] = hdmin >> 8;
  const s = oo + 4;
  for (let j = 0; j < 12; j++) out[s + j] = 0;
  for (let j = 0; j < 8; j++) {
    const ls = d > 0 ? Math.min(63, Math.ceil(SUB_SCALE[j] / d)) : 0;
    const lm = dmin > 0 ? Math.min(63, Math.round(SUB_MIN[j] / dmin)) : 0;
    if (j < 4) {
      out[s + j] = ls;
      out[s + j + 4] = lm;
    } else {
      out[s + j + 4] = (ls & 15) | ((lm & 15) << 4);
      out[s + j - 4] |= (ls >> 4) << 6;
      out[s + j] |= (lm >> 4) << 6;
    }
    const dq = d * ls, dm = dmin * lm;
    for (let l = 0; l < 32; l++) {
      const e = 32 * j + l;
      L[e] = dq > 0 ? Math.max(0, Math.min(nmax, Math.round((x[xo + e] + dm) / dq))) : 0;
    }
  }
}

export function quantQ4_K(x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number): void {
  for (let i = 0; i < nb; i++, xo += QK_K, oo += 144) {
    quantAffineK(x, xo, out, oo, 15);
    for (let k = 0; k < 4; k++) {
      for (let l = 0; l < 32; l++) out[oo + 16 + 32 * k + l] = L[64 * k + l] | (L[64 * k + l + 32] << 4);
    }
  }
}

export function quantQ5_K(x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number): void {
  for (let i = 0; i < nb; i++, xo += QK_K, oo += 176) {
    quantAffineK(x, xo, out, oo, 31);
    for (let l = 0; l < 32; l++) out[oo + 16 + l] = 0;
    for (let k = 0; k < 4; k++) {
      for (let l = 0; l < 32; l++) {
        const a = L[64 * k + l], b = L[64 * k + l + 32];
        out[oo + 48 + 32 * k + l] = (a & 15) | ((b & 15) << 4);
        out[oo + 16 + l] |= ((a >> 4) << (2 * k)) | ((b >> 4) << (2 * k + 1));
      }
    }
  }
}

// Q6_K: per sub-block of 16 the value of largest magnitude maps to -32; the sub-block scales are
// stored as i8 multiples of d, the largest one as -128 (as in ggml).
export function quantQ6_K(x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number): void {
  const scales = KS; // reused as plain scratch here: (16)
  for (let i = 0; i < nb; i++, xo += QK_K, oo += 210) {
    let maxScale = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = signedAbsMax(x, xo + 16 * j, 16) / -32;
      if (Math.abs(scales[j]) > Math.abs(maxScale)) maxScale = scales[j];
    }
    out.fill(0, oo, oo + 210);
    if (Math.abs(maxScale) < 1e-15) continue; // all (near) zero: d = 0
    const iscale = -128 / maxScale;
    const hd = f32ToF16(1 / iscale);
    const d = F16_TO_F32[hd];
    out[oo + 208] = hd & 0xff;
    out[oo + 209] = hd >> 8;
    for (let j = 0; j < 16; j++) {
      const sc = Math.max(-128, Math.min(127, Math.round(iscale * scales[j])));
      out[oo + 192 + j] = sc & 0xff;
      const ds = d * sc;
      for (let l = 0; l < 16; l++) {
        const e = 16 * j + l;
        L[e] = ds !== 0 ? Math.max(-32, Math.min(31, Math.round(x[xo + e] / ds))) + 32 : 32;
      }
    }
    for (let n = 0; n < 2; n++) {
      const e = 128 * n, ql = oo + 64 * n, qh = oo + 128 + 32 * n;
      for (let l = 0; l < 32; l++) {
        const q1 = L[e + l], q2 = L[e + l + 32], q3 = L[e + l + 64], q4 = L[e + l + 96];
        out[ql + l] = (q1 & 15) | ((q3 & 15) << 4);
        out[ql + l + 32] = (q2 & 15) | ((q4 & 15) << 4);
        out[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
}
