// The one WebAssembly module of the engine's kernels: the attention and SwiGLU kernels, the f32 tile
// kernels and, for every weight record layout, its matMul entry point mm_<layout> with the
// batch-1 and unpacking kernels it calls.

import { moduleBytes, type Func } from "./asm.js";
import { attendFunc, attendHeadFunc } from "./attention.js";
import { DECODERS, type DecoderName } from "./decoders.js";
import { swigluFunc } from "./elementwise.js";
import { mmFunc, mvFunc, tileF32, unpackFunc } from "./matmul.js";

/** The module's functions, in index order (every one is exported under its name). */
export function kernelFuncs(): Func[] {
  const funcs: Func[] = [];
  const add = (fn: Func): number => funcs.push(fn) - 1;
  add(attendFunc(add(attendHeadFunc())));
  add(swigluFunc());
  const tile1 = add(tileF32(1)), tile2 = add(tileF32(2));
  add(mmFunc("f32", { tile1, tile2 }));
  for (const name of Object.keys(DECODERS) as DecoderName[]) {
    const mv = add(mvFunc(name)), unpack = add(unpackFunc(name));
    add(mmFunc(name, { tile1, tile2, mv, unpack }));
  }
  return funcs;
}

/** The module's bytes, importing a memory of up to maxPages pages (shared when asked). */
export function buildModule(maxPages: number, shared = false): Uint8Array<ArrayBuffer> {
  return moduleBytes(kernelFuncs(), maxPages, shared);
}
