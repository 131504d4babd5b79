// A tiny WebAssembly binary emitter: just what the SIMD kernels need (one imported memory,
// functions with i32/f32/f64/v128 locals, structured control flow, scalar and SIMD opcodes).
// The kernels are written against it in matmul.ts and attention.ts, so the .wasm is built at load time by our
// own code, with no toolchain. Opcode numbers: WebAssembly core spec 2.0, binary format.

export const I32 = 0x7f, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

function uleb(out: number[], v: number): void {
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
}

function sleb(out: number[], v: number): void {
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

// SIMD opcodes (prefix 0xfd), by the names of the text format.
const SIMD = {
  "v128.load": 0x00, "v128.load8x8_s": 0x01, "v128.load8x8_u": 0x02, "v128.load16x4_u": 0x04, "v128.load32_splat": 0x09, "v128.load64_splat": 0x0a,
  "v128.store": 0x0b, "v128.load32_zero": 0x5c, "v128.load64_zero": 0x5d,
  "i8x16.shuffle": 0x0d, "i8x16.swizzle": 0x0e, "i8x16.splat": 0x0f, "i32x4.splat": 0x11, "f32x4.splat": 0x13, "f64x2.splat": 0x14,
  "i32x4.extract_lane": 0x1b, "f32x4.extract_lane": 0x1f, "f32x4.replace_lane": 0x20, "f64x2.extract_lane": 0x21,
  "i8x16.eq": 0x23, "i32x4.gt_u": 0x3c, "f32x4.eq": 0x41,
  "v128.and": 0x4e, "v128.or": 0x50, "v128.any_true": 0x53,
  "f64x2.promote_low_f32x4": 0x5f, "i8x16.narrow_i16x8_s": 0x65, "f32x4.nearest": 0x6a,
  "i8x16.shl": 0x6b, "i8x16.shr_u": 0x6d, "i8x16.sub": 0x71,
  "i32x4.extadd_pairwise_i16x8_s": 0x7e, "i16x8.narrow_i32x4_s": 0x85,
  "i16x8.extend_low_i8x16_s": 0x87, "i16x8.extend_high_i8x16_s": 0x88, "i16x8.extend_low_i8x16_u": 0x89, "i16x8.extend_high_i8x16_u": 0x8a,
  "i16x8.add": 0x8e,
  "i32x4.extend_low_i16x8_s": 0xa7, "i32x4.extend_high_i16x8_s": 0xa8, "i32x4.extend_low_i16x8_u": 0xa9, "i32x4.extend_high_i16x8_u": 0xaa,
  "i32x4.shl": 0xab, "i32x4.add": 0xae, "i32x4.dot_i16x8_s": 0xba,
  "f32x4.abs": 0xe0, "f32x4.add": 0xe4, "f32x4.sub": 0xe5, "f32x4.mul": 0xe6, "f32x4.div": 0xe7, "f32x4.min": 0xe8, "f32x4.max": 0xe9,
  "f64x2.add": 0xf0, "f64x2.mul": 0xf2,
  "i32x4.trunc_sat_f32x4_s": 0xf8, "f32x4.convert_i32x4_s": 0xfa, "f32x4.convert_i32x4_u": 0xfb,
  "f32x4.relaxed_madd": 0x105, // relaxed SIMD
} as const;
export type SimdOp = keyof typeof SIMD;

// Scalar opcodes without immediates.
const PLAIN = {
  "i32.eqz": 0x45, "i32.eq": 0x46, "i32.ne": 0x47, "i32.lt_u": 0x49, "i32.gt_u": 0x4b,
  "f32.eq": 0x5b, "f32.ne": 0x5c, "f32.lt": 0x5d, "f32.gt": 0x5e, "f32.ge": 0x60, "i32.ge_u": 0x4f, "i32.lt_s": 0x48, "i32.le_s": 0x4c,
  "i32.add": 0x6a, "i32.sub": 0x6b, "i32.mul": 0x6c, "i32.div_u": 0x6e, "i32.and": 0x71, "i32.or": 0x72, "i32.shl": 0x74, "i32.shr_u": 0x76,
  "i64.add": 0x7c, "i64.shl": 0x86,
  "f32.abs": 0x8b, "f32.neg": 0x8c, "f32.add": 0x92, "f32.sub": 0x93, "f32.mul": 0x94, "f32.div": 0x95, "f32.min": 0x96, "f32.max": 0x97, "f32.copysign": 0x98, "f32.nearest": 0x90,
  "f64.nearest": 0x9e, "f64.add": 0xa0, "f64.sub": 0xa1, "f64.mul": 0xa2, "f64.div": 0xa3, "f64.max": 0xa5,
  "i32.trunc_f64_s": 0xaa, "i64.extend_i32_s": 0xac, "f32.convert_i32_s": 0xb2, "f32.convert_i32_u": 0xb3, "i32.reinterpret_f32": 0xbc, "f32.reinterpret_i32": 0xbe, "f32.demote_f64": 0xb6, "f64.promote_f32": 0xbb, "f64.reinterpret_i64": 0xbf,
} as const;
export type PlainOp = keyof typeof PLAIN;

/** One function body under construction. Locals are numbered after the parameters. */
export class Func {
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];

  constructor(readonly name: string, readonly params: ValType[], readonly results: ValType[] = []) {}

  /** A new local of this type; returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  get(i: number): this { this.code.push(0x20); uleb(this.code, i); return this; }
  set(i: number): this { this.code.push(0x21); uleb(this.code, i); return this; }
  tee(i: number): this { this.code.push(0x22); uleb(this.code, i); return this; }
  i32(v: number): this { this.code.push(0x41); sleb(this.code, v | 0); return this; }
  op(name: PlainOp): this { this.code.push(PLAIN[name]); return this; }
  /** select: the first of two values when the i32 on top is non-zero, else the second. */
  select(): this { this.code.push(0x1b); return this; }
  /** i32.trunc_sat_f32_s: f32 -> i32 saturating (NaN -> 0), never a trap. */
  truncSatF32(): this { this.code.push(0xfc, 0x00); return this; }
  /** i32.trunc_sat_f64_s: f64 -> i32 saturating (NaN -> 0), never a trap. */
  truncSatF64(): this { this.code.push(0xfc, 0x02); return this; }

  // Control flow: every block/loop/if has an empty result type; `end` closes it.
  block(): this { this.code.push(0x02, 0x40); return this; }
  loop(): this { this.code.push(0x03, 0x40); return this; }
  if_(): this { this.code.push(0x04, 0x40); return this; }
  else_(): this { this.code.push(0x05); return this; }
  end(): this { this.code.push(0x0b); return this; }
  br(depth: number): this { this.code.push(0x0c); uleb(this.code, depth); return this; }
  brIf(depth: number): this { this.code.push(0x0d); uleb(this.code, depth); return this; }
  call(index: number): this { this.code.push(0x10); uleb(this.code, index); return this; }

  i64(v: number): this { this.code.push(0x42); sleb(this.code, v | 0); return this; }
  f32c(v: number): this { this.code.push(0x43, ...new Uint8Array(Float32Array.of(v).buffer)); return this; }
  f64c(v: number): this { this.code.push(0x44, ...new Uint8Array(Float64Array.of(v).buffer)); return this; }
  /** i32.load / f32.load with a constant byte offset. */
  i32Load(offset = 0): this { this.code.push(0x28, 2); uleb(this.code, offset); return this; }
  /** i32.load8_u / i32.load8_s with a constant byte offset. */
  i32Load8u(offset = 0): this { this.code.push(0x2d, 0); uleb(this.code, offset); return this; }
  i32Load8s(offset = 0): this { this.code.push(0x2c, 0); uleb(this.code, offset); return this; }
  /** i32.store with a constant byte offset. */
  i32Store(offset = 0): this { this.code.push(0x36, 2); uleb(this.code, offset); return this; }
  f32Load(offset = 0): this { this.code.push(0x2a, 2); uleb(this.code, offset); return this; }
  /** f32.store with a constant byte offset (alignment hint 4). */
  f32Store(offset = 0): this { this.code.push(0x38, 2); uleb(this.code, offset); return this; }
  /** i32.store16 with a constant byte offset. */
  i32Store16(offset = 0): this { this.code.push(0x3b, 1); uleb(this.code, offset); return this; }

  simd(name: SimdOp): this { this.code.push(0xfd); uleb(this.code, SIMD[name]); return this; }
  /** A SIMD memory access with a constant byte offset (alignment hint 1: unaligned is fine). */
  simdMem(name: SimdOp, offset = 0): this { this.simd(name); this.code.push(0); uleb(this.code, offset); return this; }
  /** i8x16.shuffle / i8x16.extract-style lane immediates. */
  lanes(bytes: number[]): this { this.code.push(...bytes); return this; }
  /** v128.const from 16 bytes. */
  v128Bytes(bytes: number[]): this { this.code.push(0xfd, 0x0c, ...bytes); return this; }
  v128I32(a: number, b: number, c: number, d: number): this {
    const bytes: number[] = [];
    for (const v of [a, b, c, d]) bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this.v128Bytes(bytes);
  }

  /** The function body as the code section wants it: locals, instructions, end. */
  body(): number[] {
    const out: number[] = [];
    // Run-length encode the local types.
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      if (groups.length && groups[groups.length - 1][1] === t) groups[groups.length - 1][0]++;
      else groups.push([1, t]);
    }
    uleb(out, groups.length);
    for (const [n, t] of groups) {
      uleb(out, n);
      out.push(t);
    }
    out.push(...this.code, 0x0b);
    const sized: number[] = [];
    uleb(sized, out.length);
    return sized.concat(out);
  }
}

