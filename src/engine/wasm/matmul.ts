// The WebAssembly SIMD matMul kernels, generated with asm.ts.
//
// Every weight row is stored in linear memory as `nc` chunk records of 32 elements each (see
// repack.ts for the record of each type). A kernel decodes one chunk into eight f32x4 weight
// vectors W0..W7 (W_i = elements 4i..4i+3 of the chunk, exactly the f32 values of
// dequantizeRow), then applies them to 1 or 4 batch items.
//
// Accumulation order (the same for one item and for a tile of four, so the value of one
// (row, item) does not depend on the batch size):
//   per chunk:  acc0 = ((W0*x0 + W1*x1) + W2*x2) + W3*x3      (f32x4: lanes = elements mod 4)
//               acc1 = ((W4*x4 + W5*x5) + W6*x6) + W7*x7      (x_i = elements 4i..4i+3 of x)
//               s = acc0 + acc1                                 (f32x4)
//               A += f64(s0, s1) + f64(s2, s3)                  (f64x2 row total, chunk order)
//   row:        out = f32(A0 + A1)
// All products and the short lane chains are f32; the row total is f64.

import { Func, I32, V128 } from "./asm.js";

/** How a chunk record decodes into W0..W7. */
interface Decoder {
  /** Bytes per 32-element chunk record. */
  readonly rec: number;
  /** Emit code reading the record at local p into the W locals (or nothing, when lazy). */
  prepare(f: Func, p: number, W: number[]): void;
  /** Push W_i onto the stack. */
  push(f: Func, p: number, W: number[], i: number): void;
}

const fromLocals = (f: Func, _p: number, W: number[], i: number): void => void f.get(W[i]);

// F32: 32 floats, read straight from memory where they are used.
const f32: Decoder = {
  rec: 128,
  prepare() {},
  push: (f, p, _W, i) => void f.get(p).simdMem("v128.load", 16 * i),
};

// F16: 32 halves. Bits (h & 0x7fff) << 13 read as f32 and scaled by 2^112 give every finite
// half (subnormals too); exponent 31 is then forced to 255 (inf/NaN); the sign is or-ed back.
const f16: Decoder = {
  rec: 64,
  prepare(f, p, W) {
    const h = f.local(V128), abs = f.local(V128);
    for (let i = 0; i < 8; i++) {
      f.get(p).simdMem("v128.load16x4_u", 8 * i).tee(h);
      f.v128I32(0x7fff, 0x7fff, 0x7fff, 0x7fff).simd("v128.and").tee(abs);
      f.i32(13).simd("i32x4.shl").v128I32(0x77800000, 0x77800000, 0x77800000, 0x77800000).simd("f32x4.mul");
      f.get(abs).v128I32(0x7bff, 0x7bff, 0x7bff, 0x7bff).simd("i32x4.gt_u").v128I32(0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000).simd("v128.and").simd("v128.or");
      f.get(h).v128I32(0x8000, 0x8000, 0x8000, 0x8000).simd("v128.and").i32(16).simd("i32x4.shl").simd("v128.or");
      f.set(W[i]);
    }
  },
  push: fromLocals,
};

// BF16: 32 bfloat16s, the top halves of f32s.
const bf16: Decoder = {
  rec: 64,
  prepare(f, p, W) {
    for (let i = 0; i < 8; i++) f.get(p).simdMem("v128.load16x4_u", 8 * i).i32(16).simd("i32x4.shl").set(W[i]);
  },
  push: fromLocals,
};

// Signed bytes with a scale per 16 elements: f32 s0, f32 s1, i8 q[32]; w = s * q (Q8_0, Q6_K).
const int8: Decoder = {
  rec: 40,
  prepare(f, p, W) {
    const s0 = f.local(V128), s1 = f.local(V128), t = f.local(V128);
    f.get(p).simdMem("v128.load32_splat", 0).set(s0);
    f.get(p).simdMem("v128.load32_splat", 4).set(s1);
    for (let g = 0; g < 4; g++) {
      const s = g < 2 ? s0 : s1;
      f.get(p).simdMem("v128.load8x8_s", 8 + 8 * g).tee(t).simd("i32x4.extend_low_i16x8_s").simd("f32x4.convert_i32x4_s").get(s).simd("f32x4.mul").set(W[2 * g]);
      f.get(t).simd("i32x4.extend_high_i16x8_s").simd("f32x4.convert_i32x4_s").get(s).simd("f32x4.mul").set(W[2 * g + 1]);
    }
  },
  push: fromLocals,
};

