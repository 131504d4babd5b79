// The public kernels over a weight matrix stored row by row in a ggml type:
// dequantizeRow / quantizeRow, dotRow, matVec and matMul.
// A matrix of `rows` x `cols` is `rows` consecutive rows of rowByteLength(type, cols) bytes
// (ggml order: dims = [cols, rows]).
//
// Batch invariance: matMul computes every (batch item, row) result with exactly the same
// floating-point operations in the same order as dotRow / matVec (see the accumulation order
// notes in floats.ts, blocks32.ts, kquants.ts), so verifying k tokens at once gives the same
// bits as k one-token passes. matMul decodes each weight block once and applies it to the
// whole batch, which is what makes a k-token pass cheaper than k one-token passes.
//
// These JS kernels are the reference and the fallback. The engine's matrices (matrix.ts) run
// on the WebAssembly SIMD kernels in wasm/ when Node has them: same weights, a different
// (f32x4-lane) accumulation order documented in ../wasm/matmul.ts, equally batch-invariant.

import { SpecdecError } from "../../errors.js";
import { GgmlType, ggmlTypeInfo } from "../../gguf/ggmlTypes.js";
import * as b32 from "./blocks32.js";
import * as fl from "./floats.js";
import { f32ToBf16, f32ToF16 } from "./f16.js";
import * as kq from "./kquants.js";

type DotFn = (w: Uint8Array, off: number, x: Float32Array, xo: number, nb: number) => number;
type DotBatchFn = (w: Uint8Array, off: number, X: Float32Array, xo: number, xStride: number, batch: number, nb: number, acc: Float64Array) => void;
type DequantFn = (w: Uint8Array, off: number, out: Float32Array, oo: number, nb: number) => void;
type QuantFn = (x: Float32Array, xo: number, nb: number, out: Uint8Array, oo: number) => void;

interface Kernel {
  readonly name: string;
  readonly blockSize: number; // elements per block
  readonly typeSize: number; // bytes per block
  readonly dot: DotFn;
  readonly dotBatch: DotBatchFn;
  readonly dequant: DequantFn;
  readonly quant: QuantFn;
}

function quantF32(x: Float32Array, xo: number, n: number, out: Uint8Array, oo: number): void {
  new Float32Array(out.buffer, out.byteOffset + oo, n).set(x.subarray(xo, xo + n));
}
function quantHalf(conv: (v: number) => number): QuantFn {
  return (x, xo, n, out, oo) => {
    for (let i = 0; i < n; i++, oo += 2) {
      const h = conv(x[xo + i]);
      out[oo] = h & 0xff;
      out[oo + 1] = h >> 8;
    }
  };
}

const KERNELS = new Map<number, Kernel>([
  [GgmlType.F32, { name: "F32", blockSize: 1, typeSize: 4, dot: fl.dotF32, dotBatch: fl.dotF32Batch, dequant: fl.dequantF32, quant: quantF32 }],
  [GgmlType.F16, { name: "F16", blockSize: 1, typeSize: 2, dot: fl.dotF16, dotBatch: fl.dotF16Batch, dequant: fl.dequantF16, quant: quantHalf(f32ToF16) }],
  [GgmlType.BF16, { name: "BF16", blockSize: 1, typeSize: 2, dot: fl.dotBF16, dotBatch: fl.dotBF16Batch, dequant: fl.dequantBF16, quant: quantHalf(f32ToBf16) }],
  [GgmlType.Q4_0, { name: "Q4_0", blockSize: 32, typeSize: 18, dot: b32.dotQ4_0, dotBatch: b32.dotQ4_0Batch, dequant: b32.dequantQ4_0, quant: b32.quantQ4_0 }],
  [GgmlType.Q4_1, { name: "Q4_1", blockSize: 32, typeSize: 20, dot: b32.dotQ4_1, dotBatch: b32.dotQ4_1Batch, dequant: b32.dequantQ4_1, quant: b32.quantQ4_1 }],
  [GgmlType.Q5_0, { name: "Q5_0", blockSize: 32, typeSize: 22, dot: b32.dotQ5_0, dotBatch: b32.dotQ5_0Batch, dequant: b32.dequantQ5_0, quant: b32.quantQ5_0 }],
  [GgmlType.Q5_1, { name: "Q5_1", blockSize: 32, typeSize: 24, dot: b32.dotQ5_1, dotBatch: b32.dotQ5_1Batch, dequant: b32.dequantQ5_1, quant: b32.quantQ5_1 }],
  [GgmlType.Q8_0, { name: "Q8_0", blockSize: 32, typeSize: 34, dot: b32.dotQ8_0, dotBatch: b32.dotQ8_0Batch, dequant: b32.dequantQ8_0, quant: b32.quantQ8_0 }],
  [GgmlType.Q4_K, { name: "Q4_K", blockSize: 256, typeSize: 144, dot: kq.dotQ4_K, dotBatch: kq.dotQ4_KBatch, dequant: kq.dequantQ4_K, quant: kq.quantQ4_K }],
  [GgmlType.Q5_K, { name: "Q5_K", blockSize: 256, typeSize: 176, dot: kq.dotQ5_K, dotBatch: kq.dotQ5_KBatch, dequant: kq.dequantQ5_K, quant: kq.quantQ5_K }],
  [GgmlType.Q6_K, { name: "Q6_K", blockSize: 256, typeSize: 210, dot: kq.dotQ6_K, dotBatch: kq.dotQ6_KBatch, dequant: kq.dequantQ6_K, quant: kq.quantQ6_K }],
]);

