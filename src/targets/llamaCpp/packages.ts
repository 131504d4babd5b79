// Where the llama.cpp shared libraries are: in node-llama-cpp's prebuilt platform packages
// (@node-llama-cpp/<platform>[-cuda|-vulkan], pinned with node-llama-cpp itself), found through
// Node's resolver from this package, never by a fixed path.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { SpecdecError } from "../../errors.js";

/** Which ggml compute backend to load. "auto": the first installed GPU package, else the CPU. */
export const GPU_CHOICES = ["auto", "cpu", "cuda", "vulkan"] as const;
export type GpuChoice = (typeof GPU_CHOICES)[number];

/** Overrides the folder the libraries are loaded from (a folder laid out like a platform package's bins/<name>/). */
export const BINS_ENV = "SPECDEC_LLAMA_BINS";

/** The shared libraries of one platform package. */
export interface LlamaBinaries {
  /** The platform package's name, e.g. "@node-llama-cpp/linux-x64". */
  readonly packageName: string;
  /** The folder holding the libraries (also where ggml looks for its backend variants). */
  readonly binsDir: string;
  readonly libllama: string;
  readonly libggml: string;
  readonly libggmlBase: string;
  /** "cpu", "cuda" or "vulkan": what this package adds to the CPU backend. */
  readonly gpu: Exclude<GpuChoice, "auto">;
}

const require = createRequire(import.meta.url);

/** The root folder of an installed package, or undefined when it is not installed. */
export function packageRoot(name: string): string | undefined {
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    return undefined;
  }
  for (let dir = dirname(entry); ; ) {
    const pj = join(dir, "package.json");
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, "utf8")) as { name?: string }).name === name) return dir;
      } catch {
        // not the package's own package.json: keep going up
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The platform package names for this machine, GPU ones first ("auto" prefers them). */
function platformPackages(): { name: string; gpu: Exclude<GpuChoice, "auto"> }[] {
  const base = `@node-llama-cpp/${process.platform}-${process.arch}`;
  return [
    { name: `${base}-cuda`, gpu: "cuda" },
    { name: `${base}-vulkan`, gpu: "vulkan" },
    { name: base, gpu: "cpu" },
  ];
}

/**
 * The libraries in one bins folder. Names carry the release tag (libllama.v0.4.0.so, or
 * libllama.cuda.v0.4.0.so in the CUDA package); the base library has none.
 */
export function binariesIn(binsDir: string, packageName: string, gpu: LlamaBinaries["gpu"]): LlamaBinaries {
  let files: string[];
  try {
    files = readdirSync(binsDir);
  } catch {
    throw new SpecdecError(`llama.cpp libraries not found: ${binsDir} does not exist (reinstall ${packageName}, or set ${BINS_ENV})`);
  }
  const ext = process.platform === "win32" ? "dll" : process.platform === "darwin" ? "dylib" : "so";
  const pick = (stem: string) => files.find((f) => f.startsWith(`${stem}.`) && f.endsWith(`.${ext}`) && !f.includes("common"));
  const libllama = pick("libllama"), libggml = pick("libggml"), libggmlBase = files.find((f) => f === `libggml-base.${ext}`);
  const missing = [!libllama && `libllama*.${ext}`, !libggml && `libggml*.${ext}`, !libggmlBase && `libggml-base.${ext}`].filter(Boolean);
  if (missing.length) throw new SpecdecError(`llama.cpp libraries incomplete in ${binsDir}: missing ${missing.join(", ")} (reinstall ${packageName}, or set ${BINS_ENV})`);
  return { packageName, binsDir, libllama: join(binsDir, libllama!), libggml: join(binsDir, libggml!), libggmlBase: join(binsDir, libggmlBase!), gpu };
}

/**
 * Find the libraries for a GPU choice. "auto" takes a GPU package only where its driver is
 * present (`hasDriver`: every install has the CUDA and Vulkan packages, most machines have no
 * GPU), else the CPU package. `binsDir` (or $SPECDEC_LLAMA_BINS) replaces the search: the
 * libraries are then taken from that folder.
 */
export function findBinaries(gpu: GpuChoice, hasDriver: (gpu: "cuda" | "vulkan") => boolean, binsDir = process.env[BINS_ENV]): LlamaBinaries {
  if (binsDir) return binariesIn(binsDir, binsDir, gpu === "auto" ? "cpu" : gpu);
  const candidates = platformPackages().filter((p) => (gpu === "auto" ? p.gpu === "cpu" || hasDriver(p.gpu) : p.gpu === gpu));
  for (const { name, gpu: kind } of candidates) {
    const root = packageRoot(name);
    if (!root) continue;
    const dir = join(root, "bins", name.slice("@node-llama-cpp/".length));
    if (existsSync(dir)) return binariesIn(dir, name, kind);
  }
  const wanted = candidates.map((c) => c.name).join(" or ");
  throw new SpecdecError(`llama.cpp backend unavailable: ${wanted} is not installed (npm ci installs the one for this platform; use --backend builtin otherwise)`);
}
