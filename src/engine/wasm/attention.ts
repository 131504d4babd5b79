// The WebAssembly SIMD attention kernel of the built-in engine (each token of a batch over its
// visible cache slots, every head), generated with asm.ts. Its order of operations does not depend on
// the batch or on the other tokens, so tree and chain passes stay bit-identical.

import { F32, F64, Func, I32, V128 } from "./asm.js";

// exp(x) for x <= 0, in f64, on the stack: x = k ln2 + r with |r| <= ln2/2, exp(r) by its
// Taylor series to r^9 (relative error below 3e-11, far under the f32 it is stored in), times 2^k built from the exponent bits.
// A NaN score (from non-finite weights) stays NaN: the conversion of k saturates instead of trapping.
function emitExp(f: Func, x: number, k: number, r: number): void {
  f.get(x).f64c(-700).op("f64.max").tee(x).f64c(Math.LOG2E).op("f64.mul").op("f64.nearest").set(k);
  f.get(x).get(k).f64c(0.6931471803691238).op("f64.mul").op("f64.sub").get(k).f64c(1.9082149292705877e-10).op("f64.mul").op("f64.sub").set(r);
  let fact = 1;
  for (let i = 1; i <= 9; i++) fact *= i;
  f.f64c(1 / fact);
  for (let i = 8; i >= 0; i--) {
    fact /= i + 1;
    f.get(r).op("f64.mul").f64c(1 / fact).op("f64.add");
  }
  f.get(k).truncSatF64().op("i64.extend_i32_s").i64(1023).op("i64.add").i64(52).op("i64.shl").op("f64.reinterpret_i64").op("f64.mul");
}

// attendHead(q, k, v, vis, n, headDim, slotBytes, scale, att, out): one head of one token over
// the n visible cache slots vis[0..n) (ascending): scores s_j = f32 dot(q, k_j) (f32x4 lanes over
// the head, summed (l0 + l1) + (l2 + l3)) * scale; e_j = exp(s_j - max) in f64, kept as f32 in
// att, summed in f64; out = sum_j (e_j * (1/sum)) v_j in f32x4, in slot order. k and v point at
// the head's kv head in slot 0; headDim is a multiple of 4. The order does not depend on the
// batch or on the other tokens.
export function attendHeadFunc(): Func {
  const f = new Func("attend_head", [I32, I32, I32, I32, I32, I32, I32, F32, I32, I32]);
  const [q, kc, vc, vis, n, headDim, slotBytes, scale, att, out] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const j = f.local(I32), i = f.local(I32), hb = f.local(I32), p = f.local(I32);
  const max = f.local(F32), acc = f.local(V128), a = f.local(V128), inv = f.local(F32);
  const sum = f.local(F64), x = f.local(F64), k = f.local(F64), r = f.local(F64), e = f.local(F64);
  f.get(headDim).i32(4).op("i32.mul").set(hb);
  // Scores and their maximum.
  f.f32c(-Infinity).set(max).i32(0).set(j);
  f.loop();
  f.get(kc).get(vis).get(j).i32(4).op("i32.mul").op("i32.add").i32Load().get(slotBytes).op("i32.mul").op("i32.add").set(p);
  f.v128I32(0, 0, 0, 0).set(acc).i32(0).set(i);
  f.loop();
  f.get(acc).get(q).get(i).op("i32.add").simdMem("v128.load").get(p).get(i).op("i32.add").simdMem("v128.load").simd("f32x4.mul").simd("f32x4.add").set(acc);
  f.get(i).i32(16).op("i32.add").tee(i).get(hb).op("i32.lt_u").brIf(0);
  f.end();
  f.get(att).get(j).i32(4).op("i32.mul").op("i32.add");
  f.get(acc).simd("f32x4.extract_lane").lanes([0]).get(acc).simd("f32x4.extract_lane").lanes([1]).op("f32.add");
  f.get(acc).simd("f32x4.extract_lane").lanes([2]).get(acc).simd("f32x4.extract_lane").lanes([3]).op("f32.add").op("f32.add");
  f.get(scale).op("f32.mul").f32Store();
  f.get(max).get(att).get(j).i32(4).op("i32.mul").op("i32.add").f32Load().op("f32.max").set(max);
  f.get(j).i32(1).op("i32.add").tee(j).get(n).op("i32.lt_u").brIf(0);
  f.end();
  // Softmax weights.
  f.f64c(0).set(sum).i32(0).set(j);
  f.loop();
  f.get(att).get(j).i32(4).op("i32.mul").op("i32.add").tee(p).f32Load().get(max).op("f32.sub").op("f64.promote_f32").set(x);
  emitExp(f, x, k, r);
  f.tee(e).get(sum).op("f64.add").set(sum);
  f.get(p).get(e).op("f32.demote_f64").f32Store();
  f.get(j).i32(1).op("i32.add").tee(j).get(n).op("i32.lt_u").brIf(0);
  f.end();
  f.f64c(1).get(sum).op("f64.div").op("f32.demote_f64").set(inv);
  // out = sum_j a_j v_j.
  f.i32(0).set(i).loop();
  f.get(out).get(i).op("i32.add").v128I32(0, 0, 0, 0).simdMem("v128.store");
  f.get(i).i32(16).op("i32.add").tee(i).get(hb).op("i32.lt_u").brIf(0);
  f.end();
  f.i32(0).set(j).loop();
  f.get(att).get(j).i32(4).op("i32.mul").op("i32.add").f32Load().get(inv).op("f32.mul").simd("f32x4.splat").set(a);
  f.get(vc).get(vis).get(j).i32(4).op("i32.mul").op("i32.add").i32Load().get(slotBytes).op("i32.mul").op("i32.add").set(p);
  f.i32(0).set(i).loop();
  f.get(out).get(i).op("i32.add");
  f.get(out).get(i).op("i32.add").simdMem("v128.load").get(a).get(p).get(i).op("i32.add").simdMem("v128.load").simd("f32x4.mul").simd("f32x4.add");
  f.simdMem("v128.store");
  f.get(i).i32(16).op("i32.add").tee(i).get(hb).op("i32.lt_u").brIf(0);
  f.end();
  f.get(j).i32(1).op("i32.add").tee(j).get(n).op("i32.lt_u").brIf(0);
  f.end();
  return f;
}

