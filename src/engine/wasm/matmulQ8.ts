// Matrix products on activations rounded to 8 bits (the opt-in `activations: "q8"`), as
// llama.cpp's CPU backend does for quantized weights, with integer dot products
// (i32x4.dot_i16x8_s), generated with asm.ts.
//
// Activation rows are first quantized into 72-byte records per 32-element chunk:
//   i16 q[32] (the levels, widened for dot_i16x8_s), f32 dx, f32 sx     x ~ dx * q, sx ~ dx * sum(q)
// with ggml's rounding for the weight type (ggml-cpu quantize_row_q8_0 / _q8_1 / _q8_K):
//   q8_0 (for Q8_0, Q4_0, Q5_0):  per chunk d = amax / 127, dx = f16(d), q = nearest(x * 127 / amax), sx = dx * sum(q)
//   q8_1 (for Q4_1, Q5_1):        the same, sx = f16(d * sum(q))
//   q8_K (for the K-quants):      per 256 elements, iscale = -127 / max (max: the value of largest |x|),
//                                 q = min(127, nearest(iscale * x)), dx = 1 / iscale, sx = dx * sum(q)
// (nearest: ties to even, as _mm256_round_ps and nearest_int).
//
// Products (the weights' levels and scales from the integer decoders, decoders.ts), per (row, item):
//   per chunk: i0 = dot(q_w, q_x) over elements 0..15, i1 over 16..31 (exact integers)
//              t = f32(i0 + i1) * (s0 * dx)                      (one scale per chunk)
//                  or f32(i0) * (s0 * dx) + f32(i1) * (s1 * dx)  (Q6_K: one per 16)
//              t.lane0 += m * sx                                 (layouts with an offset m)
//              acc = acc + t                                     (f32x4, in chunk order)
//   out = (acc0 + acc1) + (acc2 + acc3)
// The same for every tile, batch and thread split, so speculation stays exact under q8 too.

import { F32, Func, I32, V128 } from "./asm.js";
import { DECODERS, type DecoderName, type IntScales } from "./decoders.js";

/** Bytes of one quantized 32-element chunk of activations. */
export const Q8_CHUNK = 72;

export type Q8Variant = "q8_0" | "q8_1" | "q8_K";

/** The activation rounding llama.cpp uses with each weight layout. */
export const Q8_VARIANT: Partial<Record<DecoderName, Q8Variant>> = {
  q8_0: "q8_0", q4_0: "q8_0", q5_0: "q8_0", q4_1: "q8_1", q5_1: "q8_1", q4_K: "q8_K", q5_K: "q8_K", q6_K: "q8_K",
};

// f16round(v): v rounded to the nearest f16 value (ties to even), as f32: ggml's FP32_TO_FP16
// then back. Normal halves keep 11 significant bits; below 2^-14 they are multiples of 2^-24;
// past 65504 infinity.
export function f16RoundFunc(): Func {
  const f = new Func("f16round", [F32], [F32]);
  const v = 0, a = f.local(F32), bits = f.local(I32), r = f.local(F32);
  f.get(v).op("f32.abs").tee(a).set(r); // NaN stays NaN: neither branch below runs
  f.get(a).f32c(2 ** -14).op("f32.lt").if_();
  f.get(a).f32c(2 ** 24).op("f32.mul").op("f32.nearest").f32c(2 ** -24).op("f32.mul").set(r);
  f.end();
  f.get(a).f32c(2 ** -14).op("f32.ge").if_();
  f.get(a).op("i32.reinterpret_f32").tee(bits).i32(0xfff).op("i32.add").get(bits).i32(13).op("i32.shr_u").i32(1).op("i32.and").op("i32.add");
  f.i32(~0x1fff).op("i32.and").op("f32.reinterpret_i32").set(r);
  f.get(r).f32c(65504).op("f32.gt").if_().f32c(Infinity).set(r).end();
  f.end();
  f.get(r).get(v).op("f32.copysign");
  return f;
}

