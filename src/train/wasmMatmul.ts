// The trainer's matrix product out (M, N) = A (M, K) · Bᵀ, B (N, K), as a WebAssembly SIMD
// kernel (emitted by our own src/engine/wasm/asm.ts, no toolchain).
//
// Layout. Both operands are copied into the module's memory as tiles, so the kernel's inner
// loop reads consecutive bytes with constant offsets: A as tiles of 4 rows, B of 2 rows, each
// tile stored k-chunk by k-chunk (4 elements of each of its rows per chunk):
//   A tile i:  chunk c at A + (i·kc + c)·64:  rows 4i..4i+3, elements 4c..4c+3 of each
//   B tile j:  chunk c at B + (j·kc + c)·32:  rows 2j, 2j+1
// Rows and K are zero-padded to whole tiles and chunks (zeros add nothing). The copy is
// O(MK + NK), the product O(MNK), so it pays from small sizes on (measured in the bench).
//
// Arithmetic. Each output is the f32 sum over chunks of f32x4 products, lanes summed at the end
// ((l0 + l1) + l2) + l3: a fixed order, so a product is deterministic, whatever the sizes.

import { Func, I32, V128, moduleBytes } from "../engine/wasm/asm.js";

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB

/** mm_abt(A, B, OUT, mt, nt, kc, outStride): 4·mt × 2·nt outputs, kc chunks of 4, row stride in bytes. */
function mmAbt(): Func {
  const [A, B, OUT, mt, nt, kc, stride] = [0, 1, 2, 3, 4, 5, 6];
  const f = new Func("mm_abt", [I32, I32, I32, I32, I32, I32, I32]);
  const i = f.local(I32), j = f.local(I32), p = f.local(I32), q = f.local(I32), qEnd = f.local(I32), o = f.local(I32);
  const acc = Array.from({ length: 8 }, () => f.local(V128)); // acc[2r + c]: A row r, B row c
  const a = f.local(V128), b0 = f.local(V128), b1 = f.local(V128);
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).get(mt).op("i32.ge_u").brIf(1);
  f.i32(0).set(j);
  f.block().loop();
  f.get(j).get(nt).op("i32.ge_u").brIf(1);
  f.get(A).get(i).get(kc).op("i32.mul").i32(64).op("i32.mul").op("i32.add").set(p);
  f.get(B).get(j).get(kc).op("i32.mul").i32(32).op("i32.mul").op("i32.add").tee(q);
  f.get(kc).i32(32).op("i32.mul").op("i32.add").set(qEnd);
  for (const x of acc) f.v128I32(0, 0, 0, 0).set(x);
  f.loop();
  f.get(q).simdMem("v128.load", 0).set(b0);
  f.get(q).simdMem("v128.load", 16).set(b1);
  for (let r = 0; r < 4; r++) {
    f.get(p).simdMem("v128.load", 16 * r).set(a);
    f.get(acc[2 * r]).get(a).get(b0).simd("f32x4.mul").simd("f32x4.add").set(acc[2 * r]);
    f.get(acc[2 * r + 1]).get(a).get(b1).simd("f32x4.mul").simd("f32x4.add").set(acc[2 * r + 1]);
  }
  f.get(p).i32(64).op("i32.add").set(p);
  f.get(q).i32(32).op("i32.add").tee(q).get(qEnd).op("i32.lt_u").brIf(0);
  f.end();
  // Store: OUT + (4i + r)·stride + (2j + c)·4.
  f.get(OUT).get(i).i32(4).op("i32.mul").get(stride).op("i32.mul").op("i32.add").get(j).i32(8).op("i32.mul").op("i32.add").set(o);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 2; c++) {
      const x = acc[2 * r + c];
      f.get(o);
      if (r > 0) f.get(stride).i32(r).op("i32.mul").op("i32.add");
      f.get(x).simd("f32x4.extract_lane").lanes([0]).get(x).simd("f32x4.extract_lane").lanes([1]).op("f32.add");
      f.get(x).simd("f32x4.extract_lane").lanes([2]).op("f32.add");
      f.get(x).simd("f32x4.extract_lane").lanes([3]).op("f32.add");
      f.f32Store(4 * c);
    }
  }
  f.get(j).i32(1).op("i32.add").set(j).br(0);
  f.end().end();
  f.get(i).i32(1).op("i32.add").set(i).br(0);
  f.end().end();
  return f;
}

type MmFn = (A: number, B: number, OUT: number, mt: number, nt: number, kc: number, stride: number) => void;

interface Kernel {
  memory: WebAssembly.Memory;
  mm: MmFn;
  f32: Float32Array; // the whole memory, refreshed when it grows
}

let kernel: Kernel | null | undefined;

