// Weights are copied once, at load, into the chunk records the WASM kernels read (matmul.ts):
// every row becomes ceil(cols / 32) records of 32 elements, whatever the ggml block size.
//   f32  (128 B): f32[32]                      F32 (a short last chunk is zero-padded)
//   f16  ( 64 B): f16[32]                      F16
//   bf16 ( 64 B): bf16[32]                     BF16
//   int8 ( 40 B): f32 s0, f32 s1, i8 q[32]     w = s0*q (elements 0..15), s1*q (16..31): Q8_0, Q6_K
//   nib4 ( 24 B): f32 d, f32 m, u8 qs[16]      w = d*q + m, q 4 bits: Q4_0, Q4_1, Q4_K
//   nib5 ( 28 B): f32 d, f32 m, u32 qh, qs[16] w = d*q + m, q 5 bits: Q5_0, Q5_1, Q5_K
// Every decoded weight is exactly the f32 that dequantizeRow gives (the scales are exact
// products of f16 and small integers, and d*q + m rounds once, like the reference).

import { GgmlType } from "../../gguf/ggmlTypes.js";
import { F16_TO_F32 } from "../quant/f16.js";
import type { KernelName } from "./matmul.js";

export interface Layout {
  readonly kernel: KernelName;
  readonly rec: number; // bytes per chunk record
}

const LAYOUTS = new Map<number, Layout>([
  [GgmlType.F32, { kernel: "f32", rec: 128 }],
  [GgmlType.F16, { kernel: "f16", rec: 64 }],
  [GgmlType.BF16, { kernel: "bf16", rec: 64 }],
  [GgmlType.Q8_0, { kernel: "int8", rec: 40 }],
  [GgmlType.Q6_K, { kernel: "int8", rec: 40 }],
  [GgmlType.Q4_0, { kernel: "nib4", rec: 24 }],
  [GgmlType.Q4_1, { kernel: "nib4", rec: 24 }],
  [GgmlType.Q4_K, { kernel: "nib4", rec: 24 }],
  [GgmlType.Q5_0, { kernel: "nib5", rec: 28 }],
  [GgmlType.Q5_1, { kernel: "nib5", rec: 28 }],
  [GgmlType.Q5_K, { kernel: "nib5", rec: 28 }],
]);

export function layoutOf(type: number): Layout | undefined {
  return LAYOUTS.get(type);
}

const half = (w: Uint8Array, o: number): number => F16_TO_F32[w[o] | (w[o + 1] << 8)];

/**
 * Write the records of one row of `cols` elements (ggml bytes at src[so..]) to dst[do_..].
 * `view` is a DataView over dst's buffer.
 */
export function repackRow(type: number, src: Uint8Array, so: number, cols: number, dst: Uint8Array, view: DataView, dOff: number): void {
  const f32 = (o: number, v: number): void => view.setFloat32(dst.byteOffset + o, v, true);
  switch (type) {
    case GgmlType.F32:
    case GgmlType.F16:
    case GgmlType.BF16: {
      const size = type === GgmlType.F32 ? 4 : 2;
      const n = cols * size, padded = Math.ceil(cols / 32) * 32 * size;
      dst.set(src.subarray(so, so + n), dOff);
      dst.fill(0, dOff + n, dOff + padded);
      return;
    }
    case GgmlType.Q8_0:
      for (let c = 0; c < cols / 32; c++, so += 34, dOff += 40) {
        const d = half(src, so);
        f32(dOff, d);
        f32(dOff + 4, d);
        dst.set(src.subarray(so + 2, so + 34), dOff + 8);
      }
      return;
    case GgmlType.Q4_0:
    case GgmlType.Q4_1:
    case GgmlType.Q5_0:
    case GgmlType.Q5_1: {
      // ggml's own layout is already a record: scale, [offset], [qh], 16 nibble bytes.
      const hasMin = type === GgmlType.Q4_1 || type === GgmlType.Q5_1, hasQh = type === GgmlType.Q5_0 || type === GgmlType.Q5_1;
      const bytes = 2 + (hasMin ? 2 : 0) + (hasQh ? 4 : 0) + 16, rec = hasQh ? 28 : 24;
      for (let c = 0; c < cols / 32; c++, so += bytes, dOff += rec) {
        const d = half(src, so);
        f32(dOff, d);
        f32(dOff + 4, hasMin ? half(src, so + 2) : (hasQh ? -16 : -8) * d);
        dst.set(src.subarray(so + bytes - 16 - (hasQh ? 4 : 0), so + bytes), dOff + 8);
      }
      return;
    }
    case GgmlType.Q4_K:
    case GgmlType.Q5_K: {
      const five = type === GgmlType.Q5_K, bytes = five ? 176 : 144, qsOff = five ? 48 : 16;
      for (let i = 0; i < cols / 256; i++, so += bytes) {
        const d = half(src, so), dmin = half(src, so + 2), s = so + 4;
        for (let c = 0; c < 8; c++, dOff += five ? 28 : 24) {
          // The 6-bit scale and min of sub-block c (ggml get_scale_min_k4).
          const sc = c < 4 ? src[s + c] & 63 : (src[s + c + 4] & 15) | ((src[s + c - 4] >> 6) << 4);
          const mn = c < 4 ? src[s + c + 4] & 63 : (src[s + c + 4] >> 4) | ((src[s + c] >> 6) << 4);
          f32(dOff, d * sc);
          f32(dOff + 4, -(dmin * mn));
          // Sub-block c is the low (even c) or high (odd c) nibbles of qs[32 * (c >> 1) ..][0..32).
          const q = so + qsOff + 32 * (c >> 1), shift = (c & 1) * 4;
          let qh = 0;
          for (let j = 0; j < 16; j++) {
            const a = (src[q + j] >> shift) & 15, b = (src[q + j + 16] >> shift) & 15;
            dst[dOff + (five ? 12 : 8) + j] = a | (b << 4);
          }
          if (five) {
            for (let j = 0; j < 32; j++) qh |= ((src[so + 16 + j] >> c) & 1) << j;
            view.setUint32(dst.byteOffset + dOff + 8, qh >>> 0, true);
          }
        }
      }
      return;
    }
    case GgmlType.Q6_K:
      for (let i = 0; i < cols / 256; i++, so += 210) {
        const d = half(src, so + 208);
        for (let c = 0; c < 8; c++, dOff += 40) {
          // Chunk c: quarter qd of half n; its element l is a nibble of ql[64n + (qd & 1) * 32 + l]
          // (low for qd < 2) with 2 high bits at bit 2*qd of qh[32n + l].
          const n = c >> 2, qd = c & 3;
          const sb = 8 * n + 2 * qd;
          f32(dOff, d * ((src[so + 192 + sb] << 24) >> 24));
          f32(dOff + 4, d * ((src[so + 192 + sb + 1] << 24) >> 24));
          const ql = so + 64 * n + (qd & 1) * 32, qh = so + 128 + 32 * n, shift = qd < 2 ? 0 : 4;
          for (let l = 0; l < 32; l++) {
            const q = ((src[ql + l] >> shift) & 15) | (((src[qh + l] >> (2 * qd)) & 3) << 4);
            dst[dOff + 8 + l] = (q - 32) & 0xff;
          }
        }
      }
      return;
  }
  throw new Error(`no WASM layout for ggml type ${type}`);
}
