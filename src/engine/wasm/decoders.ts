// How each weight record layout decodes, as WebAssembly code emitted with asm.ts.
//
// Weights live in memory as panels of 4 rows (repack.ts): a row is cut into 32-element chunks,
// grouped in super-blocks of `chunks` chunks (8 for the K-quants, 1 otherwise); per super-block
// each row has a `header` of bytes (the K-quants' super-block scales), and per chunk a record
// of `rec` bytes. The records of the four rows of a panel lie side by side:
//   super-block s of panel P:  4 headers (row 0..3), then chunk k of rows 0..3 at 4*header + (4k + r)*rec
// F32 panels are interleaved finer, 4 elements at a time (the f32 tile kernels read them, and
// the other layouts decode into that form): element j of row r at (4*(j>>2) + r)*16 + 4*(j&3).
//
// Records (per row and chunk; element j of the chunk; nibble byte j holds elements j (low) and j + 16):
//   f16   (64 B): f16[32]                         bf16 (64 B): bf16[32]
//   q8_0  (36 B): f32 d, i8 q[32]                 w = d*q
//   q4_0  (20 B): f32 d, u8 qs[16]                w = d*q - 8d
//   q4_1  (24 B): f32 d, f32 m, u8 qs[16]         w = d*q + m
//   q5_0  (24 B): f32 d, u32 qh, u8 qs[16]        w = d*q - 16d  (bit j of qh: fifth bit of element j)
//   q5_1  (28 B): f32 d, f32 m, u32 qh, u8 qs[16] w = d*q + m
//   q4_K  (18 B, header f32 d, f32 dmin): u8 sc, u8 mn, u8 qs[16]            w = (d*sc)*q - dmin*mn
//   q5_K  (22 B, header f32 d, f32 dmin): u8 sc, u8 mn, u32 qh, u8 qs[16]    w = (d*sc)*q - dmin*mn
//   q6_K  (26 B, header f32 d): i8 sc0, i8 sc1, u8 ql[16], u8 qh[8]          w = (d*sc)*(q - 32),
//         sc0 for elements 0..15, sc1 for 16..31; q = nibble | 2 high bits << 4, the 2 bits of
//         element j at bit 2*(j >> 3) of qh[j & 7]
// Every f32 weight a decoder gives is exactly dequantizeRow's value: the scale products are exact
// in f32 (f16 scale times a small integer), d*q is exact, and adding m rounds once, like the reference.
//
// The integer decoders (for activations quantized to 8 bits, matmulQ8.ts) give the chunk's levels
// as four i16x8 vectors Q0..Q3 (elements 0-7, 8-15, 16-23, 24-31), with w = s0*q (elements
// 0..15), s1*q (16..31), plus m when the layout has an offset.

import { F32, Func, V128 } from "./asm.js";

export interface Decoder {
  /** Bytes per row per 32-element chunk. */
  readonly rec: number;
  /** Bytes per row per super-block, before its chunks. */
  readonly header: number;
  /** Chunks per super-block. */
  readonly chunks: number;
  /** Emit code setting W[0..7] (f32x4) to the chunk's weights, from the record at local p and the header at local h. */
  f32(f: Func, p: number, h: number, W: number[]): void;
  /** Emit code setting Q[0..3] (i16x8) to the chunk's levels and the scale locals (f32). */
  int?(f: Func, p: number, h: number, Q: number[], s: IntScales): void;
  /** The integer form has separate scales for elements 0..15 and 16..31. */
  readonly twoScales?: boolean;
  /** The integer form has an offset m (w = s*q + m). */
  readonly offset?: boolean;
}

/** f32 locals the integer decoders set. */
export interface IntScales {
  s0: number;
  s1: number; // used when twoScales
  m: number; // used when offset
}

const splat4 = (f: Func, v: number) => f.v128I32(v, v, v, v);

