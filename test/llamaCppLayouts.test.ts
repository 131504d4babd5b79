// The struct layouts and enum values the binding declares (src/targets/llamaCpp/layouts.ts)
// against the llama.h it was written for: the headers are taken from the llama.cpp source
// bundle inside node-llama-cpp (the release its binaries were built from) into a temp folder,
// and a small C program compiled with the system compiler prints sizeof / offsetof of every
// field. Then the check the binding makes at load: libllama's default parameters read through
// the declared layouts, and a wrong default refused with one line.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as koffi from "koffi";
import { SpecdecError } from "../src/errors.js";
import {
  checkDefaults, defaultsMismatch, GGML_BACKEND_DEVICE_TYPE_GPU, GGML_TYPE, KNOWN_CONTEXT_DEFAULTS, KNOWN_MODEL_DEFAULTS,
  LLAMA_FLASH_ATTN_TYPE, LLAMA_POOLING_TYPE_NONE, LLAMA_SPLIT_MODE_NONE, STRUCT_SIZES, STRUCTS,
} from "../src/targets/llamaCpp/layouts.js";
import { loadLibrary } from "../src/targets/llamaCpp/library.js";
import { packageRoot } from "../src/targets/llamaCpp/packages.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "specdec-layouts-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The C compiler: $CC, else cc. Fails loudly when there is none (CI has gcc). */
function compiler(): string {
  const cc = process.env.CC || "cc";
  const r = spawnSync(cc, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) throw new Error(`no C compiler found ('${cc}'): the layout test compiles a C file against llama.h (install gcc, or set CC)`);
  return cc;
}

/** llama.h and the ggml headers it includes, from node-llama-cpp's source bundle, into `dir`. */
function extractHeaders(): void {
  const root = packageRoot("node-llama-cpp");
  assert.ok(root, "node-llama-cpp is not installed");
  const bundle = join(root, "llama", "gitRelease.bundle");
  const repo = join(dir, "repo.git");
  execFileSync("git", ["init", "-q", "--bare", repo]);
  execFileSync("git", ["-C", repo, "fetch", "-q", bundle, "HEAD"]);
  const tar = execFileSync("git", ["-C", repo, "archive", "FETCH_HEAD", "include/llama.h", "ggml/include"]);
  execFileSync("tar", ["-x", "-C", dir], { input: tar });
}

test("every struct size and field offset the binding declares matches the bundled llama.h (compiled with the C compiler)", { timeout: 120_000 }, () => {
  const cc = compiler();
  extractHeaders();
  const lines: string[] = ["#include <stdio.h>", "#include <stddef.h>", '#include "llama.h"', "int main(void) {"];
  for (const [name, type] of Object.entries(STRUCTS)) {
    lines.push(`  printf("%s %zu\\n", "${name}", sizeof(struct ${name}));`);
    for (const field of Object.keys(type.members!))
      lines.push(`  printf("%s.%s %zu %zu\\n", "${name}", "${field}", offsetof(struct ${name}, ${field}), sizeof(((struct ${name} *)0)->${field}));`);
  }
  const enums: Record<string, number> = {
    LLAMA_SPLIT_MODE_NONE, LLAMA_POOLING_TYPE_NONE, GGML_BACKEND_DEVICE_TYPE_GPU,
    LLAMA_FLASH_ATTN_TYPE_AUTO: LLAMA_FLASH_ATTN_TYPE.auto, LLAMA_FLASH_ATTN_TYPE_DISABLED: LLAMA_FLASH_ATTN_TYPE.off, LLAMA_FLASH_ATTN_TYPE_ENABLED: LLAMA_FLASH_ATTN_TYPE.on,
    GGML_TYPE_F32: GGML_TYPE.f32, GGML_TYPE_F16: GGML_TYPE.f16, GGML_TYPE_Q8_0: GGML_TYPE.q8_0, GGML_TYPE_BF16: GGML_TYPE.bf16,
  };
  for (const e of Object.keys(enums)) lines.push(`  printf("%s %d\\n", "${e}", (int) ${e});`);
  lines.push("  return 0;", "}");
  const src = join(dir, "layouts.c"), exe = join(dir, "layouts");
  writeFileSync(src, lines.join("\n") + "\n");
  execFileSync(cc, ["-std=c11", "-I", join(dir, "include"), "-I", join(dir, "ggml", "include"), "-o", exe, src]);
  const facts = new Map(execFileSync(exe, { encoding: "utf8" }).trim().split("\n").map((l) => {
    const [k, ...v] = l.split(" ");
    return [k, v.map(Number)] as const;
  }));

  let fields = 0;
  for (const [name, type] of Object.entries(STRUCTS)) {
    assert.equal(koffi.sizeof(type), facts.get(name)![0], `sizeof(${name})`);
    assert.equal(STRUCT_SIZES[name as keyof typeof STRUCT_SIZES], facts.get(name)![0], `declared size of ${name}`);
    for (const [field, m] of Object.entries(type.members!)) {
      const [offset, size] = facts.get(`${name}.${field}`)!;
      assert.equal(m.offset, offset, `offsetof(${name}, ${field})`);
      assert.equal(m.type.size, size, `sizeof(${name}.${field})`);
      fields++;
    }
  }
  for (const [e, v] of Object.entries(enums)) assert.equal(facts.get(e)![0], v, e);
  assert.ok(fields > 60, `only ${fields} fields compared`);
});

test("libllama's default parameters, read through the declared layouts, are the known ones", () => {
  const lib = loadLibrary();
  assert.deepEqual(defaultsMismatch(lib.llama.llama_model_default_params(), KNOWN_MODEL_DEFAULTS), []);
  assert.deepEqual(defaultsMismatch(lib.llama.llama_context_default_params(), KNOWN_CONTEXT_DEFAULTS), []);
});

test("a libllama with other defaults (a different release) is refused with one line", () => {
  const lib = loadLibrary();
  const model = lib.llama.llama_model_default_params();
  const context = lib.llama.llama_context_default_params();
  assert.doesNotThrow(() => checkDefaults("libllama.so", model, context));
  // What a shifted field looks like: n_batch read where n_ctx is, a pointer where a bool was.
  for (const [m, c] of [[model, { ...context, n_ctx: 2048 }], [{ ...model, vocab_only: true }, context], [model, { ...context, kv_unified: undefined }]]) {
    assert.throws(() => checkDefaults("libllama.so", m, c), (e: unknown) => {
      assert.ok(e instanceof SpecdecError);
      assert.ok(!e.message.includes("\n"));
      assert.match(e.message, /libllama\.so is not the libllama this binding was written for \(its default llama_(model|context)_params\.\w+ = .* \(expected .*\)\): install node-llama-cpp 3\.21\.1/);
      return true;
    });
  }
});