function section(out: number[], id: number, content: number[]): void {
  out.push(id);
  uleb(out, content.length);
  for (const b of content) out.push(b);
}

function name(out: number[], s: string): void {
  const bytes = Buffer.from(s, "utf8");
  uleb(out, bytes.length);
  out.push(...bytes);
}

/** A module importing memory "env"."memory" (up to maxPages pages, shared or not) and exporting every function. */
export function moduleBytes(funcs: Func[], maxPages: number, shared = false): Uint8Array<ArrayBuffer> {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  // One type per function (duplicates are allowed).
  const types: number[] = [];
  uleb(types, funcs.length);
  for (const f of funcs) {
    types.push(0x60);
    uleb(types, f.params.length);
    types.push(...f.params);
    uleb(types, f.results.length);
    types.push(...f.results);
  }
  section(out, 1, types);
  const imports: number[] = [1];
  name(imports, "env");
  name(imports, "memory");
  imports.push(0x02, shared ? 0x03 : 0x01); // memory with a maximum (0x03: shared)
  uleb(imports, 1);
  uleb(imports, maxPages);
  section(out, 2, imports);
  const fns: number[] = [];
  uleb(fns, funcs.length);
  funcs.forEach((_, i) => uleb(fns, i));
  section(out, 3, fns);
  const exports: number[] = [];
  uleb(exports, funcs.length);
  funcs.forEach((f, i) => {
    name(exports, f.name);
    exports.push(0x00);
    uleb(exports, i);
  });
  section(out, 7, exports);
  const code: number[] = [];
  uleb(code, funcs.length);
  for (const f of funcs) code.push(...f.body());
  section(out, 10, code);
  return Uint8Array.from(out);
}
