// The WebAssembly SIMD matrix products on f32 activations, generated with asm.ts.
//
// OUT (batch, rows) = X (batch, cols) · Wᵀ, W in panels of 4 rows (decoders.ts, repack.ts).
// The f32 tile kernels multiply one f32 panel by 1 or 2 batch items at a time, so each weight
// vector loaded serves 2 items and each activation vector 4 rows (register tiling: 8
// accumulators). Other types reach the same kernels through their decoder: each panel is
// decoded once into an f32 panel in a per-thread scratch (unpack_*: 16 bytes per element of
// the 4 rows, in L1 or L2), which then serves the whole batch. (Decoding straight into the
// products at batch 1 measured slower: 8 decoded vectors and 4 accumulators overflow the 16
// SIMD registers.)
//
// Accumulation order, the same for every type, tile and batch, so one (row, item) result never
// depends on the batch, on the tile or on how rows are split between threads:
//   acc (f32x4) = 0;  for each 4-element vector i of the row, in order: acc = acc + w_i * x_i
//                     (fused, one rounding, when the module has fused multiply-add: kernelModule.ts)
//   out = (acc0 + acc1) + (acc2 + acc3)
// with w_i exactly dequantizeRow's f32 weights; products and sums are f32.

import { Func, I32, V128, type ValType } from "./asm.js";
import { DECODERS, type DecoderName, type KernelName } from "./decoders.js";

/** Push the horizontal sum (l0 + l1) + (l2 + l3) of the f32x4 in local a. */
function hsum(f: Func, a: number): void {
  f.get(a).simd("f32x4.extract_lane").lanes([0]).get(a).simd("f32x4.extract_lane").lanes([1]).op("f32.add");
  f.get(a).simd("f32x4.extract_lane").lanes([2]).get(a).simd("f32x4.extract_lane").lanes([3]).op("f32.add").op("f32.add");
}

/**
 * acc = acc + a * b on f32x4 (a and b push their operand): f32x4.relaxed_madd when fma (fused where
 * the CPU has FMA, as on every x86-64 since 2013; a separate multiply and add elsewhere), else
 * f32x4.mul then f32x4.add. Either way one module does the same for every batch and thread.
 */
export function madd(f: Func, acc: number, a: () => void, b: () => void, fma: boolean): void {
  if (fma) {
    a();
    b();
    f.get(acc).simd("f32x4.relaxed_madd").set(acc);
  } else {
    f.get(acc);
    a();
    b();
    f.simd("f32x4.mul").simd("f32x4.add").set(acc);
  }
}

// tile<n>_f32(W, nv, X0, O0, [X1, O1,] A, mode): the 4 rows of the f32 panel at W (nv vectors per
// row) times n = 1 or 2 items (activations at X0, X1): O_b[r] = row r · item b, r = 0..3. A row
// may come in segments (mm_<name> below): mode bit 1 starts from the accumulators saved at A
// (4n vectors) instead of zero, bit 2 finishes (the sums to O), else the accumulators are saved
// at A. Saving and reloading is exact, so a segmented row adds the same terms in the same order.
// fma: acc = madd(w_i, x_i, acc), relaxed SIMD's fused multiply-add where the CPU has one (one rounding).
export function tileF32(items: 1 | 2, fma: boolean): Func {
  const params: ValType[] = items === 1 ? [I32, I32, I32, I32, I32, I32] : [I32, I32, I32, I32, I32, I32, I32, I32];
  const f = new Func(`tile${items}_f32`, params);
  const [W, nv] = [0, 1];
  const X = items === 1 ? [2] : [2, 4], O = items === 1 ? [3] : [3, 5];
  const [A, mode] = items === 1 ? [4, 5] : [6, 7];
  const acc = Array.from({ length: 4 * items }, () => f.local(V128)); // acc[r * items + b], saved at A + 16 (r * items + b)
  const x = Array.from({ length: items }, () => f.local(V128));
  const w = f.local(V128), end = f.local(I32);
  f.get(mode).i32(1).op("i32.and").if_();
  acc.forEach((a, i) => f.get(A).simdMem("v128.load", 16 * i).set(a));
  f.end();
  f.get(W).get(nv).i32(64).op("i32.mul").op("i32.add").set(end);
  f.loop();
  for (let b = 0; b < items; b++) f.get(X[b]).simdMem("v128.load").set(x[b]);
  for (let r = 0; r < 4; r++) {
    f.get(W).simdMem("v128.load", 16 * r).set(w);
    for (let b = 0; b < items; b++) madd(f, acc[r * items + b], () => f.get(w), () => f.get(x[b]), fma);
  }
  for (let b = 0; b < items; b++) f.get(X[b]).i32(16).op("i32.add").set(X[b]);
  f.get(W).i32(64).op("i32.add").tee(W).get(end).op("i32.lt_u").brIf(0);
  f.end();
  f.get(mode).i32(2).op("i32.and").if_();
  for (let b = 0; b < items; b++) {
    for (let r = 0; r < 4; r++) {
      f.get(O[b]);
      hsum(f, acc[r * items + b]);
      f.f32Store(4 * r);
    }
  }
  f.else_();
  acc.forEach((a, i) => f.get(A).get(a).simdMem("v128.store", 16 * i));
  f.end();
  return f;
}

