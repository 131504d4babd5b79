// Weight matrices in WebAssembly linear memory, multiplied by the SIMD kernels of matmul.ts.
//
// Memory: an arena is one WebAssembly.Memory with one instance of the kernel module. Weights
// are copied (repacked, repack.ts) into it once, when a WasmMatrix is made, by bumping `top`;
// activations go through one scratch area per arena (grown, never per call). When an arena
// cannot grow further, the next matrix starts a new one; an arena lives as long as its matrices.

import { buildModule } from "./kernelModule.js";
import type { KernelName } from "./matmul.js";
import { layoutOf, repackRow } from "./repack.js";

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit

let compiled: WebAssembly.Module | null | undefined;

function kernelModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = process.env.SPECDEC_NO_WASM ? null : new WebAssembly.Module(buildModule(MAX_PAGES));
    } catch {
      compiled = null; // no WebAssembly SIMD here: the JS kernels do the work
    }
  }
  return compiled;
}

type MatMulFn = (w: number, nc: number, rows: number, X: number, xStride: number, batch: number, OUT: number) => void;

class Arena {
  readonly memory: WebAssembly.Memory;
  readonly kernels: Record<KernelName, MatMulFn>;
  top = 0; // first free byte
  private scratch = 0; // byte offset of the scratch area
  private scratchBytes = 0;
  private f32: Float32Array; // the whole memory, refreshed when it grows

  constructor(module: WebAssembly.Module) {
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES });
    const exports = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports as Record<string, MatMulFn>;
    this.kernels = { f32: exports.mm_f32, f16: exports.mm_f16, bf16: exports.mm_bf16, int8: exports.mm_int8, nib4: exports.mm_nib4, nib5: exports.mm_nib5 };
    this.f32 = new Float32Array(this.memory.buffer);
  }

  /** Reserve `bytes` (16-aligned) at the top; false when the memory cannot grow that far. */
  alloc(bytes: number): number | undefined {
    const at = this.top, end = at + ((bytes + 15) & ~15);
    if (end > MAX_PAGES * PAGE) return undefined;
    const need = Math.ceil(end / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (need > 0) {
      try {
        this.memory.grow(need);
      } catch {
        return undefined;
      }
    }
    this.top = end;
    return at;
  }

  /** The memory as f32, and the scratch area with room for `bytes` (byte offset). */
  scratchFor(bytes: number): number {
    if (bytes > this.scratchBytes) {
      const at = this.alloc(bytes);
      if (at === undefined) throw new RangeError(`WASM arena: no room for ${bytes} bytes of activations`);
      this.scratch = at;
      this.scratchBytes = bytes;
    }
    return this.scratch;
  }

  view(): Float32Array {
    if (this.f32.buffer !== this.memory.buffer) this.f32 = new Float32Array(this.memory.buffer);
    return this.f32;
  }
}

let current: WeakRef<Arena> | undefined;
let enabled = true;

/** Turn the WASM kernels off (or back on) for matrices made from now on: for benchmarks and tests. */
export function useWasmKernels(on: boolean): void {
  enabled = on;
}

/** Space for `bytes` of weights in some arena (a new one when the current one is full). */
function place(bytes: number): { arena: Arena; at: number } | undefined {
  const module = kernelModule();
  if (!module || !enabled) return undefined;
  let arena = current?.deref();
  let at = arena?.alloc(bytes);
  if (arena === undefined || at === undefined) {
    arena = new Arena(module);
    current = new WeakRef(arena);
    at = arena.alloc(bytes);
    if (at === undefined) return undefined;
  }
  return { arena, at };
}

/** Whether matrices of this type get WASM kernels (in this process). */
export function wasmSupports(type: number): boolean {
  return layoutOf(type) !== undefined && kernelModule() !== null && enabled;
}

/** A (rows, cols) weight matrix copied into WASM memory. */
export class WasmMatrix {
  private readonly mm: MatMulFn;
  private readonly nc: number; // chunks of 32 per row
  private readonly stride: number; // elements per activation row in scratch: nc * 32

  private constructor(private readonly arena: Arena, private readonly at: number, kernel: KernelName, readonly rows: number, readonly cols: number) {
    this.mm = arena.kernels[kernel];
    this.nc = Math.ceil(cols / 32);
    this.stride = this.nc * 32;
  }

  /** The WASM copy of a ggml matrix (rows of cols elements of `type` at data), or undefined when WASM or the type is not available. */
  static from(type: number, data: Uint8Array, rows: number, cols: number, rowBytes: number): WasmMatrix | undefined {
    const layout = layoutOf(type);
    if (!layout || cols < 1 || rows < 1) return undefined;
    const nc = Math.ceil(cols / 32), recBytes = nc * layout.rec;
    const placed = place(rows * recBytes);
    if (!placed) return undefined;
    const { arena, at } = placed;
    const mem = new Uint8Array(arena.memory.buffer);
    const view = new DataView(arena.memory.buffer);
    for (let r = 0; r < rows; r++) repackRow(type, data, r * rowBytes, cols, mem, view, at + r * recBytes);
    return new WasmMatrix(arena, at, layout.kernel, rows, cols);
  }

  /** out (batch, rows) = x (batch, cols) · Wᵀ, through the scratch area. */
  matMul(x: Float32Array, batch: number, out: Float32Array): void {
    const { rows, cols, stride } = this;
    const X = this.arena.scratchFor(4 * batch * (stride + rows));
    const OUT = X + 4 * batch * stride;
    const mem = this.arena.view();
    const xi = X >> 2;
    if (stride === cols) mem.set(x.subarray(0, batch * cols), xi);
    else {
      // Rows padded to whole chunks; the pad is zero so it adds nothing (the weights' pad is zero too).
      for (let b = 0; b < batch; b++) {
        mem.set(x.subarray(b * cols, (b + 1) * cols), xi + b * stride);
        mem.fill(0, xi + b * stride + cols, xi + (b + 1) * stride);
      }
    }
    this.mm(this.at, this.nc, rows, X, 4 * stride, batch, OUT);
    out.set(mem.subarray(OUT >> 2, (OUT >> 2) + batch * rows));
  }
}

/** attend(q, kc, vc, vis, n, nHeads, group, headDim, slotBytes, scale, att, out): see attention.ts. */
export type AttendFn = (q: number, kc: number, vc: number, vis: number, n: number, nHeads: number, group: number, headDim: number, slotBytes: number, scale: number, att: number, out: number) => void;

/**
 * A fixed-size WASM memory of `bytes` (never grown, so views over it stay valid) with the
 * attention kernel bound to it; undefined without WASM or past the 4 GiB limit.
 */
export function attentionMemory(bytes: number): { buffer: ArrayBuffer; attend: AttendFn } | undefined {
  const module = kernelModule();
  if (!module || !enabled || bytes > (MAX_PAGES - 1) * PAGE) return undefined;
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as { attend: AttendFn };
  return { buffer: memory.buffer, attend: exports.attend };
}
