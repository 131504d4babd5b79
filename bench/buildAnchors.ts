// Builds llama.cpp's own programs from the source that node-llama-cpp ships (a git bundle of the
// exact release its binaries were built from), as the native peers specdec is measured against:
// llama-bench (plain decoding speed), llama-speculative-simple (a draft model), llama-lookup
// (prompt lookup), llama-lookahead and llama-simple. CPU only, Release, only those targets.
//
//   npm run bench:anchors [-- --force]
//
// The build goes to $SPECDEC_ANCHORS_DIR, default ~/.cache/specdec/llama.cpp-<tag>/ (outside the
// repository); the binaries end up in <dir>/build/bin/. A finished build is not redone unless
// --force. About 6 minutes on 2 cores.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { ANCHOR_TARGETS, anchorsDir, llamaSource } from "./anchors.js";

function fail(message: string): never {
  process.stderr.write(`bench:anchors: error: ${message}\n`);
  process.exit(1);
}

function run(cmd: string, args: string[], cwd?: string): void {
  const r = spawnSync(cmd, args, { cwd, stdio: "inherit" });
  if (r.error) fail(`${cmd} could not run: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.slice(0, 3).join(" ")} ... exited with ${r.status ?? r.signal}`);
}

function have(cmd: string): boolean {
  return spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
}

function main(): void {
  const force = process.argv.includes("--force");
  const { bundle, tag } = llamaSource();
  const dir = anchorsDir();
  const src = join(dir, "src"), build = join(dir, "build"), stamp = join(dir, "built.json");
  if (!force && existsSync(stamp) && ANCHOR_TARGETS.every((t) => existsSync(join(build, "bin", t)))) {
    console.log(`anchors already built in ${join(build, "bin")} (--force rebuilds)`);
    return;
  }
  for (const tool of ["git", "cmake", "cc", "c++"]) if (!have(tool)) fail(`'${tool}' is not installed: the anchors need git, cmake and a C/C++ compiler`);
  if (!existsSync(bundle)) fail(`the llama.cpp source bundle is missing (${bundle}): is node-llama-cpp installed?`);
  mkdirSync(dir, { recursive: true });
  if (force || !existsSync(join(src, "CMakeLists.txt"))) {
    rmSync(src, { recursive: true, force: true });
    run("git", ["clone", "--quiet", bundle, src]);
  }
  const t0 = Date.now();
  run("cmake", [
    "-S", src, "-B", build, "-G", existsSync("/usr/bin/ninja") || have("ninja") ? "Ninja" : "Unix Makefiles",
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=ON",
    "-DGGML_CUDA=OFF", "-DGGML_VULKAN=OFF", "-DGGML_METAL=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_SERVER=OFF",
  ]);
  run("cmake", ["--build", build, "--config", "Release", "-j", String(cpus().length || 1), ...ANCHOR_TARGETS.flatMap((t) => ["--target", t])]);
  const missing = ANCHOR_TARGETS.filter((t) => !existsSync(join(build, "bin", t)));
  if (missing.length) fail(`the build finished without ${missing.join(", ")}`);
  writeFileSync(stamp, JSON.stringify({ tag, targets: ANCHOR_TARGETS, seconds: Math.round((Date.now() - t0) / 1000) }) + "\n");
  console.log(`anchors built in ${join(build, "bin")} (${Math.round((Date.now() - t0) / 1000)} s): ${ANCHOR_TARGETS.join(", ")}`);
}

main();