/** Elements of a row decoded at a time (one segment): 4 rows of them in f32 are 32 KiB, an L1 cache. */
export const SEGMENT_ELEMENTS = 2048;

/** Super-blocks of a decoder's layout (chunks per super-block) in one segment. */
function segmentSuperBlocks(chunks: number): number {
  return Math.max(1, Math.floor(SEGMENT_ELEMENTS / (32 * chunks)));
}

/** Bytes of one decoded segment (4 rows of f32): where mm_<name>'s scratch keeps its saved accumulators. */
export function segmentBytes(chunks: number): number {
  return 16 * 32 * chunks * segmentSuperBlocks(chunks);
}

/**
 * Emit a loop over the chunks of one panel: `body(p, h)` runs for every chunk of every row,
 * rows 0..3 of one chunk in turn, with p the row's chunk record and h its super-block header.
 * `perChunk` runs once per chunk after the 4 rows.
 */
function panelLoop(f: Func, name: DecoderName, W: number, nsb: number, body: (p: number, h: number, r: number) => void, perChunk: () => void): void {
  const d = DECODERS[name];
  const sb = f.local(I32), rec = f.local(I32), k = f.local(I32), p = f.local(I32), h = f.local(I32);
  f.get(W).set(sb).get(nsb).set(k); // k: super-blocks left
  f.loop();
  f.get(sb).i32(4 * d.header).op("i32.add").set(rec);
  const chunkLoop = d.chunks > 1;
  const c = chunkLoop ? f.local(I32) : -1;
  if (chunkLoop) f.i32(d.chunks).set(c).loop();
  for (let r = 0; r < 4; r++) {
    f.get(rec).i32(r * d.rec).op("i32.add").set(p);
    f.get(sb).i32(r * d.header).op("i32.add").set(h);
    body(p, h, r);
  }
  perChunk();
  f.get(rec).i32(4 * d.rec).op("i32.add").set(rec);
  if (chunkLoop) f.get(c).i32(1).op("i32.sub").tee(c).brIf(0).end();
  f.get(rec).set(sb);
  f.get(k).i32(1).op("i32.sub").tee(k).brIf(0);
  f.end();
}

// unpack_<name>(W, nsb, S): the panel at W decoded into the f32 panel at S.
export function unpackFunc(name: DecoderName): Func {
  const f = new Func(`unpack_${name}`, [I32, I32, I32]);
  const [W, nsb, S] = [0, 1, 2];
  const Wv = Array.from({ length: 8 }, () => f.local(V128));
  panelLoop(f, name, W, nsb, (p, h, r) => {
    DECODERS[name].f32(f, p, h, Wv);
    for (let i = 0; i < 8; i++) f.get(S).get(Wv[i]).simdMem("v128.store", 64 * i + 16 * r);
  }, () => void f.get(S).i32(512).op("i32.add").set(S));
  return f;
}

