// Element-wise WebAssembly SIMD kernels of the forward pass, generated with asm.ts: the SwiGLU
// gate, and the f32x4 exp it shares with the softmax of attention.ts. Each element is computed
// on its own, so the batch never changes a result.

import { Func, I32, V128 } from "./asm.js";

const splat = (f: Func, v: number): Func => f.f32c(v).simd("f32x4.splat");

// exp(x) of the f32x4 in local x, on the stack (Cephes expf: x = n ln2 + r, |r| <= ln2/2, a
// polynomial for exp(r), times 2^n built from the exponent bits; within 2 ulp). x is clamped to
// [-87.3, 88.3], so that 2^n stays a normal f32 (n in [-126, 127]); NaN stays NaN.
export function emitExpF32x4(f: Func, x: number, n: number, r: number, p: number): void {
  f.get(x);
  splat(f, 88.3).simd("f32x4.min");
  splat(f, -87.3).simd("f32x4.max").tee(x);
  splat(f, Math.LOG2E).simd("f32x4.mul").simd("f32x4.nearest").set(n);
  f.get(x).get(n);
  splat(f, 0.693359375).simd("f32x4.mul").simd("f32x4.sub").get(n);
  splat(f, -2.12194440e-4).simd("f32x4.mul").simd("f32x4.sub").set(r);
  const c = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];
  splat(f, c[0]);
  for (let i = 1; i < c.length; i++) {
    f.get(r).simd("f32x4.mul");
    splat(f, c[i]).simd("f32x4.add");
  }
  f.get(r).get(r).simd("f32x4.mul").simd("f32x4.mul").get(r).simd("f32x4.add");
  splat(f, 1).simd("f32x4.add").set(p);
  // 2^n: (n + 127) << 23 as f32 bits.
  f.get(p).get(n).simd("i32x4.trunc_sat_f32x4_s").v128I32(127, 127, 127, 127);
  f.simd("i32x4.add").i32(23).simd("i32x4.shl").simd("f32x4.mul");
}

// swiglu(v0, v1, g, u): g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u for the elements of the
// 4-element vectors v0 <= v < v1 (a range, so that threads can share the work).
export function swigluFunc(): Func {
  const f = new Func("swiglu", [I32, I32, I32, I32]);
  const [v0, v1, g, u] = [0, 1, 2, 3];
  const p = f.local(I32), q = f.local(I32), end = f.local(I32), x = f.local(V128), e = f.local(V128), k = f.local(V128), r = f.local(V128), pe = f.local(V128);
  f.block().get(v0).get(v1).op("i32.lt_u").op("i32.eqz").brIf(0);
  f.get(g).get(v0).i32(16).op("i32.mul").op("i32.add").set(p);
  f.get(u).get(v0).i32(16).op("i32.mul").op("i32.add").set(q);
  f.get(g).get(v1).i32(16).op("i32.mul").op("i32.add").set(end);
  f.loop();
  f.get(p).simdMem("v128.load").set(e);
  f.v128I32(0, 0, 0, 0).get(e).simd("f32x4.sub").set(x);
  emitExpF32x4(f, x, k, r, pe);
  splat(f, 1).simd("f32x4.add").set(x);
  f.get(p).get(e).get(x).simd("f32x4.div").get(q).simdMem("v128.load").simd("f32x4.mul").simdMem("v128.store");
  f.get(q).i32(16).op("i32.add").set(q);
  f.get(p).i32(16).op("i32.add").tee(p).get(end).op("i32.lt_u").brIf(0);
  f.end().end();
  return f;
}
