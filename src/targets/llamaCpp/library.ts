// Loading libllama: find the platform package's libraries, check the struct layouts against the
// library's own defaults, switch logging off natively, load the ggml compute backends, and say
// which devices (and which CPU variant) came up. Once per process.

import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import * as koffi from "koffi";
import { SpecdecError } from "../../errors.js";
import { bindGgml, bindLlama, bindThreadpool, type GgmlApi, type LlamaApi, type Ptr, type ThreadpoolApi } from "./api.js";
import { checkDefaults, GGML_BACKEND_DEVICE_TYPE_GPU } from "./layouts.js";
import { findBinaries, type GpuChoice, type LlamaBinaries } from "./packages.js";

/** Set to 1 to let llama.cpp print its log to stderr (through its own native default logger). */
export const LOG_ENV = "SPECDEC_LLAMA_LOG";
/** Load only this ggml CPU variant (e.g. "haswell", "x64") instead of the best one for this CPU. */
export const CPU_VARIANT_ENV = "SPECDEC_GGML_CPU_VARIANT";

export interface LibraryOptions {
  gpu?: GpuChoice;
  /** Folder to load the libraries from instead of the platform package (see packages.ts). */
  binsDir?: string;
  /** A ggml CPU variant to load instead of the best one (its libggml-cpu-<name> file). */
  cpuVariant?: string;
}

export interface DeviceInfo {
  readonly name: string;
  readonly description: string;
  readonly gpu: boolean;
}

/** The loaded libraries and what they found. */
export interface LlamaLibrary {
  readonly binaries: LlamaBinaries;
  readonly llama: LlamaApi;
  readonly ggml: GgmlApi;
  /** The CPU backend's persistent threadpools, when it exports them. */
  readonly threadpool: ThreadpoolApi | undefined;
  readonly devices: readonly DeviceInfo[];
  /** The ggml CPU variant that was loaded ("zen4", "haswell", ...), when it can be told. */
  readonly cpuVariant: string | undefined;
  /**
   * The instruction-set features the loaded CPU backend was built with and uses, as ggml reports
   * them ("AVX2", "AVX512_BF16", "AMX_INT8", ...): which kernels, and so which rounding, run.
   */
  readonly cpuFeatures: ReadonlySet<string>;
  /** Milliseconds spent loading (libraries, backends, checks). */
  readonly loadMs: number;
}

let loaded: { key: string; library: LlamaLibrary } | undefined;

