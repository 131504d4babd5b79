// The one WebAssembly module of the engine's kernels: the attention kernel and, for every
// weight record layout, the matMul entry point with its 1- to 4-item dot tiles.

import { moduleBytes, type Func } from "./asm.js";
import { attendFunc } from "./attention.js";
import { DECODERS, dotTile, matMulFunc, type KernelName } from "./matmul.js";

/** The module: for each kernel name, dot1_ .. dot4_ and the exported entry mm_<name>; attend. */
export function buildModule(maxPages: number): Uint8Array<ArrayBuffer> {
  const funcs: Func[] = [attendFunc()];
  for (const name of Object.keys(DECODERS) as KernelName[]) {
    const i = funcs.length;
    funcs.push(dotTile(name, 1), dotTile(name, 2), dotTile(name, 3), dotTile(name, 4));
    funcs.push(matMulFunc(name, [i, i + 1, i + 2, i + 3]));
  }
  return moduleBytes(funcs, maxPages);
}
