// Half-precision conversions. Decoding goes through a 65536-entry table (one indexed load in
// the kernels' inner loops); encoding rounds to nearest even, as ggml's fp32->fp16 does.

/** F16_TO_F32[bits] is the value of the IEEE binary16 number with those bits. (65536) */
export const F16_TO_F32 = buildF16Table();

function buildF16Table(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24; // zero and subnormals
    else if (exp === 31) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  return t;
}

// One float's bits, for encoding without a DataView. (1)
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function f16ToF32(bits: number): number {
  return F16_TO_F32[bits & 0xffff];
}

/** The binary16 bits nearest to v (ties to even; overflow to infinity; NaN stays NaN). */
export function f32ToF16(v: number): number {
  f32Scratch[0] = v; // the value is first rounded to f32, as in C
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15; // the exponent re-biased for binary16
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal in binary16 (or zero): shift the full significand down and round.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) !== 0)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to infinity: exactly what rounding wants.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
  return sign | h;
}

export function bf16ToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** The bfloat16 bits nearest to v (ties to even; NaN forced quiet, as in ggml). */
export function f32ToBf16(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 64) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Read the f16 at byte offset o of a little-endian buffer, as a number. */
export function readF16(b: Uint8Array, o: number): number {
  return F16_TO_F32[b[o] | (b[o + 1] << 8)];
}

export function writeF16(b: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}
