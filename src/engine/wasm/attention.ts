// The WebAssembly SIMD attention kernel of the built-in engine (each token of a batch over its
// visible cache slots, every head), generated with asm.ts. Its order of operations does not depend on
// the batch or on the other tokens, so tree and chain passes stay bit-identical.

import { F32, F64, Func, I32, V128 } from "./asm.js";
import { emitExpF32x4 } from "./elementwise.js";
import { madd } from "./matmul.js";

// attendHead(q, k, v, vis, n, headDim, slotBytes, scale, att, out): one head of one token over
// the n visible cache slots vis[0..n) (ascending):
//   scores   s_j = f32 dot(q, k_j) * scale: f32x4 lanes over the head, summed (l0 + l1) + (l2 + l3)
//            (four slots at a time, each with its own accumulator);
//   softmax  e_j = exp(s_j - max) in f32 (elementwise.ts), summed in f64 in a fixed pattern of n;
//   output   out = sum_j (e_j * f32(1/sum)) v_j in f32x4, slot after slot, four head vectors held
//            in registers at a time.
// k and v point at the head's kv head in slot 0; headDim is a multiple of 4. Every step depends
// only on this token's slots, never on the batch or the other tokens, so tree and chain passes
// stay bit-identical. The dot products and the weighted sum fuse their multiply-adds when fma
// (as the products do, matmul.ts). A NaN score (from non-finite weights) stays NaN, never a trap.
export function attendHeadFunc(fma: boolean): Func {
  const f = new Func("attend_head", [I32, I32, I32, I32, I32, I32, I32, F32, I32, I32]);
  const [q, kc, vc, vis, n, headDim, slotBytes, scale, att, out] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const j = f.local(I32), i = f.local(I32), hb = f.local(I32), p = f.local(I32), qv = f.local(V128);
  const P = Array.from({ length: 4 }, () => f.local(I32)), A = Array.from({ length: 4 }, () => f.local(V128));
  const max = f.local(F32), s = f.local(F32), inv = f.local(F32), w = f.local(V128);
  const m = f.local(V128), x = f.local(V128), e = f.local(V128), ek = f.local(V128), er = f.local(V128), ep = f.local(V128);
  const s01 = f.local(V128), s23 = f.local(V128), tail = f.local(F64);
  const slot = (k: number) => f.get(vis).get(j).i32(k).op("i32.add").i32(4).op("i32.mul").op("i32.add").i32Load().get(slotBytes).op("i32.mul");
  f.get(headDim).i32(4).op("i32.mul").set(hb);

  // Scores and their maximum, slots [j, j + width) per step.
  f.f32c(-Infinity).set(max).i32(0).set(j);
  for (const width of [4, 1]) {
    f.block().loop();
    f.get(j).i32(width).op("i32.add").get(n).op("i32.gt_u").brIf(1);
    for (let k = 0; k < width; k++) {
      f.get(kc);
      slot(k);
      f.op("i32.add").set(P[k]);
      f.v128I32(0, 0, 0, 0).set(A[k]);
    }
    f.i32(0).set(i).loop();
    f.get(q).get(i).op("i32.add").simdMem("v128.load").set(qv);
    for (let k = 0; k < width; k++) madd(f, A[k], () => f.get(qv), () => f.get(P[k]).get(i).op("i32.add").simdMem("v128.load"), fma);
    f.get(i).i32(16).op("i32.add").tee(i).get(hb).op("i32.lt_u").brIf(0);
    f.end();
    for (let k = 0; k < width; k++) {
      f.get(A[k]).simd("f32x4.extract_lane").lanes([0]).get(A[k]).simd("f32x4.extract_lane").lanes([1]).op("f32.add");
      f.get(A[k]).simd("f32x4.extract_lane").lanes([2]).get(A[k]).simd("f32x4.extract_lane").lanes([3]).op("f32.add").op("f32.add");
      f.get(scale).op("f32.mul").set(s);
      f.get(att).get(j).i32(k).op("i32.add").i32(4).op("i32.mul").op("i32.add").get(s).f32Store();
      f.get(max).get(s).op("f32.max").set(max);
    }
    f.get(j).i32(width).op("i32.add").set(j).br(0);
    f.end().end();
  }

  // Softmax weights: four slots at a time (sums in two f64x2), then one at a time (an f64 sum).
  f.get(max).simd("f32x4.splat").set(m);
  f.v128I32(0, 0, 0, 0).set(s01).v128I32(0, 0, 0, 0).set(s23).f64c(0).set(tail);
  f.i32(0).set(j);
  for (const width of [4, 1]) {
    f.block().loop();
    f.get(j).i32(width).op("i32.add").get(n).op("i32.gt_u").brIf(1);
    f.get(att).get(j).i32(4).op("i32.mul").op("i32.add").set(p);
    if (width === 4) f.get(p).simdMem("v128.load");
    else f.get(p).f32Load().simd("f32x4.splat");
    f.get(m).simd("f32x4.sub").set(x);
    emitExpF32x4(f, x, ek, er, ep);
    f.set(e);
    if (width === 4) {
      f.get(p).get(e).simdMem("v128.store");
      f.get(s01).get(e).simd("f64x2.promote_low_f32x4").simd("f64x2.add").set(s01);
      f.get(s23).get(e).get(e).simd("i8x16.shuffle").lanes([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]).simd("f64x2.promote_low_f32x4").simd("f64x2.add").set(s23);
    } else {
      f.get(p).get(e).simd("f32x4.extract_lane").lanes([0]).f32Store();
      f.get(tail).get(e).simd("f32x4.extract_lane").lanes([0]).op("f64.promote_f32").op("f64.add").set(tail);
    }
    f.get(j).i32(width).op("i32.add").set(j).br(0);
    f.end().end();
  }
  f.f64c(1);
  f.get(s01).simd("f64x2.extract_lane").lanes([0]).get(s01).simd("f64x2.extract_lane").lanes([1]).op("f64.add");
  f.get(s23).simd("f64x2.extract_lane").lanes([0]).get(s23).simd("f64x2.extract_lane").lanes([1]).op("f64.add").op("f64.add");
  f.get(tail).op("f64.add").op("f64.div").op("f32.demote_f64").set(inv);

  // out = sum_j a_j v_j, `width` head vectors of out in registers over all the slots, then the next ones.
  f.i32(0).set(i);
  for (const width of [4, 1]) {
    f.block().loop();
    f.get(i).i32(16 * width).op("i32.add").get(hb).op("i32.gt_u").brIf(1);
    for (let k = 0; k < width; k++) f.v128I32(0, 0, 0, 0).set(A[k]);
    f.i32(0).set(j);
    f.block().get(n).op("i32.eqz").brIf(0).loop();
    f.get(att).get(j).i32(4).op("i32.mul").op("i32.add").f32Load().get(inv).op("f32.mul").simd("f32x4.splat").set(w);
    f.get(vc).get(i).op("i32.add");
    slot(0);
    f.op("i32.add").set(p);
    for (let k = 0; k < width; k++) madd(f, A[k], () => f.get(w), () => f.get(p).simdMem("v128.load", 16 * k), fma);
    f.get(j).i32(1).op("i32.add").tee(j).get(n).op("i32.lt_u").brIf(0);
    f.end().end();
    for (let k = 0; k < width; k++) f.get(out).get(i).op("i32.add").get(A[k]).simdMem("v128.store", 16 * k);
    f.get(i).i32(16 * width).op("i32.add").set(i).br(0);
    f.end().end();
  }
  return f;
}