// F16: 32 halves. Bits (h & 0x7fff) << 13 read as f32 and scaled by 2^112 give every finite
// half (subnormals too); exponent 31 is then forced to 255 (inf/NaN); the sign is or-ed back.
const f16: Decoder = {
  rec: 64, header: 0, chunks: 1,
  f32(f, p, _h, W) {
    const h = f.local(V128), abs = f.local(V128);
    for (let i = 0; i < 8; i++) {
      f.get(p).simdMem("v128.load16x4_u", 8 * i).tee(h);
      splat4(f, 0x7fff).simd("v128.and").tee(abs);
      f.i32(13).simd("i32x4.shl");
      splat4(f, 0x77800000).simd("f32x4.mul");
      f.get(abs);
      splat4(f, 0x7bff).simd("i32x4.gt_u");
      splat4(f, 0x7f800000).simd("v128.and").simd("v128.or");
      f.get(h);
      splat4(f, 0x8000).simd("v128.and").i32(16).simd("i32x4.shl").simd("v128.or");
      f.set(W[i]);
    }
  },
};

// BF16: 32 bfloat16s, the top halves of f32s.
const bf16: Decoder = {
  rec: 64, header: 0, chunks: 1,
  f32(f, p, _h, W) {
    for (let i = 0; i < 8; i++) f.get(p).simdMem("v128.load16x4_u", 8 * i).i32(16).simd("i32x4.shl").set(W[i]);
  },
};

// Signed bytes with one scale per chunk.
const q8_0: Decoder = {
  rec: 36, header: 0, chunks: 1,
  f32(f, p, _h, W) {
    const d = f.local(V128), t = f.local(V128);
    f.get(p).simdMem("v128.load32_splat", 0).set(d);
    for (let g = 0; g < 4; g++) {
      f.get(p).simdMem("v128.load8x8_s", 4 + 8 * g).tee(t).simd("i32x4.extend_low_i16x8_s").simd("f32x4.convert_i32x4_s").get(d).simd("f32x4.mul").set(W[2 * g]);
      f.get(t).simd("i32x4.extend_high_i16x8_s").simd("f32x4.convert_i32x4_s").get(d).simd("f32x4.mul").set(W[2 * g + 1]);
    }
  },
  int(f, p, _h, Q, s) {
    f.get(p).f32Load(0).set(s.s0);
    for (let g = 0; g < 4; g++) f.get(p).simdMem("v128.load8x8_s", 4 + 8 * g).set(Q[g]);
  },
};

// Levels of 4 or 5 bits as two u8x16 vectors lo (elements 0..15) and hi (16..31), from 16 nibble
// bytes at qs and, for 5 bits, the u32 of fifth bits at qh.
function emitNibbles(f: Func, p: number, qs: number, qh: number | undefined, lo: number, hi: number): void {
  const q = f.local(V128);
  f.get(p).simdMem("v128.load", qs).tee(q).v128Bytes(new Array(16).fill(15)).simd("v128.and").set(lo);
  f.get(q).i32(4).simd("i8x16.shr_u").set(hi);
  if (qh === undefined) return;
  // Byte j of (qh bytes spread 8 to a lane) & bit (j % 8) -> 16 where the bit is set.
  const t = f.local(V128);
  const bit = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
  f.get(p).simdMem("v128.load32_splat", qh).set(t);
  for (const [v, b0] of [[lo, 0], [hi, 2]] as const) {
    f.get(v);
    f.get(t).v128Bytes([...new Array(8).fill(b0), ...new Array(8).fill(b0 + 1)]).simd("i8x16.swizzle");
    f.v128Bytes(bit).simd("v128.and").v128Bytes(bit).simd("i8x16.eq").v128Bytes(new Array(16).fill(16)).simd("v128.and");
    f.simd("v128.or").set(v);
  }
}