// Unsigned 4- or 5-bit levels with a scale and an offset: f32 d, f32 m, [u32 qh], u8 qs[16];
// element j < 16 is the low nibble of qs[j], element j + 16 the high one, bit j of qh the fifth
// bit of element j; w = d * q + m (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K).
function nibbles(fifthBit: boolean): Decoder {
  const qs = fifthBit ? 12 : 8;
  return {
    rec: qs + 16,
    prepare(f, p, W) {
      const d = f.local(V128), m = f.local(V128), q = f.local(V128), lo = f.local(V128), hi = f.local(V128), t = f.local(V128);
      f.get(p).simdMem("v128.load32_splat", 0).set(d);
      f.get(p).simdMem("v128.load32_splat", 4).set(m);
      f.get(p).simdMem("v128.load", qs).tee(q).v128Bytes(new Array(16).fill(15)).simd("v128.and").set(lo);
      f.get(q).i32(4).simd("i8x16.shr_u").set(hi);
      if (fifthBit) {
        // Byte j of (qh bytes spread 8 to a lane) & bit (j % 8) → 16 where the bit is set.
        const bit = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        f.get(p).simdMem("v128.load32_splat", 8).set(t);
        for (const [v, b0] of [[lo, 0], [hi, 2]] as const) {
          f.get(v);
          f.get(t).v128Bytes([...new Array(8).fill(b0), ...new Array(8).fill(b0 + 1)]).simd("i8x16.swizzle");
          f.v128Bytes(bit).simd("v128.and").v128Bytes(bit).simd("i8x16.eq").v128Bytes(new Array(16).fill(16)).simd("v128.and");
          f.simd("v128.or").set(v);
        }
      }
      for (const [v, w0] of [[lo, 0], [hi, 4]] as const) {
        for (const [ext, k] of [["i16x8.extend_low_i8x16_u", 0], ["i16x8.extend_high_i8x16_u", 2]] as const) {
          f.get(v).simd(ext).tee(t).simd("i32x4.extend_low_i16x8_u").simd("f32x4.convert_i32x4_s").get(d).simd("f32x4.mul").get(m).simd("f32x4.add").set(W[w0 + k]);
          f.get(t).simd("i32x4.extend_high_i16x8_u").simd("f32x4.convert_i32x4_s").get(d).simd("f32x4.mul").get(m).simd("f32x4.add").set(W[w0 + k + 1]);
        }
      }
    },
    push: fromLocals,
  };
}

/** The record layout of each kernel, by kernel name. */
export const DECODERS = { f32, f16, bf16, int8, nib4: nibbles(false), nib5: nibbles(true) } as const;
export type KernelName = keyof typeof DECODERS;

const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

