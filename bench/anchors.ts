// The llama.cpp source the native peers are built from (buildAnchors.ts); where they are built
// and found is src/bench/peers/native.ts (anchorsDir, nativeProgram).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/targets/llamaCpp/packages.js";
export { anchorsDir, nativeProgram as anchorBinary, NATIVE_PROGRAMS as ANCHOR_TARGETS } from "../src/bench/peers/native.js";

/** Where node-llama-cpp keeps the llama.cpp source bundle and the release tag of its binaries. */
export function llamaSource(): { bundle: string; tag: string } {
  const root = packageRoot("node-llama-cpp");
  if (!root) throw new Error("node-llama-cpp is not installed");
  const info = JSON.parse(readFileSync(join(root, "llama", "llama.cpp.info.json"), "utf8")) as { tag: string };
  return { bundle: join(root, "llama", "gitRelease.bundle"), tag: info.tag };
}