/** Push the sum of the four i32 lanes of local v. */
function hsumI32(f: Func, v: number): void {
  f.get(v).simd("i32x4.extract_lane").lanes([0]).get(v).simd("i32x4.extract_lane").lanes([1]).op("i32.add");
  f.get(v).simd("i32x4.extract_lane").lanes([2]).get(v).simd("i32x4.extract_lane").lanes([3]).op("i32.add").op("i32.add");
}

// Quantize the 32 f32 at local p with multiplier id (f32x4 local) into the levels at local o;
// leaves nothing on the stack, sets sumq (i32) to the sum of the levels.
function emitLevels(f: Func, p: number, idv: number, o: number, sumq: number, clamp127: boolean): void {
  const a = f.local(V128), b = f.local(V128), isum = f.local(V128);
  f.v128I32(0, 0, 0, 0).set(isum);
  const level = (off: number, out: number) => {
    f.get(p).simdMem("v128.load", off).get(idv).simd("f32x4.mul").simd("f32x4.nearest");
    if (clamp127) f.f32c(127).simd("f32x4.splat").simd("f32x4.min");
    f.simd("i32x4.trunc_sat_f32x4_s").set(out);
  };
  for (let g = 0; g < 4; g++) {
    level(32 * g, a);
    level(32 * g + 16, b);
    f.get(isum).get(a).simd("i32x4.add").get(b).simd("i32x4.add").set(isum);
    f.get(o).get(a).get(b).simd("i16x8.narrow_i32x4_s").simdMem("v128.store", 16 * g);
  }
  hsumI32(f, isum);
  f.set(sumq);
}

// quant_<variant>(X, nc, batch, xStride, XQ, xqStride): the batch rows of X (f32, nc chunks each,
// rows xStride bytes apart) quantized into XQ (Q8_CHUNK bytes per chunk, rows xqStride apart).
export function quantizeFunc(variant: Q8Variant, f16round: number): Func {
  const f = new Func(`quant_${variant}`, [I32, I32, I32, I32, I32, I32]);
  const [X, nc, batch, xStride, XQ, xqStride] = [0, 1, 2, 3, 4, 5];
  const b = f.local(I32), c = f.local(I32), p = f.local(I32), o = f.local(I32), j = f.local(I32);
  const amax = f.local(F32), max = f.local(F32), d = f.local(F32), id = f.local(F32), dx = f.local(F32), sumq = f.local(I32), idv = f.local(V128), m = f.local(V128), x = f.local(F32);
  f.i32(0).set(b).block().loop();
  f.get(b).get(batch).op("i32.ge_u").brIf(1);
  f.get(X).get(b).get(xStride).op("i32.mul").op("i32.add").set(p);
  f.get(XQ).get(b).get(xqStride).op("i32.mul").op("i32.add").set(o);
  f.i32(0).set(c).block().loop();
  f.get(c).get(nc).op("i32.ge_u").brIf(1);
  const K = variant === "q8_K";
  // amax over the block (32 elements, or 256 for q8_K).
  f.get(p).simdMem("v128.load").simd("f32x4.abs").set(m);
  for (let g = 1; g < (K ? 64 : 8); g++) f.get(m).get(p).simdMem("v128.load", 16 * g).simd("f32x4.abs").simd("f32x4.max").set(m);
  f.get(m).simd("f32x4.extract_lane").lanes([0]).get(m).simd("f32x4.extract_lane").lanes([1]).op("f32.max");
  f.get(m).simd("f32x4.extract_lane").lanes([2]).get(m).simd("f32x4.extract_lane").lanes([3]).op("f32.max").op("f32.max").set(amax);
  if (!K) {
    f.get(amax).f32c(127).op("f32.div").set(d);
    f.f32c(0).f32c(127).get(amax).op("f32.div").get(amax).f32c(0).op("f32.eq").select().set(id);
    f.get(d).call(f16round).set(dx);
    f.get(id).simd("f32x4.splat").set(idv);
    emitLevels(f, p, idv, o, sumq, false);
    f.get(o).get(dx).f32Store(64);
    f.get(o);
    if (variant === "q8_0") f.get(dx).get(sumq).op("f32.convert_i32_s").op("f32.mul");
    else f.get(d).get(sumq).op("f32.convert_i32_s").op("f32.mul").call(f16round);
    f.f32Store(68);
    f.get(p).i32(128).op("i32.add").set(p);
    f.get(o).i32(Q8_CHUNK).op("i32.add").set(o);
    f.get(c).i32(1).op("i32.add").set(c);
  } else {
    // max: the first value whose |x| is amax (ggml's scan keeps the first).
    f.f32c(0).set(max).i32(0).set(j).block().loop();
    f.get(j).i32(256).op("i32.ge_u").brIf(1);
    f.get(p).get(j).i32(4).op("i32.mul").op("i32.add").f32Load().tee(x).op("f32.abs").get(amax).op("f32.eq").if_().get(x).set(max).br(2).end();
    f.get(j).i32(1).op("i32.add").set(j).br(0);
    f.end().end();
    // iscale = -127 / max (0 when the block is all zeros: levels and dx 0).
    f.f32c(0).f32c(-127).get(max).op("f32.div").get(amax).f32c(0).op("f32.eq").select().set(id);
    f.f32c(0).f32c(1).get(id).op("f32.div").get(amax).f32c(0).op("f32.eq").select();
    f.get(amax).get(amax).op("f32.sub").op("f32.add").set(dx); // + 0, or NaN when the block holds a NaN or an infinity
    f.get(id).simd("f32x4.splat").set(idv);
    for (let k = 0; k < 8; k++) {
      emitLevels(f, p, idv, o, sumq, true);
      f.get(o).get(dx).f32Store(64);
      f.get(o).get(dx).get(sumq).op("f32.convert_i32_s").op("f32.mul").f32Store(68);
      f.get(p).i32(128).op("i32.add").set(p);
      f.get(o).i32(Q8_CHUNK).op("i32.add").set(o);
    }
    f.get(c).i32(8).op("i32.add").set(c);
  }
  f.br(0).end().end();
  f.get(b).i32(1).op("i32.add").set(b).br(0);
  f.end().end();
  return f;
}