// dot<tile>_<name>(p, nc, x, xStride, out, outStride): for tile items b,
// out[b * outStride] = dot(row at p, x + b * xStride) over nc chunks (byte addresses).
export function dotTile(name: KernelName, tile: number): Func {
  const dec = DECODERS[name];
  const f = new Func(`dot${tile}_${name}`, [I32, I32, I32, I32, I32, I32]);
  const [p, nc, x, xStride, out, outStride] = [0, 1, 2, 3, 4, 5];
  const W = Array.from({ length: 8 }, () => f.local(V128));
  const A = Array.from({ length: tile }, () => f.local(V128)); // f64x2 row totals
  const xb = Array.from({ length: tile }, () => f.local(I32));
  const acc0 = f.local(V128), acc1 = f.local(V128), s = f.local(V128);
  for (let b = 0; b < tile; b++) {
    f.v128I32(0, 0, 0, 0).set(A[b]);
    f.get(x).get(xStride).i32(b).op("i32.mul").op("i32.add").set(xb[b]);
  }
  f.loop();
  dec.prepare(f, p, W);
  for (let b = 0; b < tile; b++) {
    for (const [acc, w0] of [[acc0, 0], [acc1, 4]] as const) {
      dec.push(f, p, W, w0);
      f.get(xb[b]).simdMem("v128.load", 16 * w0).simd("f32x4.mul");
      for (let i = w0 + 1; i < w0 + 4; i++) {
        dec.push(f, p, W, i);
        f.get(xb[b]).simdMem("v128.load", 16 * i).simd("f32x4.mul").simd("f32x4.add");
      }
      f.set(acc);
    }
    f.get(A[b]);
    f.get(acc0).get(acc1).simd("f32x4.add").tee(s).simd("f64x2.promote_low_f32x4");
    f.get(s).get(s).simd("i8x16.shuffle").lanes(HIGH_HALF).simd("f64x2.promote_low_f32x4");
    f.simd("f64x2.add").simd("f64x2.add").set(A[b]);
    f.get(xb[b]).i32(128).op("i32.add").set(xb[b]);
  }
  f.get(p).i32(dec.rec).op("i32.add").set(p);
  f.get(nc).i32(1).op("i32.sub").tee(nc).brIf(0);
  f.end();
  for (let b = 0; b < tile; b++) {
    f.get(out).get(outStride).i32(b).op("i32.mul").op("i32.add");
    f.get(A[b]).simd("f64x2.extract_lane").lanes([0]).get(A[b]).simd("f64x2.extract_lane").lanes([1]).op("f64.add").op("f32.demote_f64");
    f.f32Store();
  }
  return f;
}

// mm_<name>(w, nc, rows, X, xStride, batch, OUT): OUT (batch, rows) f32 = X (batch, xStride
// bytes) · Wᵀ for the `rows` rows of nc chunk records at w. Each row is applied to the batch
// four items at a time (one decode and one load of each chunk), then to the 1 to 3 left over as
// one tile — so a 2- or 3-token verification pass also reads its weights once. Every tile size
// adds up an item's products in the same order, so the batch never changes a result.
export function matMulFunc(name: KernelName, dot: readonly [number, number, number, number]): Func {
  const f = new Func(`mm_${name}`, [I32, I32, I32, I32, I32, I32, I32]);
  const [w, nc, rows, X, xStride, batch, OUT] = [0, 1, 2, 3, 4, 5, 6];
  const r = f.local(I32), b = f.local(I32), xp = f.local(I32), op = f.local(I32), rowBytes = f.local(I32), outStride = f.local(I32);
  f.get(nc).i32(DECODERS[name].rec).op("i32.mul").set(rowBytes);
  f.get(rows).i32(4).op("i32.mul").set(outStride);
  f.i32(0).set(r);
  f.block().get(rows).op("i32.eqz").brIf(0);
  f.loop();
  f.i32(0).set(b).get(X).set(xp).get(OUT).get(r).i32(4).op("i32.mul").op("i32.add").set(op);
  // Tiles of four.
  f.block().loop();
  f.get(b).i32(4).op("i32.add").get(batch).op("i32.le_s").op("i32.eqz").brIf(1);
  f.get(w).get(nc).get(xp).get(xStride).get(op).get(outStride).call(dot[3]);
  f.get(b).i32(4).op("i32.add").set(b);
  f.get(xp).get(xStride).i32(4).op("i32.mul").op("i32.add").set(xp);
  f.get(op).get(outStride).i32(4).op("i32.mul").op("i32.add").set(op);
  f.br(0).end().end();
  // The 1 to 3 left over, as one tile.
  for (let tile = 1; tile <= 3; tile++) {
    f.get(batch).get(b).op("i32.sub").i32(tile).op("i32.eq").if_();
    f.get(w).get(nc).get(xp).get(xStride).get(op).get(outStride).call(dot[tile - 1]);
    f.end();
  }
  f.get(w).get(rowBytes).op("i32.add").set(w);
  f.get(r).i32(1).op("i32.add").tee(r).get(rows).op("i32.lt_s").brIf(0);
  f.end().end();
  return f;
}