/** Load libllama once; later calls return the same library (and refuse a different choice). */
export function loadLibrary(options: LibraryOptions = {}): LlamaLibrary {
  const gpu = options.gpu ?? "auto";
  const cpuVariant = options.cpuVariant ?? (process.env[CPU_VARIANT_ENV] || undefined);
  const key = JSON.stringify([gpu, options.binsDir ?? process.env.SPECDEC_LLAMA_BINS ?? null, cpuVariant ?? null]);
  if (loaded) {
    if (loaded.key !== key) throw new SpecdecError(`llama.cpp is already loaded with other settings in this process (--gpu ${JSON.parse(loaded.key)[0]})`);
    return loaded.library;
  }
  const t0 = performance.now();
  const binaries = findBinaries(gpu, hasDriver, options.binsDir);
  const open = (path: string) => {
    try {
      return koffi.load(path);
    } catch (e) {
      throw new SpecdecError(`cannot load ${path}: ${firstLine(e)}`);
    }
  };
  const baseLib = open(binaries.libggmlBase); // the others depend on it; loading it first by path finds it without LD_LIBRARY_PATH
  const ggmlLib = open(binaries.libggml);
  const llamaLib = open(binaries.libllama);
  let llama: LlamaApi, ggml: GgmlApi;
  try {
    ggml = bindGgml(ggmlLib, baseLib);
    llama = bindLlama(llamaLib);
  } catch (e) {
    throw new SpecdecError(`${binaries.libllama} lacks a function this binding needs (${firstLine(e)}): install node-llama-cpp 3.21.1`);
  }

  // Logging: llama.cpp logs from whatever thread it is on (ggml's worker threads too), so a
  // JavaScript callback is not an option (koffi would have to queue it to the main thread,
  // which is blocked in the native call). The callback installed instead is a native function
  // that ignores its arguments and has no effect: llama_max_devices. Calling it with the
  // callback's three arguments is sound on the 64-bit ABIs llama.cpp runs on (System V x86-64,
  // Windows x64, AArch64: arguments in registers, the caller cleans up). With
  // SPECDEC_LLAMA_LOG=1, NULL restores llama.cpp's own logger (stderr). Set before anything
  // else logs, ggml's backend loader included (llama_log_set sets ggml's logger too).
  llama.llama_log_set(process.env[LOG_ENV] === "1" ? null : (llamaLib.symbol("llama_max_devices") as Ptr), null);

  checkDefaults(basename(binaries.libllama), llama.llama_model_default_params(), llama.llama_context_default_params());

  if (cpuVariant) {
    const load = ggmlLib.func("void *ggml_backend_load(const char *path)") as (path: string) => Ptr | null;
    const file = join(binaries.binsDir, `libggml-cpu-${cpuVariant}${binaries.libggmlBase.slice(binaries.libggmlBase.lastIndexOf("."))}`);
    if (!load(file)) throw new SpecdecError(`the ggml CPU variant '${cpuVariant}' did not load (${file}: missing, or this CPU lacks its instructions)`);
  } else {
    ggml.ggml_backend_load_all_from_path(binaries.binsDir);
  }
  llama.llama_backend_init();

  const devices: DeviceInfo[] = [];
  for (let i = 0; i < ggml.ggml_backend_dev_count(); i++) {
    const dev = ggml.ggml_backend_dev_get(i);
    devices.push({ name: ggml.ggml_backend_dev_name(dev), description: ggml.ggml_backend_dev_description(dev), gpu: ggml.ggml_backend_dev_type(dev) === GGML_BACKEND_DEVICE_TYPE_GPU });
  }
  if (!devices.some((d) => !d.gpu && d.name.startsWith("CPU"))) throw new SpecdecError(`no ggml CPU backend loaded from ${binaries.binsDir} (its libggml-cpu-* files are missing or do not fit this CPU)`);
  if ((gpu === "cuda" || gpu === "vulkan") && !devices.some((d) => d.gpu))
    throw new SpecdecError(`--gpu ${gpu}: no ${gpu === "cuda" ? "CUDA" : "Vulkan"} device found (is the driver installed? ${binaries.packageName} is)`);

  const library: LlamaLibrary = {
    binaries, llama, ggml, threadpool: bindThreadpool(ggml), devices, cpuVariant: cpuVariant ?? loadedCpuVariant(), cpuFeatures: parseFeatures(llama.llama_print_system_info()), loadMs: performance.now() - t0,
  };
  loaded = { key, library };
  return library;
}

/** "CPU : SSE3 = 1 | AVX = 1 | ..." (llama_print_system_info) -> the features that are on. */
function parseFeatures(info: string): Set<string> {
  const on = new Set<string>();
  for (const m of info.matchAll(/([A-Z0-9_]+) = 1/g)) on.add(m[1]);
  return on;
}

/** The CPU variant library ggml picked, from the process's mapped files (Linux), else undefined. */
function loadedCpuVariant(): string | undefined {
  try {
    const m = /libggml-cpu-([\w-]+)\.so/.exec(readFileSync("/proc/self/maps", "utf8"));
    return m?.[1];
  } catch {
    return undefined;
  }
}

/** Whether a GPU driver's user-space library loads here (what "--gpu auto" needs before choosing a GPU package). */
function hasDriver(kind: "cuda" | "vulkan"): boolean {
  const names =
    process.platform === "win32" ? { cuda: ["nvcuda.dll"], vulkan: ["vulkan-1.dll"] }[kind]
    : process.platform === "darwin" ? { cuda: [], vulkan: ["libvulkan.1.dylib"] }[kind]
    : { cuda: ["libcuda.so.1"], vulkan: ["libvulkan.so.1"] }[kind];
  for (const name of names) {
    try {
      koffi.load(name).unload();
      return true;
    } catch {
      // not installed
    }
  }
  return false;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0].slice(0, 300);
}
