// The options that choose and load the target, shared by generate, bench, serve and demo.
import { cpus } from "node:os";
import { InvalidArgumentError, Option, type Command } from "commander";
import type { HelperBackend, TargetSpec } from "../session.js";
import { GPU_CHOICES, type GpuChoice } from "../targets/llamaCpp/packages.js";
import { BACKENDS, type Backend } from "../targets/loadTarget.js";
import { integer } from "./options.js";

export interface TargetCliOptions {
  model?: string;
  backend?: Backend;
  contextSize?: number;
  threads: number | "auto";
  batchThreads?: number;
  gpu: GpuChoice;
  gpuLayers?: number;
  activations?: "f32" | "q8";
  helperBackend: HelperBackend;
}

/** "auto" or a thread count. */
function threadsValue(value: string): number | "auto" {
  if (value === "auto") return "auto";
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 512) throw new InvalidArgumentError(`expected auto or a number from 1 to 512, got '${value}'.`);
  return n;
}

/**
 * Add --model (unless the command has its own), --backend, --context-size, --threads,
 * --batch-threads, --gpu, --gpu-layers, --activations, --helper-backend.
 */
export function addTargetOptions(cmd: Command, what: { model?: string; backend?: string } = {}): Command {
  if (what.model !== "none") cmd.option("--model <file>", what.model ?? "target model (GGUF); default: the stories model shipped in models/ (or in $SPECDEC_MODELS)");
  if (what.backend !== "none") cmd.addOption(new Option("--backend <name>", what.backend ?? "inference backend: llama.cpp (default) or builtin (specdec's own engine)").choices(BACKENDS));
  return cmd
    .option("--context-size <n>", "context size in tokens (default: the model's training context, at most 4096)", integer(16, 1 << 20))
    .addOption(new Option("--threads <n>", "CPU threads: auto (each pass on the thread count its size runs fastest with, as measured for the cost model) or a number (llama.cpp's one-token passes; every pass of the built-in engine, whose results are the same for any count)").argParser(threadsValue).default("auto"))
    .option("--batch-threads <n>", "llama.cpp: CPU threads for passes of several tokens (default: --threads, or all cores with auto)", integer(1, 512))
    .addOption(new Option("--gpu <kind>", "llama.cpp compute backend: auto (a GPU whose driver and package are installed, else CPU), cpu, cuda, vulkan").choices(GPU_CHOICES).default("auto"))
    .option("--gpu-layers <n>", "layers llama.cpp offloads to the GPU (-1 = all; default all with a GPU)", integer(-1, 100_000))
    .addOption(new Option("--helper-backend <name>", "where a helper model (--draft-model) runs: auto (the built-in engine for a file of at most 64 MiB of an architecture it runs: a tiny model's pass costs a fraction of a llama.cpp call there; else the target's backend), llama.cpp or builtin").choices(["auto", ...BACKENDS]).default("auto"))
    .addOption(new Option("--activations <kind>", "built-in engine: q8 rounds the inputs of products with quantized weights to 8 bits, as llama.cpp does (faster, closer to llama.cpp; speculation stays exact); f32 keeps them (default)").choices(["f32", "q8"]));
}

/** The target settings the options say; --threads auto lets every pass choose from 1 to all cores. */
export function targetSpecFrom(o: TargetCliOptions): TargetSpec {
  const cores = Math.max(1, cpus().length);
  const auto = o.threads === "auto";
  return {
    model: o.model,
    backend: o.backend,
    contextSize: o.contextSize,
    threads: auto ? 1 : (o.threads as number),
    batchThreads: o.batchThreads ?? (auto ? cores : undefined),
    maxThreads: auto && cores > 1 ? cores : undefined,
    gpu: o.gpu,
    gpuLayers: o.gpuLayers,
    activations: o.activations,
    helperBackend: o.helperBackend,
  };
}
