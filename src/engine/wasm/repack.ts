// Weights are copied once, at load, from ggml blocks into the panel records the WASM kernels
// read (the layouts are described in decoders.ts). Rows are grouped by 4 (the last panel padded
// with zero rows) and cut into 32-element chunks (the last chunk zero-padded): zeros add nothing.

import { GgmlType } from "../../gguf/ggmlTypes.js";
import { F16_TO_F32 } from "../quant/f16.js";
import { DECODERS, type KernelName } from "./decoders.js";

export interface Layout {
  readonly kernel: KernelName;
  readonly rec: number; // bytes per row per chunk
  readonly header: number; // bytes per row per super-block
  readonly chunks: number; // chunks per super-block
}

const F32_LAYOUT: Layout = { kernel: "f32", rec: 128, header: 0, chunks: 1 };
const layout = (kernel: keyof typeof DECODERS): Layout => ({ kernel, ...DECODERS[kernel] });

const LAYOUTS = new Map<number, Layout>([
  [GgmlType.F32, F32_LAYOUT],
  [GgmlType.F16, layout("f16")],
  [GgmlType.BF16, layout("bf16")],
  [GgmlType.Q8_0, layout("q8_0")],
  [GgmlType.Q4_0, layout("q4_0")],
  [GgmlType.Q4_1, layout("q4_1")],
  [GgmlType.Q5_0, layout("q5_0")],
  [GgmlType.Q5_1, layout("q5_1")],
  [GgmlType.Q4_K, layout("q4_K")],
  [GgmlType.Q5_K, layout("q5_K")],
  [GgmlType.Q6_K, layout("q6_K")],
]);

export function layoutOf(type: number): Layout | undefined {
  return LAYOUTS.get(type);
}

/** Super-blocks per row for `cols` elements. */
export function superBlocks(l: Layout, cols: number): number {
  return Math.ceil(cols / (32 * l.chunks));
}

/** Bytes of one panel (4 rows) of nsb super-blocks. */
export function panelBytes(l: Layout, nsb: number): number {
  return nsb * 4 * (l.header + l.chunks * l.rec);
}

const half = (w: Uint8Array, o: number): number => F16_TO_F32[w[o] | (w[o + 1] << 8)];

/**
 * Write the panels of a (rows, cols) ggml matrix (rows of rowBytes at src) to mem[at..]
 * (16-aligned, zeroed beforehand).
 */
