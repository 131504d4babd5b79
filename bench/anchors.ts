// Where the native llama.cpp programs (the benchmarks' peers) are built: see buildAnchors.ts.

import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/targets/llamaCpp/packages.js";

export const ANCHOR_TARGETS = ["llama-bench", "llama-speculative-simple", "llama-lookup", "llama-lookahead", "llama-simple"] as const;

/** Where node-llama-cpp keeps the llama.cpp source bundle and the release tag of its binaries. */
export function llamaSource(): { bundle: string; tag: string } {
  const root = packageRoot("node-llama-cpp");
  if (!root) throw new Error("node-llama-cpp is not installed");
  const info = JSON.parse(readFileSync(join(root, "llama", "llama.cpp.info.json"), "utf8")) as { tag: string };
  return { bundle: join(root, "llama", "gitRelease.bundle"), tag: info.tag };
}

/** The folder the anchors are built in (created on demand). */
export function anchorsDir(): string {
  return process.env.SPECDEC_ANCHORS_DIR ?? join(homedir(), ".cache", "specdec", `llama.cpp-${llamaSource().tag}`);
}

/** Path of a built anchor binary, or undefined when `npm run bench:anchors` has not built it. */
export function anchorBinary(name: (typeof ANCHOR_TARGETS)[number]): string | undefined {
  const p = join(anchorsDir(), "build", "bin", name);
  return existsSync(p) ? p : undefined;
}