// W[0..7] = f32(levels) * d + m, levels unsigned bytes in lo (elements 0..15) and hi (16..31).
function emitAffine(f: Func, lo: number, hi: number, d: number, m: number, W: number[]): void {
  const t = f.local(V128);
  for (const [v, w0] of [[lo, 0], [hi, 4]] as const) {
    for (const [ext, k] of [["i16x8.extend_low_i8x16_u", 0], ["i16x8.extend_high_i8x16_u", 2]] as const) {
      f.get(v).simd(ext).tee(t).simd("i32x4.extend_low_i16x8_u").simd("f32x4.convert_i32x4_s").get(d).simd("f32x4.mul").get(m).simd("f32x4.add").set(W[w0 + k]);
      f.get(t).simd("i32x4.extend_high_i16x8_u").simd("f32x4.convert_i32x4_s").get(d).simd("f32x4.mul").get(m).simd("f32x4.add").set(W[w0 + k + 1]);
    }
  }
}

function emitLevels16(f: Func, lo: number, hi: number, Q: number[]): void {
  f.get(lo).simd("i16x8.extend_low_i8x16_u").set(Q[0]);
  f.get(lo).simd("i16x8.extend_high_i8x16_u").set(Q[1]);
  f.get(hi).simd("i16x8.extend_low_i8x16_u").set(Q[2]);
  f.get(hi).simd("i16x8.extend_high_i8x16_u").set(Q[3]);
}

// The 32-element nibble types: scale d, then the offset (stored, or -8d / -16d), [qh], qs.
function nib32(fifthBit: boolean, storedMin: boolean): Decoder {
  const qh = fifthBit ? (storedMin ? 8 : 4) : undefined;
  const qs = 4 + (storedMin ? 4 : 0) + (fifthBit ? 4 : 0);
  const offset = fifthBit ? -16 : -8;
  const scaleAndMin = (f: Func, p: number, d: number, m: number): void => {
    f.get(p).f32Load(0).set(d);
    if (storedMin) f.get(p).f32Load(4).set(m);
    else f.get(d).f32c(offset).op("f32.mul").set(m);
  };
  return {
    rec: qs + 16, header: 0, chunks: 1, offset: true,
    f32(f, p, _h, W) {
      const lo = f.local(V128), hi = f.local(V128), d = f.local(F32), m = f.local(F32), dv = f.local(V128), mv = f.local(V128);
      scaleAndMin(f, p, d, m);
      f.get(d).simd("f32x4.splat").set(dv).get(m).simd("f32x4.splat").set(mv);
      emitNibbles(f, p, qs, qh, lo, hi);
      emitAffine(f, lo, hi, dv, mv, W);
    },
    int(f, p, _h, Q, s) {
      const lo = f.local(V128), hi = f.local(V128);
      scaleAndMin(f, p, s.s0, s.m);
      emitNibbles(f, p, qs, qh, lo, hi);
      emitLevels16(f, lo, hi, Q);
    },
  };
}

// Q4_K / Q5_K: header f32 d, f32 dmin; chunk u8 sc, u8 mn, [u32 qh], qs[16].
function nibK(fifthBit: boolean): Decoder {
  const qh = fifthBit ? 2 : undefined, qs = fifthBit ? 6 : 2;
  const scaleAndMin = (f: Func, p: number, h: number, d: number, m: number): void => {
    f.get(h).f32Load(0).get(p).i32Load8u(0).op("f32.convert_i32_u").op("f32.mul").set(d);
    f.get(h).f32Load(4).get(p).i32Load8u(1).op("f32.convert_i32_u").op("f32.mul").op("f32.neg").set(m);
  };
  return {
    rec: qs + 16, header: 8, chunks: 8, offset: true,
    f32(f, p, h, W) {
      const lo = f.local(V128), hi = f.local(V128), d = f.local(F32), m = f.local(F32), dv = f.local(V128), mv = f.local(V128);
      scaleAndMin(f, p, h, d, m);
      f.get(d).simd("f32x4.splat").set(dv).get(m).simd("f32x4.splat").set(mv);
      emitNibbles(f, p, qs, qh, lo, hi);
      emitAffine(f, lo, hi, dv, mv, W);
    },
    int(f, p, h, Q, s) {
      const lo = f.local(V128), hi = f.local(V128);
      scaleAndMin(f, p, h, s.s0, s.m);
      emitNibbles(f, p, qs, qh, lo, hi);
      emitLevels16(f, lo, hi, Q);
    },
  };
}