// attend(i0, i1, nHeads, group, headDim, q, kc, vc, vis, visStride, counts, slotBytes, scale, att, out, dimBytes):
// multi-head attention of a batch, items i0 <= i < i1 being (token t = i / nHeads, head h = i % nHeads),
// kv head h / group. Token t's q and out rows are at q, out + t * dimBytes, its visible slots at
// vis + t * visStride (counts[t] of them); att is this thread's score buffer.
export function attendFunc(head: number): Func {
  const f = new Func("attend", [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, I32, I32, I32]);
  const [i0, i1, nHeads, group, headDim, q, kc, vc, vis, visStride, counts, slotBytes, scale, att, out, dimBytes] = Array.from({ length: 16 }, (_, i) => i);
  const t = f.local(I32), h = f.local(I32), hOff = f.local(I32), kvOff = f.local(I32);
  f.block().get(i0).get(i1).op("i32.lt_u").op("i32.eqz").brIf(0);
  f.loop();
  f.get(i0).get(nHeads).op("i32.div_u").set(t);
  f.get(i0).get(t).get(nHeads).op("i32.mul").op("i32.sub").set(h);
  f.get(h).get(headDim).op("i32.mul").i32(4).op("i32.mul").set(hOff);
  f.get(h).get(group).op("i32.div_u").get(headDim).op("i32.mul").i32(4).op("i32.mul").set(kvOff);
  f.get(q).get(t).get(dimBytes).op("i32.mul").op("i32.add").get(hOff).op("i32.add");
  f.get(kc).get(kvOff).op("i32.add").get(vc).get(kvOff).op("i32.add");
  f.get(vis).get(t).get(visStride).op("i32.mul").op("i32.add");
  f.get(counts).get(t).i32(4).op("i32.mul").op("i32.add").i32Load();
  f.get(headDim).get(slotBytes).get(scale).get(att);
  f.get(out).get(t).get(dimBytes).op("i32.mul").op("i32.add").get(hOff).op("i32.add");
  f.call(head);
  f.get(i0).i32(1).op("i32.add").tee(i0).get(i1).op("i32.lt_u").brIf(0);
  f.end().end();
  return f;
}
