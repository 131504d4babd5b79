// A weight matrix as the forward pass sees it: (rows, cols), row r producing output r,
// kept in the file's storage type (f32, f16, or quantized blocks) — never expanded to f32.

import { dequantizeRow, matMul } from "./quant/index.js";

export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  /**
   * out (batch, rows) = x (batch, cols) · Wᵀ. The value for one (b, r) is bit-identical
   * whatever `batch` is (same accumulation order), so a k-token pass equals k one-token passes.
   */
  matMul(x: Float32Array, batch: number, out: Float32Array): void;
  /** Row r as f32 into out[offset, offset + cols) — the embedding lookup. */
  readRow(r: number, out: Float32Array, offset: number): void;
}

/** A matrix stored as ggml lays it out: `rows` rows of `cols` elements of `type`. */
export class GgmlMatrix implements Matrix {
  private readonly rowBytes: number;

  constructor(
    readonly type: number,
    readonly data: Uint8Array, // (rows, row bytes)
    readonly rows: number,
    readonly cols: number,
  ) {
    this.rowBytes = data.byteLength / rows;
  }

  matMul(x: Float32Array, batch: number, out: Float32Array): void {
    matMul(this.type, this.data, this.rows, this.cols, x, batch, out);
  }

  readRow(r: number, out: Float32Array, offset: number): void {
    dequantizeRow(this.type, this.data, r * this.rowBytes, out, this.cols, offset);
  }
}
