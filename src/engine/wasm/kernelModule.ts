// The one WebAssembly module of the engine's kernels: the attention and SwiGLU kernels, the f32 tile
// kernels and, for every weight record layout, its matMul entry point mm_<layout> with the
// unpacking kernel it calls, and for the quantized layouts mmq_<layout> on 8-bit
// activations with the quantizers quant_q8_0, quant_q8_1, quant_q8_K.

import { moduleBytes, type Func } from "./asm.js";
import { attendFunc, attendHeadFunc } from "./attention.js";
import { DECODERS, type DecoderName } from "./decoders.js";
import { swigluFunc } from "./elementwise.js";
import { mmFunc, tileF32, unpackFunc } from "./matmul.js";
import { f16RoundFunc, mmQ8Func, quantizeFunc, tileQ8Func } from "./matmulQ8.js";

/**
 * The module's functions, in index order (every one is exported under its name). fma: the f32
 * products and attention use fused multiply-adds (relaxed SIMD).
 */
export function kernelFuncs(fma: boolean): Func[] {
  const funcs: Func[] = [];
  const add = (fn: Func): number => funcs.push(fn) - 1;
  add(attendFunc(add(attendHeadFunc(fma))));
  add(swigluFunc());
  const tile1 = add(tileF32(1, fma)), tile2 = add(tileF32(2, fma));
  add(mmFunc("f32", { tile1, tile2 }));
  for (const name of Object.keys(DECODERS) as DecoderName[]) {
    const unpack = add(unpackFunc(name));
    add(mmFunc(name, { tile1, tile2, unpack }));
    if (DECODERS[name].int) add(mmQ8Func(name, add(tileQ8Func(name))));
  }
  const f16round = add(f16RoundFunc());
  for (const v of ["q8_0", "q8_1", "q8_K"] as const) add(quantizeFunc(v, f16round));
  return funcs;
}

/** The module's bytes, importing a memory of up to maxPages pages (shared when asked), with fused multiply-adds when asked. */
export function buildModule(maxPages: number, shared = false, fma = false): Uint8Array<ArrayBuffer> {
  return moduleBytes(kernelFuncs(fma), maxPages, shared);
}