function load(): Kernel | null {
  if (kernel === undefined) {
    try {
      if (process.env.SPECDEC_NO_WASM) throw new Error("disabled");
      const module = new WebAssembly.Module(moduleBytes([mmAbt()], MAX_PAGES));
      const memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES });
      const mm = (new WebAssembly.Instance(module, { env: { memory } }).exports as { mm_abt: MmFn }).mm_abt;
      kernel = { memory, mm, f32: new Float32Array(memory.buffer) };
    } catch {
      kernel = null; // no WebAssembly SIMD here: the JS loops do the work
    }
  }
  return kernel;
}

/** Whether the WASM kernel is available in this process. */
export function wasmMatmulAvailable(): boolean {
  return load() !== null;
}

/** Element (r, k) of a matrix operand is data[off + r·rs + k·ks]: rows, transposes and slices alike. */
export interface MatView {
  data: Float32Array;
  off: number;
  rs: number;
  ks: number;
}

/** Output element (m, n) is data[off + m·rs + n]. */
export interface OutView {
  data: Float32Array;
  off: number;
  rs: number;
}

/** Copy (rows, K) of operand v into tiles of `tile` rows at f32 index `at` (see the header). */
function pack(v: MatView, rows: number, K: number, tile: number, kc: number, mem: Float32Array, at: number, paddedRows: number): void {
  if (paddedRows > rows || kc * 4 > K) mem.fill(0, at, at + paddedRows * kc * 4);
  const { data, off, rs, ks } = v;
  const tileStride = kc * tile * 4, chunk = tile * 4;
  if (ks === 1) {
    const K4 = K & ~3;
    for (let r = 0; r < rows; r++) {
      const s = off + r * rs;
      let d = at + Math.floor(r / tile) * tileStride + (r % tile) * 4;
      for (let k = 0; k < K4; k += 4, d += chunk) {
        mem[d] = data[s + k];
        mem[d + 1] = data[s + k + 1];
        mem[d + 2] = data[s + k + 2];
        mem[d + 3] = data[s + k + 3];
      }
      for (let k = K4; k < K; k++) mem[d + (k - K4)] = data[s + k];
    }
    return;
  }
  // A transposed operand: tile by tile, chunk by chunk, so the writes are sequential; each chunk
  // reads `tile` neighbouring elements from 4 rows of the source.
  for (let r0 = 0, d = at; r0 < rows; r0 += tile) {
    const nr = Math.min(tile, rows - r0);
    for (let k0 = 0; k0 < K; k0 += 4, d += chunk) {
      const nk = Math.min(4, K - k0);
      if (nr === 4 && nk === 4) {
        for (let kk = 0; kk < 4; kk++) {
          const x = off + (k0 + kk) * ks + r0 * rs;
          mem[d + kk] = data[x];
          mem[d + 4 + kk] = data[x + rs];
          mem[d + 8 + kk] = data[x + 2 * rs];
          mem[d + 12 + kk] = data[x + 3 * rs];
        }
      } else if (nr === 2 && nk === 4) {
        for (let kk = 0; kk < 4; kk++) {
          const x = off + (k0 + kk) * ks + r0 * rs;
          mem[d + kk] = data[x];
          mem[d + 4 + kk] = data[x + rs];
        }
      } else for (let kk = 0; kk < nk; kk++) for (let ri = 0; ri < nr; ri++) mem[d + 4 * ri + kk] = data[off + (k0 + kk) * ks + (r0 + ri) * rs];
    }
  }
}

/**
 * out (M, N) = A (M, K) · Bᵀ (B is (N, K)), or += with `accumulate`, on the WASM kernel; the
 * operands and the output may be strided views (slices, transposes). Returns false (and does
 * nothing) when WebAssembly SIMD is not available.
 */
export function wasmMatmul(A: MatView, Bm: MatView, M: number, N: number, K: number, out: OutView, accumulate: boolean): boolean {
  const k = load();
  if (!k) return false;
  const Mp = (M + 3) & ~3, Np = (N + 1) & ~1, kc = (K + 3) >> 2;
  const aAt = 0, bAt = Mp * kc * 4, oAt = bAt + Np * kc * 4; // f32 indices
  const bytes = 4 * (oAt + Mp * Np);
  if (bytes > k.memory.buffer.byteLength) {
    if (bytes > MAX_PAGES * PAGE) throw new RangeError(`matrix product of (${M}, ${K}) by (${N}, ${K}) exceeds WebAssembly memory`);
    k.memory.grow(Math.ceil((bytes - k.memory.buffer.byteLength) / PAGE));
    k.f32 = new Float32Array(k.memory.buffer);
  }
  const mem = k.f32;
  pack(A, M, K, 4, kc, mem, aAt, Mp);
  pack(Bm, N, K, 2, kc, mem, bAt, Np);
  k.mm(4 * aAt, 4 * bAt, 4 * oAt, Mp >> 2, Np >> 1, kc, 4 * Np);
  const o = out.data;
  for (let m = 0; m < M; m++) {
    const s = oAt + m * Np, d = out.off + m * out.rs;
    if (accumulate) for (let n = 0; n < N; n++) o[d + n] += mem[s + n];
    else o.set(mem.subarray(s, s + N), d);
  }
  return true;
}
