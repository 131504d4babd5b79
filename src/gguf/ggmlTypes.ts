// ggml tensor types as stored in GGUF files: id, name, and the block layout
// (elements per block, bytes per block) needed to size tensor data.
// Facts from ggml.h / ggml.c type_traits.

export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: string;
  readonly blockSize: number; // elements per block
  readonly typeSize: number; // bytes per block
}

const TYPES: readonly GgmlTypeInfo[] = [
  { id: 0, name: "F32", blockSize: 1, typeSize: 4 },
  { id: 1, name: "F16", blockSize: 1, typeSize: 2 },
  { id: 2, name: "Q4_0", blockSize: 32, typeSize: 18 },
  { id: 3, name: "Q4_1", blockSize: 32, typeSize: 20 },
  { id: 6, name: "Q5_0", blockSize: 32, typeSize: 22 },
  { id: 7, name: "Q5_1", blockSize: 32, typeSize: 24 },
  { id: 8, name: "Q8_0", blockSize: 32, typeSize: 34 },
  { id: 9, name: "Q8_1", blockSize: 32, typeSize: 36 },
  { id: 10, name: "Q2_K", blockSize: 256, typeSize: 84 },
  { id: 11, name: "Q3_K", blockSize: 256, typeSize: 110 },
  { id: 12, name: "Q4_K", blockSize: 256, typeSize: 144 },
  { id: 13, name: "Q5_K", blockSize: 256, typeSize: 176 },
  { id: 14, name: "Q6_K", blockSize: 256, typeSize: 210 },
  { id: 15, name: "Q8_K", blockSize: 256, typeSize: 292 },
  { id: 24, name: "I8", blockSize: 1, typeSize: 1 },
  { id: 25, name: "I16", blockSize: 1, typeSize: 2 },
  { id: 26, name: "I32", blockSize: 1, typeSize: 4 },
  { id: 27, name: "I64", blockSize: 1, typeSize: 8 },
  { id: 28, name: "F64", blockSize: 1, typeSize: 8 },
  { id: 30, name: "BF16", blockSize: 1, typeSize: 2 },
];

const BY_ID = new Map(TYPES.map((t) => [t.id, t]));

export const GgmlType = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, BF16: 30,
} as const;

/** The layout of a ggml type, or undefined for a type this library does not know. */
export function ggmlTypeInfo(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}
