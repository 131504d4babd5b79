// A weight matrix as the forward pass sees it: (rows, cols), row r producing output r,
// kept in the file's storage type (f32, f16, or quantized blocks) — never expanded to f32.
// matMul runs on the WebAssembly SIMD kernels (wasm/) when this Node has them, with the
// weights repacked once into WASM memory (and only there: the file's bytes are dropped);
// otherwise on the JS kernels (quant/kernels.ts) over the file's bytes. The choice is made per
// matrix at load, so every pass of a model uses the same accumulation order.

import { dequantizeRow, matMul } from "./quant/index.js";
import { SpecdecError } from "../errors.js";
import { WasmMatrix, type ProductOptions } from "./wasm/wasmMatrix.js";

export type { ProductOptions };

export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  /**
   * out (batch, rows) = x (batch, cols) · Wᵀ. The value for one (b, r) is bit-identical
   * whatever `batch` is (same accumulation order), so a k-token pass equals k one-token passes;
   * and whatever the threads (each output is computed wholly by one thread).
   */
  matMul(x: Float32Array, batch: number, out: Float32Array, options?: ProductOptions): void;
  /** Row r as f32 into out[offset, offset + cols) — the embedding lookup. */
  readRow(r: number, out: Float32Array, offset: number): void;
}

/** A matrix stored as ggml lays it out: `rows` rows of `cols` elements of `type`. */
export class GgmlMatrix implements Matrix {
  private readonly rowBytes: number;
  private readonly wasm: WasmMatrix | undefined;
  private readonly data: Uint8Array | undefined; // (rows, row bytes) the file's bytes, for the JS kernels only

  constructor(
    readonly type: number,
    data: Uint8Array, // (rows, row bytes)
    readonly rows: number,
    readonly cols: number,
  ) {
    this.rowBytes = data.byteLength / rows;
    this.wasm = WasmMatrix.from(type, data, rows, cols, this.rowBytes);
    if (!this.wasm) this.data = data;
  }

  /** Which kernels multiply this matrix. */
  get kernel(): "wasm" | "js" {
    return this.wasm ? "wasm" : "js";
  }

  matMul(x: Float32Array, batch: number, out: Float32Array, options?: ProductOptions): void {
    if (this.wasm) this.wasm.matMul(x, batch, out, options);
    else if (options?.q8) throw new SpecdecError("8-bit activations need the WebAssembly kernels, which this Node lacks");
    else matMul(this.type, this.data!, this.rows, this.cols, x, batch, out);
  }

  readRow(r: number, out: Float32Array, offset: number): void {
    if (this.wasm) this.wasm.readRow(r, out, offset);
    else dequantizeRow(this.type, this.data!, r * this.rowBytes, out, this.cols, offset);
  }
}
