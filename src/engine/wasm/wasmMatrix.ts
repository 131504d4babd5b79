// Weight matrices in WebAssembly linear memory, multiplied by the SIMD kernels of matmul.ts.
//
// Memory: an arena is one shared WebAssembly.Memory with one instance of the kernel module.
// Weights are copied (repacked, repack.ts) into it once, when a WasmMatrix is made, by bumping
// `top`; activations go through one scratch area per arena (grown, never per call). When an
// arena cannot grow further, the next matrix starts a new one; an arena lives as long as its
// matrices. The memories are shared so that worker threads (threadPool.ts) can run the same
// kernels on them.

import { setFlagsFromString } from "node:v8";
import { F32, Func, moduleBytes } from "./asm.js";
import { buildModule } from "./kernelModule.js";
import type { KernelName } from "./decoders.js";
import { layoutOf, panelBytes, repackMatrix, superBlocks, type Layout } from "./repack.js";
import type { ThreadPool } from "./threadPool.js";
import { Q8_CHUNK, Q8_VARIANT, type Q8Variant } from "./matmulQ8.js";
import { segmentBytes } from "./matmul.js";

/** How a product runs: on `threads` of `pool` (the main thread included), on 8-bit activations. */
export interface ProductOptions {
  readonly pool?: ThreadPool;
  readonly threads?: number;
  /** Round the activations to 8 bits per block, as llama.cpp does, for quantized weights (float weights keep f32). */
  readonly q8?: boolean;
}

/** Products smaller than this many multiply-adds run on one thread: splitting them costs more than it saves. */
export const MIN_SPLIT_WORK = 1 << 16;

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit

let compiled: WebAssembly.Module | null | undefined;
let fused = false;

// relaxed_madd(1 + 2^-12, 1 + 2^-12, -1): 2^-11 + 2^-24 when fused (one rounding), 2^-11 when the
// product is rounded first (1 + 2^-11 + 2^-24 is a tie, to even).
const PROBE_A = 1 + 2 ** -12, PROBE_FUSED = 2 ** -11 + 2 ** -24;

function probeModule(): Uint8Array<ArrayBuffer> {
  const f = new Func("probe", [], [F32]);
  f.f32c(PROBE_A).simd("f32x4.splat").f32c(PROBE_A).simd("f32x4.splat").f32c(-1).simd("f32x4.splat");
  f.simd("f32x4.relaxed_madd").simd("f32x4.extract_lane").lanes([0]);
  return moduleBytes([f], 1);
}

/**
 * Whether relaxed SIMD's multiply-add fuses here (one rounding): it compiles (Node 22 does; Node
 * 20's V8 only behind a flag, which takes effect for modules compiled after it is set, worker
 * threads included, so it is set here before the kernel module is compiled) and this CPU has FMA.
 */
function fusedMultiplyAdd(): boolean {
  const bytes = probeModule();
  if (!WebAssembly.validate(bytes)) setFlagsFromString("--experimental-wasm-relaxed-simd");
  if (!WebAssembly.validate(bytes)) return false;
  const { probe } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1 }) } }).exports as { probe: () => number };
  return probe() === PROBE_FUSED;
}

/**
 * The compiled kernel module (on shared memories), or null without WebAssembly SIMD and threads.
 * Its f32 products and attention fuse multiply-adds where the CPU and Node can (one rounding per
 * term; faster batched products, docs/measurements.md), unless SPECDEC_NO_FMA is set: results then
 * depend on the CPU, but never on the batch or the threads.
 */
export function kernelModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    compiled = null; // no WebAssembly SIMD here: the JS kernels do the work
    if (!process.env.SPECDEC_NO_WASM) {
      for (const fma of !process.env.SPECDEC_NO_FMA && fusedMultiplyAdd() ? [true, false] : [false]) {
        try {
          compiled = new WebAssembly.Module(buildModule(MAX_PAGES, true, fma));
          fused = fma;
          break;
        } catch {
          // the next variant
        }
      }
    }
  }
  return compiled;
}

/** Whether the kernel module's f32 products fuse multiply-adds (compiling it first if needed). */
export function kernelsFuseMultiplyAdd(): boolean {
  kernelModule();
  return fused;
}

/** A shared memory of `initial` pages, growable to `maximum`. */
export function sharedMemory(initial: number, maximum = MAX_PAGES): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial, maximum, shared: true });
}

type QuantizeFn = (X: number, nc: number, batch: number, xStride: number, XQ: number, xqStride: number) => void;
type MatMulFn = (w: number, nsb: number, p0: number, p1: number, X: number, xStride: number, batch: number, OUT: number, outStride: number, S: number) => void;
type UnpackFn = (w: number, nsb: number, S: number) => void;