/** The ggml type ids these kernels handle. */
export const SUPPORTED_TYPES: readonly number[] = [...KERNELS.keys()];

export function isSupportedType(type: number): boolean {
  return KERNELS.has(type);
}

function kernel(type: number, n: number): Kernel {
  const k = KERNELS.get(type);
  if (k === undefined) throw new SpecdecError(`tensor type ${ggmlTypeInfo(type)?.name ?? type} is not supported by the built-in engine (supported: ${[...KERNELS.values()].map((x) => x.name).join(", ")})`);
  if (!Number.isInteger(n) || n < 0 || n % k.blockSize !== 0) throw new SpecdecError(`a ${k.name} row must have a multiple of ${k.blockSize} elements, got ${n}`);
  return k;
}

/** Bytes taken by a row of n elements of this type. */
export function rowByteLength(type: number, n: number): number {
  const k = kernel(type, n);
  return (n / k.blockSize) * k.typeSize;
}

function checkBytes(k: Kernel, w: Uint8Array, off: number, bytes: number, what: string): void {
  if (!Number.isInteger(off) || off < 0 || off + bytes > w.length)
    throw new SpecdecError(`${k.name} ${what}: needs bytes ${off}..${off + bytes} but the buffer has ${w.length}`);
}

function checkFloats(a: Float32Array, off: number, n: number, what: string): void {
  if (!Number.isInteger(off) || off < 0 || off + n > a.length) throw new SpecdecError(`${what}: needs elements ${off}..${off + n} but the array has ${a.length}`);
}

/** out[outOffset + i] = element i of the row of n elements at src[srcByteOffset..]. */
export function dequantizeRow(type: number, src: Uint8Array, srcByteOffset: number, out: Float32Array, n: number, outOffset = 0): void {
  const k = kernel(type, n);
  checkBytes(k, src, srcByteOffset, (n / k.blockSize) * k.typeSize, "dequantizeRow");
  checkFloats(out, outOffset, n, "dequantizeRow output");
  k.dequant(src, srcByteOffset, out, outOffset, n / k.blockSize);
}

/** The row src[srcOffset .. srcOffset + n) in this type (reference quantization), as new bytes. */
export function quantizeRow(type: number, src: Float32Array, n: number, srcOffset = 0): Uint8Array {
  const k = kernel(type, n);
  checkFloats(src, srcOffset, n, "quantizeRow input");
  const out = new Uint8Array((n / k.blockSize) * k.typeSize);
  k.quant(src, srcOffset, n / k.blockSize, out, 0);
  return out;
}

/** sum_i w_i * x[xOffset + i] over the row of n elements at w[rowByteOffset..], on the quantized blocks. */
export function dotRow(type: number, w: Uint8Array, rowByteOffset: number, x: Float32Array, xOffset: number, n: number): number {
  const k = kernel(type, n);
  checkBytes(k, w, rowByteOffset, (n / k.blockSize) * k.typeSize, "dotRow weights");
  checkFloats(x, xOffset, n, "dotRow x");
  return k.dot(w, rowByteOffset, x, xOffset, n / k.blockSize);
}

/**
 * out[r] = dot(row r of W, x) for a (rows, cols) matrix W stored from w[wByteOffset].
 * x: (cols), out: (rows).
 */
export function matVec(type: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, out: Float32Array, wByteOffset = 0): void {
  const k = kernel(type, cols);
  const rb = (cols / k.blockSize) * k.typeSize, nb = cols / k.blockSize;
  checkBytes(k, w, wByteOffset, rows * rb, `matVec weights (${rows} x ${cols})`);
  checkFloats(x, 0, cols, "matVec x");
  checkFloats(out, 0, rows, "matVec out");
  const dot = k.dot;
  for (let r = 0, off = wByteOffset; r < rows; r++, off += rb) out[r] = dot(w, off, x, 0, nb);
}

// The batch is processed in tiles of this many items: a tile of X stays in cache while each
// decoded weight block is applied to all of it. Tiling does not change any result.
const BATCH_TILE = 16;
// Per batch item of the tile, the running row total. (BATCH_TILE)
const ACC = new Float64Array(BATCH_TILE);

/**
 * OUT[b*rows + r] = dot(row r of W, X[b*cols ..]) for a (rows, cols) matrix W stored from
 * w[wByteOffset]. X: (batch, cols), OUT: (batch, rows). Bit-identical to matVec per item.
 */
export function matMul(type: number, w: Uint8Array, rows: number, cols: number, X: Float32Array, batch: number, OUT: Float32Array, wByteOffset = 0): void {
  const k = kernel(type, cols);
  const rb = (cols / k.blockSize) * k.typeSize, nb = cols / k.blockSize;
  checkBytes(k, w, wByteOffset, rows * rb, `matMul weights (${rows} x ${cols})`);
  if (!Number.isInteger(batch) || batch < 0) throw new SpecdecError(`matMul: bad batch size ${batch}`);
  checkFloats(X, 0, batch * cols, "matMul X");
  checkFloats(OUT, 0, batch * rows, "matMul OUT");
  const dotBatch = k.dotBatch;
  for (let b0 = 0; b0 < batch; b0 += BATCH_TILE) {
    const bn = Math.min(BATCH_TILE, batch - b0);
    for (let r = 0, off = wByteOffset; r < rows; r++, off += rb) {
      ACC.fill(0, 0, bn);
      dotBatch(w, off, X, b0 * cols, cols, bn, nb, ACC);
      for (let b = 0; b < bn; b++) OUT[(b0 + b) * rows + r] = ACC[b];
    }
  }
}
