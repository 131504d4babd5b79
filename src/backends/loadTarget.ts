import { SpecdecError } from "../errors.js";
import type { Target } from "../target.js";
import { BuiltinTarget } from "./builtin.js";
import { inspectModelFile } from "../gguf/modelInfo.js";
import { LlamaCppTarget } from "./llamaCpp.js";

export const BACKENDS = ["llama.cpp", "builtin"] as const;
export type Backend = (typeof BACKENDS)[number];

export interface TargetOptions {
  contextSize?: number;
  /** CPU threads (llama.cpp and the built-in engine). */
  threads?: number;
  /** Built-in engine only: 8-bit activations for quantized weights. */
  activations?: "f32" | "q8";
}

/** Load a model file as a Target on the chosen backend; the file is validated first. */
export async function loadTarget(backend: Backend, path: string, options: TargetOptions = {}): Promise<Target> {
  switch (backend) {
    case "llama.cpp":
      return LlamaCppTarget.load(path, options);
    case "builtin":
      inspectModelFile(path);
      return BuiltinTarget.load(path, { contextSize: options.contextSize, threads: options.threads, activations: options.activations });
    default:
      throw new SpecdecError(`unknown backend '${backend as string}' (choose one of: ${BACKENDS.join(", ")})`);
  }
}