// tileq_<name>(W, nsb, XQ, O): the 4 rows of the panel at W times one quantized item:
// O[r] = row r · the item, r = 0..3. The item's chunk of levels stays in registers for the 4
// rows; each row's chunk is decoded once per item (measured faster than decoding once for two
// items: 8 accumulators, the levels and the decoded chunk overflow the 16 SIMD registers).
export function tileQ8Func(name: DecoderName): Func {
  const dec = DECODERS[name];
  const f = new Func(`tileq_${name}`, [I32, I32, I32, I32]);
  const [W, nsb, XQ, O] = [0, 1, 2, 3];
  const acc = Array.from({ length: 4 }, () => f.local(V128)); // acc[r]
  const Q = Array.from({ length: 4 }, () => f.local(V128));
  const Xv = Array.from({ length: 4 }, () => f.local(V128));
  const s: IntScales = { s0: f.local(F32), s1: f.local(F32), m: f.local(F32) };
  const i0 = f.local(V128), i1 = f.local(V128), t = f.local(V128), dx = f.local(F32);
  for (const a of acc) f.v128I32(0, 0, 0, 0).set(a);
  const sb = f.local(I32), rec = f.local(I32), k = f.local(I32), p = f.local(I32), h = f.local(I32);
  const c = dec.chunks > 1 ? f.local(I32) : -1;
  f.get(W).set(sb).get(nsb).set(k);
  f.loop();
  f.get(sb).i32(4 * dec.header).op("i32.add").set(rec);
  if (c >= 0) f.i32(dec.chunks).set(c).loop();
  for (let g = 0; g < 4; g++) f.get(XQ).simdMem("v128.load", 16 * g).set(Xv[g]);
  f.get(XQ).f32Load(64).set(dx);
  for (let r = 0; r < 4; r++) {
    f.get(rec).i32(r * dec.rec).op("i32.add").set(p);
    f.get(sb).i32(r * dec.header).op("i32.add").set(h);
    dec.int!(f, p, h, Q, s);
    const dot = (g: number) => f.get(Q[g]).get(Xv[g]).simd("i32x4.dot_i16x8_s");
    dot(0); dot(1); f.simd("i32x4.add").set(i0);
    dot(2); dot(3); f.simd("i32x4.add").set(i1);
    if (dec.twoScales) {
      f.get(i0).simd("f32x4.convert_i32x4_s").get(s.s0).get(dx).op("f32.mul").simd("f32x4.splat").simd("f32x4.mul");
      f.get(i1).simd("f32x4.convert_i32x4_s").get(s.s1).get(dx).op("f32.mul").simd("f32x4.splat").simd("f32x4.mul").simd("f32x4.add");
    } else {
      f.get(i0).get(i1).simd("i32x4.add").simd("f32x4.convert_i32x4_s").get(s.s0).get(dx).op("f32.mul").simd("f32x4.splat").simd("f32x4.mul");
    }
    if (dec.offset) {
      f.set(t).get(t).get(t).simd("f32x4.extract_lane").lanes([0]).get(s.m).get(XQ).f32Load(68).op("f32.mul").op("f32.add").simd("f32x4.replace_lane").lanes([0]);
    }
    f.get(acc[r]).simd("f32x4.add").set(acc[r]);
  }
  f.get(XQ).i32(Q8_CHUNK).op("i32.add").set(XQ);
  f.get(rec).i32(4 * dec.rec).op("i32.add").set(rec);
  if (c >= 0) f.get(c).i32(1).op("i32.sub").tee(c).brIf(0).end();
  f.get(rec).set(sb);
  f.get(k).i32(1).op("i32.sub").tee(k).brIf(0);
  f.end();
  for (let r = 0; r < 4; r++) {
    const a = acc[r];
    f.get(O);
    f.get(a).simd("f32x4.extract_lane").lanes([0]).get(a).simd("f32x4.extract_lane").lanes([1]).op("f32.add");
    f.get(a).simd("f32x4.extract_lane").lanes([2]).get(a).simd("f32x4.extract_lane").lanes([3]).op("f32.add").op("f32.add");
    f.f32Store(4 * r);
  }
  return f;
}