// attend(i0, i1, nHeads, group, headDim, q, kc, vc, vis, visStride, counts, kvHeadBytes, scale, att, out, dimBytes):
// multi-head attention of a batch, items i0 <= i < i1 being (token t = i / nHeads, head h = i % nHeads).
// The caches hold each kv head's slots contiguously (kvHeadBytes apart; head h reads kv head
// h / group). Token t's q and out rows are at q, out + t * dimBytes, its visible slots at
// vis + t * visStride (counts[t] of them); att is this thread's score buffer.
export function attendFunc(head: number): Func {
  const f = new Func("attend", [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, I32, I32, I32]);
  const [i0, i1, nHeads, group, headDim, q, kc, vc, vis, visStride, counts, kvHeadBytes, scale, att, out, dimBytes] = Array.from({ length: 16 }, (_, i) => i);
  const t = f.local(I32), h = f.local(I32), hOff = f.local(I32), kvOff = f.local(I32);
  f.block().get(i0).get(i1).op("i32.lt_u").op("i32.eqz").brIf(0);
  f.loop();
  f.get(i0).get(nHeads).op("i32.div_u").set(t);
  f.get(i0).get(t).get(nHeads).op("i32.mul").op("i32.sub").set(h);
  f.get(h).get(headDim).op("i32.mul").i32(4).op("i32.mul").set(hOff);
  f.get(h).get(group).op("i32.div_u").get(kvHeadBytes).op("i32.mul").set(kvOff);
  f.get(q).get(t).get(dimBytes).op("i32.mul").op("i32.add").get(hOff).op("i32.add");
  f.get(kc).get(kvOff).op("i32.add").get(vc).get(kvOff).op("i32.add");
  f.get(vis).get(t).get(visStride).op("i32.mul").op("i32.add");
  f.get(counts).get(t).i32(4).op("i32.mul").op("i32.add").i32Load();
  f.get(headDim).get(headDim).i32(4).op("i32.mul").get(scale).get(att);
  f.get(out).get(t).get(dimBytes).op("i32.mul").op("i32.add").get(hOff).op("i32.add");
  f.call(head);
  f.get(i0).i32(1).op("i32.add").tee(i0).get(i1).op("i32.lt_u").brIf(0);
  f.end().end();
  return f;
}