export function repackMatrix(type: number, src: Uint8Array, rows: number, cols: number, rowBytes: number, mem: ArrayBuffer | SharedArrayBuffer, at: number): void {
  const l = layoutOf(type);
  if (!l) throw new Error(`no WASM layout for ggml type ${type}`);
  const nsb = superBlocks(l, cols), pb = panelBytes(l, nsb), sbBytes = 4 * (l.header + l.chunks * l.rec);
  const u8 = new Uint8Array(mem);
  const view = new DataView(mem);
  if (type === GgmlType.F32) {
    const out = new Float32Array(mem);
    const row = new Float32Array(cols); // (cols) one row, aligned
    const rowU8 = new Uint8Array(row.buffer);
    for (let r = 0; r < rows; r++) {
      rowU8.set(src.subarray(r * rowBytes, r * rowBytes + 4 * cols));
      const base = (at + (r >> 2) * pb) / 4 + 4 * (r & 3);
      for (let j = 0; j < cols; j++) out[base + 16 * (j >> 2) + (j & 3)] = row[j];
    }
    return;
  }
  for (let r = 0; r < rows; r++) {
    const so = r * rowBytes, lane = r & 3, panel = at + (r >> 2) * pb;
    // Byte offset of the header of super-block s, and of the record of chunk c (of the row).
    const header = (s: number): number => panel + s * sbBytes + lane * l.header;
    const record = (c: number): number => panel + Math.floor(c / l.chunks) * sbBytes + 4 * l.header + (4 * (c % l.chunks) + lane) * l.rec;
    const f32 = (o: number, v: number): void => view.setFloat32(o, v, true);
    switch (type) {
      case GgmlType.F16:
      case GgmlType.BF16:
        for (let c = 0; c * 32 < cols; c++) u8.set(src.subarray(so + 64 * c, so + Math.min(64 * (c + 1), 2 * cols)), record(c));
        break;
      case GgmlType.Q8_0:
        for (let c = 0; c < cols / 32; c++) {
          const b = so + 34 * c, o = record(c);
          f32(o, half(src, b));
          u8.set(src.subarray(b + 2, b + 34), o + 4);
        }
        break;
      case GgmlType.Q4_0:
      case GgmlType.Q4_1:
      case GgmlType.Q5_0:
      case GgmlType.Q5_1: {
        // ggml's block is already this record, with f16 scales: d, [m], [qh], qs[16].
        const hasMin = type === GgmlType.Q4_1 || type === GgmlType.Q5_1, hasQh = type === GgmlType.Q5_0 || type === GgmlType.Q5_1;
        const bytes = 2 + (hasMin ? 2 : 0) + (hasQh ? 4 : 0) + 16;
        for (let c = 0; c < cols / 32; c++) {
          const b = so + bytes * c, o = record(c);
          f32(o, half(src, b));
          if (hasMin) f32(o + 4, half(src, b + 2));
          u8.set(src.subarray(b + (hasMin ? 4 : 2), b + bytes), o + (hasMin ? 8 : 4));
        }
        break;
      }
      case GgmlType.Q4_K:
      case GgmlType.Q5_K: {
        const five = type === GgmlType.Q5_K, bytes = five ? 176 : 144, qsOff = five ? 48 : 16;
        for (let s = 0; s < cols / 256; s++) {
          const b = so + bytes * s, sc = b + 4;
          f32(header(s), half(src, b));
          f32(header(s) + 4, half(src, b + 2));
          for (let k = 0; k < 8; k++) {
            const o = record(8 * s + k);
            // The 6-bit scale and min of sub-block k (ggml get_scale_min_k4).
            u8[o] = k < 4 ? src[sc + k] & 63 : (src[sc + k + 4] & 15) | ((src[sc + k - 4] >> 6) << 4);
            u8[o + 1] = k < 4 ? src[sc + k + 4] & 63 : (src[sc + k + 4] >> 4) | ((src[sc + k] >> 6) << 4);
            // Sub-block k is the low (even k) or high (odd k) nibbles of qs[32 * (k >> 1) ..][0..32).
            const q = b + qsOff + 32 * (k >> 1), shift = (k & 1) * 4, qs = o + (five ? 6 : 2);
            for (let j = 0; j < 16; j++) u8[qs + j] = ((src[q + j] >> shift) & 15) | (((src[q + j + 16] >> shift) & 15) << 4);
            if (five) {
              let qh = 0;
              for (let j = 0; j < 32; j++) qh |= ((src[b + 16 + j] >> k) & 1) << j;
              view.setUint32(o + 2, qh >>> 0, true);
            }
          }
        }
        break;
      }
      case GgmlType.Q6_K:
        for (let s = 0; s < cols / 256; s++) {
          const b = so + 210 * s;
          f32(header(s), half(src, b + 208));
          for (let k = 0; k < 8; k++) {
            // Chunk k: quarter qd of half n; its element j is a nibble of ql[64n + (qd & 1) * 32 + j]
            // (low for qd < 2) with 2 high bits at bit 2*qd of qh[32n + j]; scales 8n + 2qd, +1.
            const n = k >> 2, qd = k & 3, o = record(8 * s + k);
            u8[o] = src[b + 192 + 8 * n + 2 * qd];
            u8[o + 1] = src[b + 192 + 8 * n + 2 * qd + 1];
            const ql = b + 64 * n + (qd & 1) * 32, qh = b + 128 + 32 * n, shift = qd < 2 ? 0 : 4;
            for (let j = 0; j < 32; j++) {
              const lowBits = (src[ql + j] >> shift) & 15, highBits = (src[qh + j] >> (2 * qd)) & 3;
              u8[o + 2 + (j & 15)] |= lowBits << (j < 16 ? 0 : 4);
              u8[o + 18 + (j & 7)] |= highBits << (2 * (j >> 3));
            }
          }
        }
        break;
      default:
        throw new Error(`no WASM layout for ggml type ${type}`);
    }
  }
}
