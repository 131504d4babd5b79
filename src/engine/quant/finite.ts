// Non-finite values in stored weights. A NaN or an infinity in a weight (or in a block's scale)
// makes every activation it touches NaN, so the loader refuses such tensors up front, naming the
// element, instead of letting a pass produce garbage. Only the float fields are read: f32/f16/bf16
// values, and the f16 scales of the quantized blocks (their levels are small integers).

import { GgmlType } from "../../gguf/ggmlTypes.js";

// Per quantized type: block bytes, elements per block, byte offsets of its f16 scale fields.
const SCALES = new Map<number, { bytes: number; elements: number; at: number[] }>([
  [GgmlType.Q4_0, { bytes: 18, elements: 32, at: [0] }],
  [GgmlType.Q4_1, { bytes: 20, elements: 32, at: [0, 2] }],
  [GgmlType.Q5_0, { bytes: 22, elements: 32, at: [0] }],
  [GgmlType.Q5_1, { bytes: 24, elements: 32, at: [0, 2] }],
  [GgmlType.Q8_0, { bytes: 34, elements: 32, at: [0] }],
  [GgmlType.Q4_K, { bytes: 144, elements: 256, at: [0, 2] }],
  [GgmlType.Q5_K, { bytes: 176, elements: 256, at: [0, 2] }],
  [GgmlType.Q6_K, { bytes: 210, elements: 256, at: [208] }],
]);

/** The index of the first element of n (of ggml type `type`, at data) whose value is NaN or infinite (for blocks: the block's first element), or -1. */
export function firstNonFinite(type: number, data: Uint8Array, n: number): number {
  if (type === GgmlType.F32) {
    const aligned = data.byteOffset % 4 === 0 ? data : data.slice();
    const bits = new Uint32Array(aligned.buffer, aligned.byteOffset, n);
    for (let i = 0; i < n; i++) if ((bits[i] & 0x7f800000) === 0x7f800000) return i;
    return -1;
  }
  if (type === GgmlType.F16 || type === GgmlType.BF16) {
    const mask = type === GgmlType.F16 ? 0x7c00 : 0x7f80;
    for (let i = 0; i < n; i++) if (((data[2 * i] | (data[2 * i + 1] << 8)) & mask) === mask) return i;
    return -1;
  }
  const s = SCALES.get(type);
  if (!s) return -1;
  for (let b = 0, o = 0; b * s.elements < n; b++, o += s.bytes) {
    for (const at of s.at) if ((data[o + at + 1] & 0x7c) === 0x7c) return b * s.elements;
  }
  return -1;
}
