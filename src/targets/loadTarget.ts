// Backend names → targets. The llama.cpp module is imported only when a llama.cpp target is
// asked for, so the library (and the built-in backend) start without loading native code.
import { OptionError, SpecdecError } from "../errors.js";
import type { GpuChoice } from "./llamaCpp/packages.js";
import { CAPABILITY_TEXT, type Capability, type Target, type TargetCapabilities } from "./target.js";

export const BACKENDS = ["llama.cpp", "builtin"] as const;
export type Backend = (typeof BACKENDS)[number];

/** What each backend can do (the loop's capability errors name the backends that have one). */
export const BACKEND_CAPABILITIES: Record<Backend, TargetCapabilities> = {
  "llama.cpp": { treeAttention: true, hiddenStates: true },
  builtin: { treeAttention: true, hiddenStates: true },
};

/** Backends that have a capability. */
export function backendsWith(capability: Capability): Backend[] {
  return BACKENDS.filter((b) => BACKEND_CAPABILITIES[b][capability]);
}

/** Throw a one-line error naming what `target` lacks of `needs` (for `method`) and which backends have it. */
export function requireCapabilities(target: Pick<Target, "backend" | "capabilities">, method: string, needs: readonly Capability[]): void {
  for (const need of needs) {
    if (target.capabilities[need]) continue;
    const have = backendsWith(need);
    throw new OptionError(`method '${method}' needs ${CAPABILITY_TEXT[need]}, which the ${target.backend} backend does not have${have.length ? ` (use {backend} ${have.join(" or ")})` : ""}`);
  }
}

export interface TargetOptions {
  /** Context size in tokens. Default: the model's training context, at most 4096. */
  contextSize?: number;
  /** CPU threads for one-token passes (llama.cpp), for every pass (built-in engine). Default 1. */
  threads?: number;
  /** CPU threads for passes of several tokens (llama.cpp). Default: `threads`. */
  batchThreads?: number;
  /**
   * Let each pass choose its thread count, 1 .. this (the cost model picks per pass size:
   * `--threads auto`). Default: none, every pass on threads / batchThreads.
   */
  maxThreads?: number;
  /** Built-in engine: "q8" rounds the inputs of products with quantized weights to 8 bits, as llama.cpp does. Default "f32". */
  activations?: "f32" | "q8";
  /** The ggml backend (llama.cpp): auto, cpu, cuda, vulkan. Default auto. */
  gpu?: GpuChoice;
  /** Layers offloaded to the GPU (llama.cpp; -1 = all). Default: all with a GPU, else 0. */
  gpuLayers?: number;
}

export function parseBackend(name: string): Backend {
  if ((BACKENDS as readonly string[]).includes(name)) return name as Backend;
  throw new SpecdecError(`unknown backend '${name}' (choose one of: ${BACKENDS.join(", ")})`);
}

/** Load a model file as a Target on the chosen backend; the file is validated by our own reader first. */
export async function loadTarget(backend: Backend, path: string, options: TargetOptions = {}): Promise<Target> {
  switch (backend) {
    case "llama.cpp": {
      if (options.activations === "q8") throw new OptionError("{activations} q8 applies to the built-in engine (llama.cpp rounds its activations itself): use {backend} builtin");
      const { LlamaCppTarget } = await import("./llamaCpp/llamaCppTarget.js");
      return LlamaCppTarget.load(path, { contextSize: options.contextSize, threads: options.threads, batchThreads: options.batchThreads, maxThreads: options.maxThreads, gpu: options.gpu, gpuLayers: options.gpuLayers });
    }
    case "builtin": {
      const { BuiltinTarget } = await import("./builtin.js");
      return BuiltinTarget.load(path, { contextSize: options.contextSize, threads: options.threads, maxThreads: options.maxThreads, activations: options.activations });
    }
    default:
      throw new SpecdecError(`unknown backend '${backend as string}' (choose one of: ${BACKENDS.join(", ")})`);
  }
}