export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly exports: Record<string, (...args: number[]) => void>;
  top = 0; // first free byte
  private scratch = 0; // byte offset of the scratch area
  private scratchBytes = 0;
  private f32: Float32Array; // the whole memory, refreshed when it grows

  constructor(module: WebAssembly.Module) {
    this.memory = sharedMemory(1);
    this.exports = new WebAssembly.Instance(module, { env: { memory: this.memory } }).exports as Record<string, (...args: number[]) => void>;
    this.f32 = new Float32Array(this.memory.buffer);
  }

  /** Reserve `bytes` (16-aligned) at the top; undefined when the memory cannot grow that far. */
  alloc(bytes: number): number | undefined {
    const at = this.top, end = at + ((bytes + 15) & ~15);
    if (end > MAX_PAGES * PAGE) return undefined;
    const need = Math.ceil(end / PAGE) - this.f32.byteLength / PAGE;
    if (need > 0) {
      try {
        this.memory.grow(need);
      } catch {
        return undefined;
      }
      this.f32 = new Float32Array(this.memory.buffer);
    }
    this.top = end;
    return at;
  }

  /** The scratch area with room for `bytes` (byte offset). */
  scratchFor(bytes: number): number {
    if (bytes > this.scratchBytes) {
      const at = this.alloc(bytes);
      if (at === undefined) throw new RangeError(`WASM arena: no room for ${bytes} bytes of activations`);
      this.scratch = at;
      this.scratchBytes = bytes;
    }
    return this.scratch;
  }

  /** The memory as f32 (only alloc grows it, and refreshes this view). */
  view(): Float32Array {
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

/** A (rows, cols) weight matrix repacked into WASM memory. */
export class WasmMatrix {
  readonly kernel: KernelName;
  readonly panels: number; // ceil(rows / 4)
  private readonly unpack: UnpackFn | undefined;
  private readonly nsb: number; // super-blocks per row
  private readonly panelBytes: number;
  private readonly stride: number; // elements per activation row in scratch: whole chunks
  private readonly unpackBytes: number; // one decoded f32 panel (readRow)
  private readonly segmentBytes: number; // one decoded segment of a panel (mm_<kernel>; 0 for f32, read in place)
  private readonly q8: Q8Variant | undefined; // the activation rounding of the 8-bit product, when this layout has one
  private readonly mm: MatMulFn; // mm_<kernel>
  private readonly mmq: MatMulFn | undefined; // mmq_<kernel> (its last argument unused)
  private readonly quantize: QuantizeFn | undefined; // quant_<variant>

  private constructor(readonly arena: Arena, readonly at: number, layout: Layout, readonly rows: number, readonly cols: number) {
    this.kernel = layout.kernel;
    this.unpack = layout.kernel === "f32" ? undefined : (arena.exports[`unpack_${layout.kernel}`] as UnpackFn);
    this.nsb = superBlocks(layout, cols);
    this.panels = Math.ceil(rows / 4);
    this.panelBytes = panelBytes(layout, this.nsb);
    this.stride = this.nsb * layout.chunks * 32;
    this.unpackBytes = 16 * this.stride;
    this.segmentBytes = layout.kernel === "f32" ? 0 : segmentBytes(layout.chunks);
    this.q8 = layout.kernel === "f32" ? undefined : Q8_VARIANT[layout.kernel];
    this.mm = arena.exports[`mm_${layout.kernel}`] as MatMulFn;
    this.mmq = this.q8 && (arena.exports[`mmq_${layout.kernel}`] as MatMulFn);
    this.quantize = this.q8 && (arena.exports[`quant_${this.q8}`] as QuantizeFn);
  }

  /** The WASM copy of a ggml matrix (rows of cols elements of `type` at data), or undefined when WASM or the type is not available. */
  static from(type: number, data: Uint8Array, rows: number, cols: number, rowBytes: number): WasmMatrix | undefined {
    const layout = layoutOf(type);
    if (!layout || cols < 1 || rows < 1) return undefined;
    const bytes = Math.ceil(rows / 4) * panelBytes(layout, superBlocks(layout, cols));
    const placed = place(bytes);
    if (!placed) return undefined;
    const { arena, at } = placed;
    repackMatrix(type, data, rows, cols, rowBytes, arena.memory.buffer, at);
    return new WasmMatrix(arena, at, layout, rows, cols);
  }

  /** out (batch, rows) = x (batch, cols) · Wᵀ, through the scratch area; panels split between threads when given. */
  matMul(x: Float32Array, batch: number, out: Float32Array, options: ProductOptions = {}): void {
    const { rows, cols, stride } = this;
    const outStride = 4 * this.panels;
    const q8 = options.q8 && this.q8 !== undefined;
    const n = options.pool && rows * cols * batch >= MIN_SPLIT_WORK ? Math.min(options.threads ?? 1, options.pool.size) : 1;
    // Scratch: X (batch, stride) f32, OUT (batch, 4 * panels), then the quantized X, or per thread
    // one decoded segment of a panel and the accumulators of every item (64 bytes each).
    const xqStride = (stride / 32) * Q8_CHUNK, threadBytes = this.segmentBytes + 64 * batch;
    const X = this.arena.scratchFor(4 * batch * (stride + outStride) + (q8 ? batch * xqStride : n * threadBytes));
    const OUT = X + 4 * batch * stride, S = OUT + 4 * batch * outStride;
    const mem = this.arena.view();
    const xi = X >> 2, oi = OUT >> 2;
    // Rows padded to whole chunks; the pad is zero so it adds nothing (the weights' pad is zero too).
    if (stride === cols) mem.set(x.subarray(0, batch * cols), xi);
    else {
      for (let b = 0; b < batch; b++) {
        mem.set(x.subarray(b * cols, (b + 1) * cols), xi + b * stride);
        mem.fill(0, xi + b * stride + cols, xi + (b + 1) * stride);
      }
    }
    if (q8) this.quantize!(X, stride / 32, batch, 4 * stride, S, xqStride);
    if (n > 1) {
      const task = q8
        ? { fn: `mmq_${this.kernel}`, args: [this.at, this.nsb, 0, this.panels, S, xqStride, batch, OUT, 4 * outStride] }
        : { fn: `mm_${this.kernel}`, args: [this.at, this.nsb, 0, this.panels, X, 4 * stride, batch, OUT, 4 * outStride, S], scratch: 9, scratchStride: threadBytes };
      options.pool!.run({ memory: this.arena.memory, exports: this.arena.exports, range: 2, work: this.panels, ...task }, n);
    } else if (q8) this.mmq!(this.at, this.nsb, 0, this.panels, S, xqStride, batch, OUT, 4 * outStride, 0);
    else this.mm(this.at, this.nsb, 0, this.panels, X, 4 * stride, batch, OUT, 4 * outStride, S);
    if (outStride === rows) out.set(mem.subarray(oi, oi + batch * rows));
    else for (let b = 0; b < batch; b++) out.set(mem.subarray(oi + b * outStride, oi + b * outStride + rows), b * rows);
  }

  /** Row r as f32 into out[offset, offset + cols): its panel decoded into scratch (f32 panels are read in place). */
  readRow(r: number, out: Float32Array, offset: number): void {
    let panel = this.at + (r >> 2) * this.panelBytes;
    if (this.unpack) {
      const S = this.arena.scratchFor(this.unpackBytes);
      this.unpack(panel, this.nsb, S);
      panel = S;
    }
    const mem = this.arena.view(), base = (panel >> 2) + 4 * (r & 3);
    for (let j = 0; j < this.cols; j++) out[offset + j] = mem[base + 16 * (j >> 2) + (j & 3)];
  }
}

/** attend(i0, i1, nHeads, group, headDim, q, kc, vc, vis, visStride, counts, kvHeadBytes, scale, att, out, dimBytes): see attention.ts. */
export type AttendFn = (i0: number, i1: number, nHeads: number, group: number, headDim: number, q: number, kc: number, vc: number, vis: number, visStride: number, counts: number, kvHeadBytes: number, scale: number, att: number, out: number, dimBytes: number) => void;
/** swiglu(v0, v1, g, u): see elementwise.ts. */
export type SwigluFn = (v0: number, v1: number, g: number, u: number) => void;

/** An engine's own WASM memory (KV cache and activations) with the kernels bound to it. */
export interface EngineMemory {
  readonly memory: WebAssembly.Memory;
  readonly buffer: SharedArrayBuffer;
  readonly attend: AttendFn;
  readonly swiglu: SwigluFn;
  readonly exports: Record<string, (...args: number[]) => void>;
}

/**
 * A fixed-size WASM memory of `bytes` (never grown, so views over it stay valid) with the
 * engine's kernels bound to it; undefined without WASM or past the 4 GiB limit.
 */
export function engineMemory(bytes: number): EngineMemory | undefined {
  const module = kernelModule();
  if (!module || !enabled || bytes > (MAX_PAGES - 1) * PAGE) return undefined;
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  const memory = sharedMemory(pages, pages);
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, (...args: number[]) => void>;
  return { memory, buffer: memory.buffer as unknown as SharedArrayBuffer, attend: exports.attend as AttendFn, swiglu: exports.swiglu as SwigluFn, exports };
}