// mmq_<name>(W, nsb, p0, p1, XQ, xqStride, batch, OUT, outStride): for the panels p0 <= p < p1,
// OUT[b * outStride + 16p + 4r] = row 4p + r · quantized item b.
export function mmQ8Func(name: DecoderName, tile: number): Func {
  const dec = DECODERS[name];
  const f = new Func(`mmq_${name}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [W, nsb, p0, p1, XQ, xqStride, batch, OUT, outStride] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const pw = f.local(I32), b = f.local(I32), xp = f.local(I32), op = f.local(I32);
  f.block().get(p0).get(p1).op("i32.lt_u").op("i32.eqz").brIf(0);
  f.loop();
  f.get(W).get(p0).get(nsb).op("i32.mul").i32(4 * (dec.header + dec.chunks * dec.rec)).op("i32.mul").op("i32.add").set(pw);
  f.get(OUT).get(p0).i32(16).op("i32.mul").op("i32.add").set(op);
  f.get(XQ).set(xp).get(batch).set(b);
  f.block().get(b).op("i32.eqz").brIf(0).loop();
  f.get(pw).get(nsb).get(xp).get(op).call(tile);
  f.get(xp).get(xqStride).op("i32.add").set(xp);
  f.get(op).get(outStride).op("i32.add").set(op);
  f.get(b).i32(1).op("i32.sub").tee(b).brIf(0);
  f.end().end();
  f.get(p0).i32(1).op("i32.add").tee(p0).get(p1).op("i32.lt_u").brIf(0);
  f.end().end();
  return f;
}