// mm_<name>(W, nsb, p0, p1, X, xStride, batch, OUT, outStride, S): for the panels p0 <= p < p1
// of the matrix at W, OUT[b * outStride + 16p + 4r] = row 4p + r · item b (X + b * xStride), for
// b < batch; S is this thread's scratch: one decoded segment of a panel, then the saved
// accumulators of every item (64 bytes each). Strides in bytes. A panel is decoded a segment
// (segmentSuperBlocks) at a time, every item going through the segment before the next is decoded,
// so the decoded weights stay in L1 however long the rows; f32 panels are read in place, whole.
export function mmFunc(name: KernelName, fn: { tile1: number; tile2: number; unpack?: number }): Func {
  const f = new Func(`mm_${name}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [W, nsb, p0, p1, X, xStride, batch, OUT, outStride, S] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const d = name === "f32" ? { header: 0, chunks: 1, rec: 128 } : DECODERS[name];
  const sbBytes = 4 * (d.header + d.chunks * d.rec); // one super-block of the 4 rows
  const segSb = name === "f32" ? 0 : segmentSuperBlocks(d.chunks);
  const pw = f.local(I32), src = f.local(I32), nv = f.local(I32), b = f.local(I32), xp = f.local(I32), op = f.local(I32);
  const sb0 = f.local(I32), n = f.local(I32), mode = f.local(I32), a = f.local(I32), acc = f.local(I32), xs = f.local(I32);
  // The saved accumulators follow the decoded segment.
  f.get(S).i32(name === "f32" ? 0 : segmentBytes(d.chunks)).op("i32.add").set(acc);
  f.block().get(p0).get(p1).op("i32.lt_u").op("i32.eqz").brIf(0);
  f.loop();
  f.get(W).get(p0).get(nsb).op("i32.mul").i32(sbBytes).op("i32.mul").op("i32.add").set(pw);
  f.i32(0).set(sb0);
  f.loop(); // segments of the panel: super-blocks sb0 .. sb0 + n
  if (name === "f32") {
    f.get(nsb).set(n).get(pw).set(src);
  } else {
    f.get(nsb).get(sb0).op("i32.sub").tee(n).i32(segSb).op("i32.gt_u").if_().i32(segSb).set(n).end();
    f.get(pw).get(sb0).i32(sbBytes).op("i32.mul").op("i32.add").get(n).get(S).call(fn.unpack!);
    f.get(S).set(src);
  }
  f.get(n).i32(8 * d.chunks).op("i32.mul").set(nv);
  // mode: 1 = continue from the saved accumulators (not the first segment), 2 = last segment.
  f.get(sb0).i32(0).op("i32.ne").get(sb0).get(n).op("i32.add").get(nsb).op("i32.ge_u").i32(1).op("i32.shl").op("i32.or").set(mode);
  f.get(X).get(sb0).i32(128 * d.chunks).op("i32.mul").op("i32.add").set(xs);
  f.get(xs).set(xp).get(OUT).get(p0).i32(16).op("i32.mul").op("i32.add").set(op).get(acc).set(a).get(batch).set(b);
  f.block().loop();
  f.get(b).i32(2).op("i32.lt_u").brIf(1);
  f.get(src).get(nv).get(xp).get(op).get(xp).get(xStride).op("i32.add").get(op).get(outStride).op("i32.add").get(a).get(mode).call(fn.tile2);
  f.get(xp).get(xStride).i32(2).op("i32.mul").op("i32.add").set(xp);
  f.get(op).get(outStride).i32(2).op("i32.mul").op("i32.add").set(op);
  f.get(a).i32(128).op("i32.add").set(a);
  f.get(b).i32(2).op("i32.sub").set(b);
  f.br(0).end().end();
  f.get(b).if_().get(src).get(nv).get(xp).get(op).get(a).get(mode).call(fn.tile1).end();
  f.get(sb0).get(n).op("i32.add").tee(sb0).get(nsb).op("i32.lt_u").brIf(0);
  f.end(); // segments
  f.get(p0).i32(1).op("i32.add").tee(p0).get(p1).op("i32.lt_u").brIf(0);
  f.end().end();
  return f;
}