// Q6_K: the signed levels q - 32 as two i8x16 vectors lo (elements 0..15) and hi (16..31).
function emitQ6Levels(f: Func, p: number, lo: number, hi: number): void {
  const ql = f.local(V128), v = f.local(V128);
  const three = new Array(16).fill(3);
  // Byte k of qh holds elements k, k+8, k+16, k+24 at bits 0, 2, 4, 6.
  const halves = [0, 1, 2, 3, 4, 5, 6, 7, 24, 25, 26, 27, 28, 29, 30, 31];
  f.get(p).simdMem("v128.load64_splat", 18).set(v);
  f.get(p).simdMem("v128.load", 2).set(ql);
  for (const [out, shift, nib] of [[lo, 0, false], [hi, 4, true]] as const) {
    f.get(v);
    if (shift) f.i32(shift).simd("i8x16.shr_u");
    f.v128Bytes(three).simd("v128.and");
    f.get(v).i32(shift + 2).simd("i8x16.shr_u").v128Bytes(three).simd("v128.and");
    f.simd("i8x16.shuffle").lanes(halves);
    f.i32(4).simd("i8x16.shl");
    f.get(ql);
    if (nib) f.i32(4).simd("i8x16.shr_u");
    else f.v128Bytes(new Array(16).fill(15)).simd("v128.and");
    f.simd("v128.or").v128Bytes(new Array(16).fill(32)).simd("i8x16.sub").set(out);
  }
}

const q6_K: Decoder = {
  rec: 26, header: 4, chunks: 8, twoScales: true,
  f32(f, p, h, W) {
    const lo = f.local(V128), hi = f.local(V128), s0 = f.local(V128), s1 = f.local(V128), t = f.local(V128);
    f.get(h).f32Load(0).get(p).i32Load8s(0).op("f32.convert_i32_s").op("f32.mul").simd("f32x4.splat").set(s0);
    f.get(h).f32Load(0).get(p).i32Load8s(1).op("f32.convert_i32_s").op("f32.mul").simd("f32x4.splat").set(s1);
    emitQ6Levels(f, p, lo, hi);
    for (const [v, w0, s] of [[lo, 0, s0], [hi, 4, s1]] as const) {
      for (const [ext, k] of [["i16x8.extend_low_i8x16_s", 0], ["i16x8.extend_high_i8x16_s", 2]] as const) {
        f.get(v).simd(ext).tee(t).simd("i32x4.extend_low_i16x8_s").simd("f32x4.convert_i32x4_s").get(s).simd("f32x4.mul").set(W[w0 + k]);
        f.get(t).simd("i32x4.extend_high_i16x8_s").simd("f32x4.convert_i32x4_s").get(s).simd("f32x4.mul").set(W[w0 + k + 1]);
      }
    }
  },
  int(f, p, h, Q, s) {
    const lo = f.local(V128), hi = f.local(V128);
    f.get(h).f32Load(0).get(p).i32Load8s(0).op("f32.convert_i32_s").op("f32.mul").set(s.s0);
    f.get(h).f32Load(0).get(p).i32Load8s(1).op("f32.convert_i32_s").op("f32.mul").set(s.s1);
    emitQ6Levels(f, p, lo, hi);
    f.get(lo).simd("i16x8.extend_low_i8x16_s").set(Q[0]);
    f.get(lo).simd("i16x8.extend_high_i8x16_s").set(Q[1]);
    f.get(hi).simd("i16x8.extend_low_i8x16_s").set(Q[2]);
    f.get(hi).simd("i16x8.extend_high_i8x16_s").set(Q[3]);
  },
};

/** Every decoder by name (f32 panels need none: the tile kernels read them directly). */
export const DECODERS = {
  f16, bf16, q8_0,
  q4_0: nib32(false, false), q4_1: nib32(false, true), q5_0: nib32(true, false), q5_1: nib32(true, true),
  q4_K: nibK(false), q5_K: nibK(true), q6_K,
} as const;
export type DecoderName = keyof typeof DECODERS;
export type KernelName = "f32" | DecoderName;
