// Non-finite weights and activations in the built-in engine (issue 15, item 1): stories260K.gguf
// with the first weight of blk.0.attn_q.weight set to NaN (00 00 c0 7f) or +Inf used to trap
// inside the WASM exp kernel ("internal error"), while the JS kernels emitted token 0. Now the
// loader refuses such a tensor, and weights that are finite but overflow f32 in a pass give a
// clear error — the same on both kernel paths, one line through the CLI. Each file is a temp
// copy of the shared model with the edit made here.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget, type BuiltinOptions } from "../src/targets/builtin.js";
import { SpecdecError } from "../src/errors.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { openGguf } from "../src/gguf/reader.js";
import { useWasmKernels } from "../src/engine/wasm/wasmMatrix.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import { randomModel } from "./support/randomModel.js";

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const STORIES = sharedFile("models", "stories260K.gguf");

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "specdec-nonfinite-"));
});
after(() => {
  useWasmKernels(true);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A copy of `source` with the 4 bytes of element `index` of tensor `name` replaced. */
function edited(source: string, name: string, bytes: number[], index = 0): string {
  const f = openGguf(source);
  const t = f.tensors.find((x) => x.name === name)!;
  f.close();
  const b = readFileSync(source);
  b.set(bytes, t.offset + 4 * index);
  const path = join(dir, `case-${n++}.gguf`);
  writeFileSync(path, b);
  return path;
}

const NAN = [0x00, 0x00, 0xc0, 0x7f], INF = [0x00, 0x00, 0x80, 0x7f], HUGE = [0xff, 0xff, 0x7f, 0x7f]; // f32 max

function oneLine(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof SpecdecError, `expected a SpecdecError, got ${(e as Error)?.stack ?? String(e)}`);
    assert.ok(!e.message.includes("\n"));
    assert.match(e.message, re);
    return true;
  };
}

async function generate(path: string, wasm: boolean, options: BuiltinOptions = {}): Promise<void> {
  useWasmKernels(wasm);
  try {
    const target = await BuiltinTarget.load(path, options);
    try {
      await target.evaluate(target.tokenize("Once upon a time", true));
    } finally {
      await target.dispose();
    }
  } finally {
    useWasmKernels(true);
  }
}

test("the unedited model evaluates on both kernel paths (the cases below each change one weight)", async () => {
  for (const wasm of [true, false]) await generate(STORIES, wasm);
});

for (const [what, bytes] of [["NaN", NAN], ["+Inf", INF]] as const) {
  test(`a ${what} weight (blk.0.attn_q.weight[0]) is refused at load, on both kernel paths`, async () => {
    const path = edited(STORIES, "blk.0.attn_q.weight", bytes);
    for (const wasm of [true, false]) {
      await assert.rejects(generate(path, wasm), oneLine(/tensor blk\.0\.attn_q\.weight has a non-finite value \(NaN or infinity\) at element 0/));
    }
  });
}

test("a finite weight that overflows f32 in the pass is a clear error, on both kernel paths and with 2 threads", async () => {
  // f32 max as the first weight of the first attention norm: the normed input overflows to infinity.
  const path = edited(STORIES, "blk.0.attn_norm.weight", HUGE);
  for (const wasm of [true, false]) await assert.rejects(generate(path, wasm), oneLine(/activations became non-finite \(NaN or infinity\)/));
  await assert.rejects(generate(path, true, { threads: 2 }), oneLine(/activations became non-finite/));
});

test("Q8_0 weights: a NaN block scale is refused at load; an overflow is a clear error with 8-bit activations too", async () => {
  const path = join(dir, "q8.gguf");
  randomModel({ arch: "llama", layers: 1, seed: 4 }).write(path, GgmlType.Q8_0);
  const huge = edited(path, "blk.0.attn_norm.weight", HUGE); // norms stay F32
  for (const activations of ["f32", "q8"] as const) await assert.rejects(generate(huge, true, { activations }), oneLine(/activations became non-finite/));
  // Q8_0 block: f16 d then 32 levels; d = 0x7e00 is a NaN. Block 3 of the row-major tensor = element 96.
  const f = openGguf(path);
  const t = f.tensors.find((x) => x.name === "blk.0.ffn_up.weight")!;
  f.close();
  const b = readFileSync(path);
  b.writeUInt16LE(0x7e00, t.offset + 3 * 34);
  writeFileSync(path, b);
  for (const wasm of [true, false]) await assert.rejects(generate(path, wasm), oneLine(/tensor blk\.0\.ffn_up\.weight has a non-finite value \(NaN or infinity\) at element 96/));
});

test("the CLI: a NaN weight is one error line and exit code 1", { timeout: 60_000 }, () => {
  const path = edited(STORIES, "blk.0.attn_q.weight", NAN);
  const r = spawnSync(process.execPath, [BIN, "generate", "--backend", "builtin", "--model", path, "--prompt", "Once upon a time", "--max-tokens", "4"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^specdec: error: .*tensor blk\.0\.attn_q\.weight has a non-finite value/);
  assert.equal(r.stdout, "");
});
